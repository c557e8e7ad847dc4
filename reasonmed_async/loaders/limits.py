"""What a question may hold: valid Unicode text of bounded size, in JSON of bounded depth.

A lone surrogate (``"\\ud800"`` in JSON) or a NUL passes ``json.loads`` but not
the database (or any UTF-8 file): it is refused here, at the loader, naming the
file, line and field, before anything is stored.  Sizes are in characters;
the defaults are generous (a long PubMedQA context is ~3,000 characters) and set
in ``[input]``.  An offending value is quoted at most ``QUOTE`` characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

QUOTE = 80
_BAD_TEXT = re.compile(r"[\ud800-\udfff\x00]")


@dataclass(frozen=True)
class InputLimits:
    max_question_chars: int = 100_000
    max_option_chars: int = 20_000
    max_context_chars: int = 1_000_000
    max_depth: int = 32


def clip(value: Any, limit: int = QUOTE) -> str:
    """``repr(value)``, at most ``limit`` characters (with how long it was when cut)."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = f" ({len(value):,} characters)" if isinstance(value, str) else ""
    return text[: limit - 1] + "…" + size


def text_problem(value: str, max_chars: int) -> str | None:
    """Why ``value`` cannot be stored, or None."""
    bad = _BAD_TEXT.search(value) if not value.isascii() or "\x00" in value else None  # ASCII: only a NUL can be
    if bad is not None:
        what = "a NUL character" if bad.group() == "\x00" else f"a lone surrogate (U+{ord(bad.group()):04X})"
        return f"holds {what} at character {bad.start()}: not valid Unicode text"
    if len(value) > max_chars:
        return f"is {len(value):,} characters long, more than the limit of {max_chars:,} ([input]): {clip(value)}"
    return None


class NestingError(Exception):
    """JSON nested deeper than the limit (``InputError`` once the loader knows the line)."""


_CONTAINERS = (dict, list)  # a tuple: ``isinstance`` checks one twice as fast as the union ``dict | list``


def depth_problem(value: Any, max_depth: int) -> str | None:
    """Nesting deeper than ``max_depth`` (lists and objects), checked without recursion."""
    if not isinstance(value, _CONTAINERS):
        return None
    level, depth = [value], 1  # the containers at one depth; only containers are ever visited
    while level:
        if depth > max_depth:
            return f"nests deeper than {max_depth} levels ([input] max_depth)"
        level = [v for item in level for v in (item.values() if isinstance(item, dict) else item)
                 if isinstance(v, _CONTAINERS)]
        depth += 1
    return None
