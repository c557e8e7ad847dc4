"""Batching SQLite work: many callers, one thread hop, one transaction.

Callers hand an operation to ``Batcher.submit`` and await its result.  A single
task takes every operation waiting and runs them all, synchronously, on the
connection's own thread, in one function call — for the writer inside one
transaction (group commit) — and only then resolves their futures.  So an
acknowledgement is never reported before the outputs beside it are durable, and
a busy pipeline pays one thread hop and one commit for hundreds of hand-offs.

A batch that fails is run again one operation at a time, so only the
operations that caused the failure fail (with their own error) and the writer
goes on with the next batch: it never wedges.  A commit that fails because
the database cannot grow (``SQLITE_FULL``: the disk or its quota is full)
fails with ``StoreFull``, a ``RunStopped`` that stops the run resumably.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiosqlite
import structlog

from reasonmed_async.outcome import StoreFull

log = structlog.get_logger("store")


@dataclass
class Op:
    kind: str
    args: tuple[Any, ...]
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


ApplySync = Callable[[sqlite3.Connection, Sequence[Op]], list[Any]]


class StoreClosed(RuntimeError):
    """The checkpoint store was closed while work was still being submitted."""


def _in_transaction(apply: ApplySync, ended: Callable[[bool], None] | None) -> ApplySync:
    """``apply`` inside BEGIN ... COMMIT; ``ended(committed)`` once the transaction is over either way."""
    def run(conn: sqlite3.Connection, batch: Sequence[Op]) -> list[Any]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            results = apply(conn, batch)
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL does)
                conn.execute("ROLLBACK")
            if ended is not None:
                ended(False)
            raise
        if ended is not None:
            ended(True)
        return results

    return run


def is_full(exc: BaseException) -> bool:
    """Did SQLite fail because the database cannot grow (``SQLITE_FULL``)?"""
    return isinstance(exc, sqlite3.OperationalError) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


class Batcher:
    def __init__(self, db: aiosqlite.Connection, apply: ApplySync, *, transaction: bool, max_batch: int = 1024,
                 name: str = "store", path: str = "", ended: Callable[[bool], None] | None = None) -> None:
        self._path = path
        self._db = db
        self._apply = _in_transaction(apply, ended) if transaction else apply
        self._max_batch = max_batch
        self._name = name
        self._queue: asyncio.Queue[Op | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0
        self.ops = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self._name)

    async def submit(self, kind: str, *args: Any) -> Any:
        if self._closed:
            raise StoreClosed("checkpoint store is closed")
        op = Op(kind, args)
        self._queue.put_nowait(op)
        return await op.future

    async def close(self) -> None:
        """Finish what was submitted, then stop."""
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(None)
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        stop = False
        while not stop:
            first = await self._queue.get()
            if first is None:
                break
            await asyncio.sleep(0)  # one loop turn: every task ready now adds its work to this batch
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                op = self._queue.get_nowait()
                if op is None:
                    stop = True
                    break
                batch.append(op)
            await self._run_batch(batch)

    async def _run_batch(self, batch: list[Op]) -> None:
        try:
            # aiosqlite's one entry point for running a function on its connection thread.
            results = await self._db._execute(self._apply, self._db._conn, batch)
        except asyncio.CancelledError:
            for op in batch:
                op.future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - sorted out below, then handed to the callers that caused it
            if len(batch) == 1 or is_full(exc):  # alone, or nothing will fit: every caller learns why
                self._fail(batch, exc)
                return
            for op in batch:  # one at a time: only the operations that cause the failure fail
                await self._run_batch([op])
            return
        self.batches += 1
        self.ops += len(batch)
        for op, result in zip(batch, results, strict=True):
            if not op.future.done():
                op.future.set_result(result)

    def _fail(self, batch: list[Op], exc: Exception) -> None:
        if is_full(exc):
            full = StoreFull(self._path or self._name, f"SQLite: {exc}")
            full.__cause__ = exc
            log.error("store.full", database=self._path, error=str(exc))
            exc = full
        for op in batch:
            if not op.future.done():
                op.future.set_exception(exc)
