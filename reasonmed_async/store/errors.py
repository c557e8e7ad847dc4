"""What a checkpoint database can be wrong with."""

from __future__ import annotations


class StoreError(RuntimeError):
    """The database cannot be used as a checkpoint store (wrong schema, not ours, in use): exit 2."""


class DamageError(StoreError):
    """The database is damaged: a row no longer matches its checksum, or SQLite finds it malformed (exit 5)."""
