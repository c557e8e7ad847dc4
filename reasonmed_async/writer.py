"""Group commit: many writers, one SQLite transaction per batch.

Callers hand an operation to ``GroupCommitter.submit`` and await its result;
a single task takes every operation waiting, applies them all in one
transaction, commits, and only then resolves their futures.  So an
acknowledgement is never reported before the outputs beside it are durable,
and a busy pipeline pays one commit for hundreds of hand-offs.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import aiosqlite


@dataclass
class Op:
    kind: str
    args: tuple[Any, ...]
    future: asyncio.Future[Any] = field(default_factory=lambda: asyncio.get_running_loop().create_future())


Apply = Callable[[aiosqlite.Connection, Sequence[Op]], Awaitable[list[Any]]]


class StoreClosed(RuntimeError):
    """The checkpoint store was closed while work was still being submitted."""


class GroupCommitter:
    def __init__(self, db: aiosqlite.Connection, apply: Apply, *, max_batch: int = 512) -> None:
        self._db = db
        self._apply = apply
        self._max_batch = max_batch
        self._queue: asyncio.Queue[Op | None] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None
        self._closed = False
        self.batches = 0
        self.ops = 0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="store-writer")

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
            batch = [first]
            while len(batch) < self._max_batch and not self._queue.empty():
                op = self._queue.get_nowait()
                if op is None:
                    stop = True
                    break
                batch.append(op)
            await self._commit(batch)

    async def _commit(self, batch: list[Op]) -> None:
        try:
            await self._db.execute("BEGIN IMMEDIATE")
            try:
                results = await self._apply(self._db, batch)
                await self._db.execute("COMMIT")
            except BaseException:
                await self._db.execute("ROLLBACK")
                raise
        except asyncio.CancelledError:
            for op in batch:
                if not op.future.done():
                    op.future.cancel()
            raise
        except Exception as exc:  # noqa: BLE001 - handed to every waiting caller
            for op in batch:
                if not op.future.done():
                    op.future.set_exception(exc)
            return
        self.batches += 1
        self.ops += len(batch)
        for op, result in zip(batch, results, strict=True):
            if not op.future.done():
                op.future.set_result(result)
