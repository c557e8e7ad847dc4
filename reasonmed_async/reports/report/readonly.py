"""A checkpoint database opened for reading only: a report never writes to the run it describes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiosqlite

from bus import Message
from reasonmed_async.store import queries
from reasonmed_async.store.reading import load
from reasonmed_async.store.schema import STORE_SCHEMA_VERSION
from reasonmed_async.store.sql import StoreError
from reasonmed_async.store.texts import Memo


class ReadOnlyStore:
    def __init__(self, path: Path, db: aiosqlite.Connection) -> None:
        self.path = path
        self._db = db
        self._memo = Memo()

    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._db.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def load(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[tuple[Any, ...], Message]]:
        return await load(self._db, self._memo, self.path, sql, params)


@asynccontextmanager
async def open_readonly(path: str | Path) -> AsyncIterator[ReadOnlyStore]:
    """The database at ``path`` in SQLite's read-only mode, after checking it is a store this build reads."""
    path = Path(path)
    if not path.is_file():
        raise StoreError(f"{path}: no such database")
    try:
        db = await aiosqlite.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True)
    except aiosqlite.Error as exc:
        raise StoreError(f"{path}: cannot open: {exc}") from None
    try:
        await db.execute("PRAGMA busy_timeout=10000")
        store = ReadOnlyStore(path, db)
        try:
            version = await queries.schema_version(store)
        except aiosqlite.DatabaseError as exc:
            raise StoreError(f"{path}: not a reasonmed checkpoint database ({exc})") from None
        if version != STORE_SCHEMA_VERSION:
            found = "no version" if version is None else f"v{version}"
            raise StoreError(f"{path}: store schema {found}, this build reads v{STORE_SCHEMA_VERSION}")
        yield store
    finally:
        await db.close()
