"""Daemon jobs change state the moment their runs end, and clients can wait for it (``GET /v1/jobs/{id}?wait=S``).

``JobEvents.watch`` waits on the bus's settle signal (no polling): when deliveries
settle it checks the daemon's running runs and finishes each that has nothing left
pending, then wakes every waiter.  ``stop`` records the daemon's stop code (runs
with work left read ``stopped``) and wakes them too.  ``wait`` returns a job's
status once its state differs from the one the client last saw, or after the
client's timeout with the status as it is.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog

from reasonmed_async.daemon.job_state import JobState, job_state
from reasonmed_async.exit_codes import ExitCode
from reasonmed_async.pipeline import Pipeline
from reasonmed_async.store import queries

log = structlog.get_logger("daemon")

MAX_WAIT_S = 300.0
SETTLE_COALESCE_S = 0.05  # settles closer together than this are checked once (one query per running run)


class JobEvents:
    def __init__(self, pipeline: Pipeline) -> None:
        self._pipeline = pipeline
        self._changed = asyncio.Event()
        self.stopped_with: ExitCode | None = None

    def _publish(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()  # the next change wakes the next waiters

    async def status(self, run_id: str) -> dict[str, Any] | None:
        """The job's status: its run's counts, its ``state`` and the ``exit_code`` that state means."""
        store = self._pipeline.store
        run = await queries.run_info(store, run_id)
        if run is None:
            return None
        pending = await queries.pending_deliveries(store, run_id)
        failed = await queries.failed_questions(store, run_id)
        verdict = job_state(run.status, pending, failed, self.stopped_with)
        settled = verdict.state in (JobState.DONE, JobState.FAILED)  # finished, or about to be by ``watch``
        return {"job": run_id, "status": "finished" if settled else run.status,
                "state": verdict.state.value, "exit_code": None if verdict.exit_code is None else int(verdict.exit_code),
                "input": Path(run.input_path).name, "questions": run.questions, "pending_deliveries": pending,
                "records": await queries.record_count(store, run_id), "failed_questions": failed}

    async def wait(self, run_id: str, since: str | None, timeout_s: float) -> dict[str, Any] | None:
        """The status once its state is not ``since`` (default: the state now), or after ``timeout_s``."""
        changed = self._changed
        status = await self.status(run_id)
        if status is None:
            return None
        since = since or status["state"]
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(min(max(timeout_s, 0.0), MAX_WAIT_S)):
                while status is not None and status["state"] == since:
                    await changed.wait()
                    changed = self._changed
                    status = await self.status(run_id)
        return status

    async def watch(self, signalled: Callable[[], ExitCode | None] = lambda: None) -> None:
        """Until cancelled: finish every running run that has nothing pending, as deliveries settle.  Cancelled
        (the daemon stopped driving), jobs with work left read ``stopped``: with the code of the signal that
        stopped the daemon (``signalled``), else 4 (a resumable stop: drain, halt, disk floor)."""
        pipeline = self._pipeline
        try:
            while True:
                await pipeline.bus.settled.wait()
                await asyncio.sleep(SETTLE_COALESCE_S)  # a burst of settles: one check
                pipeline.bus.settled.clear()
                await self.finish_settled()
        finally:
            self.stop(signalled() or ExitCode.RESUMABLE)

    async def finish_settled(self) -> None:
        store = self._pipeline.store
        ended = False
        for run in await queries.runs(store):
            if run.status == "running" and await queries.pending_deliveries(store, run.id) == 0:
                await store.finish_run(run.id)
                log.info("job.ended", job=run.id, failed_questions=await queries.failed_questions(store, run.id))
                ended = True
        if ended:
            self._publish()

    def stop(self, code: ExitCode) -> None:
        """The daemon stopped driving: jobs with work left read ``stopped`` with ``code``."""
        self.stopped_with = code
        self._publish()
