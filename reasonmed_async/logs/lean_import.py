"""``import structlog`` without ``rich``: a tenth of a second of every command's start-up.

structlog's package imports ``structlog.dev`` and ``structlog.tracebacks``, which import rich (and
through it pygments) when it is installed, only to offer it as their default exception formatter and
as the repr of traceback locals.  This project uses neither: the console renders tracebacks with
``structlog.dev.plain_traceback`` and the file's structured tracebacks carry no locals
(``logs/setup.py``).  ``import_structlog`` imports structlog with rich hidden, so both modules take
their rich-less defaults; rich itself stays importable for what uses it (the live progress display).
"""

from __future__ import annotations

import sys


def import_structlog() -> None:
    """Import structlog, rich hidden from it; a no-op where either is imported already."""
    if "structlog" in sys.modules or "rich" in sys.modules:
        return
    sys.modules["rich"] = None  # type: ignore[assignment]  # `import rich` raises ImportError meanwhile
    try:
        import structlog  # noqa: F401
    finally:
        del sys.modules["rich"]
