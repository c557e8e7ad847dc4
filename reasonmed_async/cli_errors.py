"""What a command's error means for the user: one line and an exit code, never a traceback.

``classify`` maps an expected error (bad usage or input, a damaged database, a
full disk) to its exit code and line.  Anything else is internal: ``report_internal``
prints one line, writes the traceback — redacted, without local variables — to
the log beside the database, and the command exits 1.  Errors that arrive
inside an ``ExceptionGroup`` (a TaskGroup's) are judged by their leaves.
"""

from __future__ import annotations

import errno
import os
import re
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path

import structlog

from reasonmed_async.exit_codes import ExitCode

# Environment variables whose values are never written, whichever config is (or is not) loaded.
SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL|AUTH", re.I)


def leaves(exc: BaseException) -> Iterator[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            yield from leaves(inner)
    else:
        yield exc


def _usage_types() -> tuple[type[BaseException], ...]:
    from reasonmed_async.config import ConfigError
    from reasonmed_async.daemon.api import InsecureListen
    from reasonmed_async.daemon.token import TokenError
    from reasonmed_async.loaders.errors import InputError
    from reasonmed_async.pipeline import RunConflict
    from reasonmed_async.reports.atomic import ExportTargetError
    from reasonmed_async.store.errors import StoreError

    return ConfigError, InputError, RunConflict, StoreError, InsecureListen, ExportTargetError, TokenError


def _one(exc: BaseException, usage: tuple[type[BaseException], ...]) -> tuple[ExitCode, str] | None:
    from reasonmed_async.store.errors import DamageError
    from reasonmed_async.store.space import LowDiskSpace

    if isinstance(exc, LowDiskSpace):
        return ExitCode.RESUMABLE, f"reasonmed: stopped: {exc}"
    if isinstance(exc, DamageError):
        return ExitCode.DAMAGED, f"reasonmed: damaged: {exc}"
    if isinstance(exc, sqlite3.DatabaseError):
        name = getattr(exc, "sqlite_errorname", "")
        if name == "SQLITE_CORRUPT":
            return ExitCode.DAMAGED, f"reasonmed: damaged: the database is malformed ({exc}); see `reasonmed check`"
        if name == "SQLITE_NOTADB":
            return ExitCode.USAGE, "reasonmed: error: --db is not an SQLite database"
        if name == "SQLITE_FULL":
            return ExitCode.RESUMABLE, "reasonmed: stopped: the disk is full (SQLITE_FULL); free space, then resume"
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        where = f" writing {exc.filename}" if exc.filename else ""
        return ExitCode.RESUMABLE, f"reasonmed: stopped: no space left on the device{where}; free space, then resume"
    if isinstance(exc, usage + tuple(_extra_usage)):
        return ExitCode.USAGE, f"reasonmed: error: {exc}"
    return None


_extra_usage: list[type[BaseException]] = []  # a command module may add its own usage error types


def classify(exc: BaseException, usage: tuple[type[BaseException], ...] = ()) -> tuple[ExitCode, str] | None:
    """The exit code and line of an expected error (the most serious of a group's), or None."""
    usage = (*usage, *_usage_types())
    found = [r for r in (_one(e, usage) for e in leaves(exc)) if r is not None]
    return max(found, key=lambda r: _RANK[r[0]]) if found else None


_RANK = {ExitCode.USAGE: 1, ExitCode.RESUMABLE: 2, ExitCode.DAMAGED: 3}


def environment_secrets() -> list[str]:
    return [v for k, v in os.environ.items() if SECRET_NAME.search(k) and len(v) >= 6]


def report_internal(exc: BaseException, command: str, db: str | None) -> int:
    """One line on stderr; the traceback (redacted, no locals) in ``<db>.log`` (or the log file set up)."""
    import logging

    from reasonmed_async.logs.setup import Redactor, configure, log_path_for, registered_secrets

    files = [Path(h.baseFilename) for h in logging.getLogger().handlers if getattr(h, "baseFilename", None)]
    target = log_path_for(db).absolute() if db and Path(db).parent.is_dir() else None
    if target is not None and target not in files:
        configure(log_file=target, secrets=environment_secrets(), console_level=logging.CRITICAL + 1)
        files = [target]
    structlog.get_logger("cli").error("command.failed", command=command, exc_info=exc)
    for handler in logging.getLogger().handlers:
        handler.flush()
    first = next(leaves(exc))
    where = f"; the traceback is in {files[0]}" if files else ""
    text = Redactor([*environment_secrets(), *registered_secrets()]).scrub(f"{type(first).__name__}: {first}")
    print(f"reasonmed: internal error: {text[:300]}{where}", file=sys.stderr)
    return ExitCode.INTERNAL


def quiet_broken_pipe() -> int:
    """The reader of stdout went away (``status | head``): nothing more to say, nowhere to say it."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
    return ExitCode.OK
