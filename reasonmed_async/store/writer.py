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

A write-behind (``submit_behind``: an LLM call's cache entry, a count) is one
nobody need await: it is committed no later than anything submitted after it,
so a handler's acknowledgement never commits before the cache entry of the
call behind it.  Should it fail, nothing submitted after it commits either
(its submitter has moved on and what follows may depend on it): the rest of
its batch fails with it, and so does every later ``submit`` (``failed_behind``).
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Callable, Sequence
from types import TracebackType
from typing import Any

import aiosqlite
import structlog

from reasonmed_async.outcome import StoreFull

log = structlog.get_logger("store")


class Op:
    """One caller's operation: what to do (``kind``, ``args``) and the future its caller awaits.
    (A plain slotted class: tens of thousands are made a minute, each by one line of ``submit``.)"""

    __slots__ = ("kind", "args", "future", "behind")

    def __init__(self, kind: str, args: tuple[Any, ...], future: asyncio.Future[Any], behind: bool = False) -> None:
        self.kind, self.args, self.future, self.behind = kind, args, future, behind

    def __repr__(self) -> str:
        return f"Op({self.kind!r})"


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
            try:
                if conn.in_transaction:  # SQLite may have rolled back already (SQLITE_FULL does)
                    conn.execute("ROLLBACK")
            finally:  # (told even when the ROLLBACK fails: what the writer keeps in memory is forgotten)
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
        # The operations submitted and not yet taken, in order; ``_wake`` is the future the runner awaits
        # while there are none (a list and one future: no asyncio.Queue bookkeeping per operation).
        self._pending: list[Op] = []
        self._wake: asyncio.Future[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.failed_behind: Exception | None = None  # the error of a write-behind that failed: every later write's
        self._failed_at: TracebackType | None = None  # where it failed: the traceback each refusal starts from
        self.batches = 0
        self.ops = 0

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = self._loop.create_task(self._run(), name=self._name)

    def submit(self, kind: str, *args: Any) -> asyncio.Future[Any]:
        """Hand an operation to the batcher: the future of its result (``await`` it), set once its batch
        is done — for the writer, committed.  (A plain function: no coroutine per operation.)"""
        return self._add(Op(kind, args, self._future()))

    def submit_behind(self, kind: str, *args: Any) -> asyncio.Future[Any]:
        """``submit`` an operation nobody need await (a write-behind): committed no later than anything
        submitted after it; should it fail, nothing submitted after it commits (see the module's docstring)."""
        return self._add(Op(kind, args, self._future(), True))

    def _future(self) -> asyncio.Future[Any]:
        if self._closed:
            raise StoreClosed("checkpoint store is closed")
        if self.failed_behind is not None:  # with the traceback of where it failed: a plain re-raise would
            raise self.failed_behind.with_traceback(self._failed_at)  # lengthen it at every refusal
        return (self._loop or asyncio.get_running_loop()).create_future()

    def _add(self, op: Op) -> asyncio.Future[Any]:
        self._pending.append(op)
        wake = self._wake
        if wake is not None:
            self._wake = None
            if not wake.done():
                wake.set_result(None)
        return op.future

    async def close(self) -> None:
        """Finish what was submitted, then stop."""
        if self._closed:
            return
        self._closed = True
        wake, self._wake = self._wake, None
        if wake is not None and not wake.done():
            wake.set_result(None)
        if self._task is not None:
            await self._task

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        pending = self._pending
        while True:
            if not pending:
                if self._closed:
                    return  # everything submitted before the close is done
                self._wake = loop.create_future()
                try:
                    await self._wake
                finally:
                    self._wake = None
                continue
            await asyncio.sleep(0)  # one loop turn: every task ready now adds its work to this batch
            batch = pending[:self._max_batch]
            del pending[:len(batch)]
            await self._run_batch(batch)

    async def _run_batch(self, batch: list[Op]) -> None:
        if self.failed_behind is not None:  # submitted after a write-behind that failed: not committed without it
            self._fail(batch, self.failed_behind)
            return
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
            if op.behind:
                if not op.future.cancelled():  # (a caller that awaited it was cancelled: the write ran all the same)
                    op.future.exception()  # retrieved: the error is ``failed_behind``'s now, raised by later submits
                if self.failed_behind is None:
                    log.error("store.write_behind_failed", database=self._path, operation=op.kind,
                              error=f"{type(exc).__name__}: {exc}")
                    self.failed_behind, self._failed_at = exc, exc.__traceback__
