"""What every command handler shares: the usage error (exit 2) and an existing database."""

from __future__ import annotations

from pathlib import Path


class UsageError(Exception):
    """Bad arguments or bad input: exit 2."""


def existing_db(path: str) -> Path:
    db = Path(path)
    if not db.is_file():
        raise UsageError(f"{db}: no such database")
    return db
