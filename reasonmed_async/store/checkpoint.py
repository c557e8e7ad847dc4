"""The SQLite checkpoint store: the bus's journal, the tierer's join, the LLM response cache.

One writer connection (group commit, see ``writer.py``) and one reader
connection, both in WAL mode.  Everything the pipeline needs to resume after a
crash at any instant lives here.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite

from bus import Ack, Backlog, Message, Routed

from reasonmed_async.store.errors import DamageError, StoreError
from reasonmed_async.store.joining import HeldItems
from reasonmed_async.store.space import SpaceWatch
from reasonmed_async.store.opening import WalGuard, check_schema, connect, database_error
from reasonmed_async.store.reading import MESSAGE_COLUMNS, load, message_columns
from reasonmed_async.store.coding import Coder
from reasonmed_async.store.sql import apply_batch, read_batch
from reasonmed_async.store.splitting import Splitter
from reasonmed_async.store.texts import Memo
from reasonmed_async.store.writer import Batcher

__all__ = ["PAGE", "CheckpointStore", "DamageError", "StoreError"]

PAGE = 256
RUN_MEMO_BYTES = 256 << 10  # each connection's memo of resolved texts (see __init__)


class CheckpointStore:
    def __init__(self, path: Path, writer: aiosqlite.Connection | None, reader: aiosqlite.Connection) -> None:
        self.path = path
        self._db = writer
        self._ro = reader
        # the reader connection's resolved texts (the writer has its own), small: in a run and on resume fewer
        # than 1 % of look-ups hit at any capacity from 256 KiB to 8 MiB (a batch's own repeats are resolved
        # once anyway), while an 8 MiB memo was ~11 MiB of RSS once full (BENCHMARKS.md, issue 13, fourth pass)
        self._memo = Memo(RUN_MEMO_BYTES)
        splitter = Splitter(learns=True)  # the writer's: it learns which texts are stored once their transaction commits
        coder = Coder()  # the writer's: trains dictionaries on the rows it stores (store/coding.py)

        def ended(committed: bool) -> None:
            splitter.transaction_ended(committed)
            coder.transaction_ended(committed)

        self._committer = None if writer is None else Batcher(
            writer, partial(apply_batch, memo=Memo(RUN_MEMO_BYTES), splitter=splitter, coder=coder),
            transaction=True, name="store-writer", path=str(path), ended=ended)
        self._reader = Batcher(reader, partial(read_batch, memo=self._memo), transaction=False, name="store-reader")
        self._held = HeldItems()  # the items of the joins in progress (the tierer's)
        self._guard: WalGuard | None = None
        self.damage: DamageError | None = None  # once a damaged row is read, nothing more is written
        self.notices: list[str] = []  # what the opener should tell the user (a write-ahead log gone missing)
        self.space: SpaceWatch | None = None  # free space, measured after each commit of the bus's
        self._space_measured = -1  # the group commit after which it was last measured

    # -- lifecycle ------------------------------------------------------------
    @classmethod
    async def open(cls, path: str | Path, *, synchronous: str = "NORMAL", read_only: bool = False) -> CheckpointStore:
        """Open (creating it unless ``read_only``) a checkpoint database; every connection opened is
        closed again if anything fails.  ``read_only`` opens with ``mode=ro``: nothing is ever written."""
        path = Path(path)
        opened: list[aiosqlite.Connection] = []
        try:
            if read_only:
                reader = await connect(path, read_only=True, opened=opened)
                await check_schema(reader, path, writable=False)
                store = cls(path, None, reader)
            else:
                guard = WalGuard(path)
                writer = await connect(path, read_only=False, opened=opened, synchronous=synchronous)
                await check_schema(writer, path, writable=True)
                reader = await connect(path, read_only=False, opened=opened)
                store = cls(path, writer, reader)
                store._guard = guard
        except BaseException as exc:
            for conn in reversed(opened):
                await conn.close()
            error = database_error(path, exc) if isinstance(exc, sqlite3.DatabaseError) else exc
            lost = WalGuard(path).lost_wal_line()
            if lost and isinstance(error, StoreError):
                raise type(error)(f"{error}; {lost}") from None
            if error is not exc:
                raise error from None
            raise
        if store._guard is not None:
            if (lost := store._guard.lost_wal_line()) is not None:
                store.notices.append(lost)
            store._guard.opened()
        if store._committer is not None:
            store._committer.start()
        store._reader.start()
        return store

    @property
    def read_only(self) -> bool:
        return self._committer is None

    async def set_synchronous(self, mode: str) -> None:
        """``PRAGMA synchronous`` of the writer, for a store opened before its run's config was read."""
        if self._db is None:
            raise StoreError(f"{self.path}: opened read-only")
        await self._db.execute(f"PRAGMA synchronous={mode}")

    async def close(self) -> None:
        try:
            if self._committer is not None:
                await self._committer.close()
            await self._reader.close()
        finally:
            try:
                await self._ro.close()
            finally:
                if self._db is not None:
                    await self._db.close()
                    if self._guard is not None and self.damage is None:
                        self._guard.closed()

    async def _write(self, kind: str, *args: Any) -> Any:
        if self.damage is not None:
            raise DamageError(str(self.damage))
        if self._committer is None:
            raise StoreError(f"{self.path}: opened read-only")
        try:
            return await self._committer.submit(kind, *args)
        except DamageError as exc:
            self.damage = exc
            raise

    async def __aenter__(self) -> CheckpointStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- journal (the bus's seam) ----------------------------------------------
    async def commit(self, outputs: Sequence[Routed], ack: Ack | None = None, *, intake: bool = False) -> list[Routed]:
        new = await self._write("commit", tuple(outputs), ack, intake)
        if self.space is not None and self._committer.batches != self._space_measured:
            self._space_measured = self._committer.batches  # once per group commit, not per caller in it
            self.space.after_commit()
        return new

    async def backlog(self) -> Backlog:
        async with self._ro.execute(
            "SELECT n.name, COUNT(*), MAX(d.message_seq) FROM delivery_rows d JOIN names n ON n.code = d.consumer"
            " WHERE d.state=0 GROUP BY d.consumer"  # (the rows, so the pending index serves: store/views.py)
        ) as cur:
            rows = await cur.fetchall()
        return Backlog(counts={r[0]: r[1] for r in rows}, watermark=max((r[2] for r in rows), default=0))

    async def pending(
        self, consumer: str, watermark: int | None, *, after: int = 0, intake_only: bool = False
    ) -> AsyncIterator[tuple[int, Message]]:
        upper = 2**62 if watermark is None else watermark
        where = " AND d.intake=1" if intake_only else ""
        while True:
            rows = await self.load(
                f"SELECT {message_columns('m')}, d.message_seq FROM delivery_rows d"
                " JOIN messages m ON m.seq = d.message_seq WHERE d.consumer=(SELECT code FROM names WHERE name=?)"
                " AND d.state=0"
                f" AND d.message_seq>? AND d.message_seq<=?{where} ORDER BY d.message_seq LIMIT ?",
                (consumer, after, upper, PAGE),
            )
            if not rows:
                return
            for (seq,), message in rows:
                after = seq
                yield seq, message

    # -- the tierer's join -----------------------------------------------------
    async def gather(self, key: str, item_id: str, item: Message, expected: int) -> list[Message] | None:
        """Add ``item`` under ``key`` (once per ``item_id``); once ``expected`` are there, return them all.

        Items are messages the journal already holds (the bus delivers nothing
        else), so the join keeps their ids, not copies; the items this process
        was handed are held in memory meanwhile (``joining.py``), and only the
        others are read back."""
        message_id = item.id
        held = self._held.hold(key, item_id, message_id, item)
        items = await self._write("join", key, item_id, message_id, expected, {i: h[0] for i, h in held.items()})
        if items is None:
            return None
        self._held.forget(key)
        return [held[i][1] if m is None else m for i, m in items]

    # -- LLM response cache ----------------------------------------------------
    async def cache_get(self, key: str) -> bytes | None:
        """The stored completion of ``key``: one primary-key look-up, batched with the others waiting.
        (No in-memory filter in front: measured, it saved nothing per call and cost seconds at start-up.)"""
        try:
            return await self._reader.submit("get", key)
        except DamageError as exc:
            self.damage = exc
            raise

    def cache_put(self, key: str, model: str, payload: bytes, stage: str, endpoint: str,
                  prompt: int = 0, completion: int = 0) -> asyncio.Future[None]:
        """Store a completed call and count it, in the next group commit: a write-behind (``writer.py``),
        submitted now, so committed no later than anything written after it (the acknowledgement of the
        handler that made the call included); the future is set once it is committed (await it to wait)."""
        return self._write_behind("cache", key, model, payload, stage, endpoint, prompt, completion)

    def count_call(self, stage: str, model: str, endpoint: str, outcome: str, prompt: int,
                   completion: int) -> asyncio.Future[None]:
        """Count a call (or an event of one) in the next group commit: a write-behind, as ``cache_put``."""
        return self._write_behind("call", stage, model, endpoint, outcome, prompt, completion)

    async def settle(self) -> None:
        """Wait until everything written before it (write-behinds included) is committed."""
        await self._write("settle")

    def _write_behind(self, kind: str, *args: Any) -> asyncio.Future[None]:
        if self.damage is not None:
            raise DamageError(str(self.damage))
        if self._committer is None:
            raise StoreError(f"{self.path}: opened read-only")
        try:
            return self._committer.submit_behind(kind, *args)
        except DamageError as exc:  # a write-behind found damage: nothing more is written
            self.damage = exc
            raise

    # -- runs and intake -------------------------------------------------------
    async def create_run(
        self, run: dict[str, Any], questions: Sequence[tuple[str, int, str]], routed: Sequence[Routed]
    ) -> list[Routed]:
        """Insert a run, its questions and their first messages (as intake) in one transaction."""
        return await self._write("run", run, tuple(questions), tuple(routed))

    async def add_intake(self, run_id: str, questions: Sequence[tuple[str, int, str]], routed: Sequence[Routed],
                         *, last: bool) -> list[Routed]:
        """More questions of a run being ingested (idempotent); with ``last`` the run becomes ``running``."""
        return await self._committer.submit("intake", run_id, tuple(questions), tuple(routed), last)

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One write of the application's own (scores), committed with the next group commit."""
        await self._write("sql", sql, tuple(params))

    async def finish_run(self, run_id: str) -> None:
        await self._write("finish", run_id)

    # -- reads -----------------------------------------------------------------
    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._ro.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def load(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[tuple[Any, ...], Message]]:
        """Messages of a query whose first columns are ``reading.MESSAGE_COLUMNS``: (the other columns,
        the message), each row verified and rehydrated; damage: ``DamageError`` (nothing more is written)."""
        try:
            return await load(self._ro, self._memo, self.path, sql, params)
        except DamageError as exc:
            self.damage = exc
            raise

    async def messages_of(self, run_id: str, types: Sequence[str]) -> AsyncIterator[Message]:
        marks = ",".join("?" * len(types))
        after = 0
        while True:
            rows = await self.load(
                f"SELECT {MESSAGE_COLUMNS}, seq FROM messages WHERE run_id=? AND type IN ({marks})"
                " AND seq>? ORDER BY seq LIMIT ?",
                (run_id, *types, after, PAGE * 4),
            )
            if not rows:
                return
            for (seq,), message in rows:
                after = seq
                yield message
