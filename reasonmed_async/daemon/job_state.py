"""A daemon job's state, from what the database says of its run and how the daemon stands: pure.

``running`` while its run has work pending and the daemon drives it; ``done`` once every
question is settled with none failed (exit code 0), ``failed`` once settled with some
questions failed (3: ``reasonmed retry`` re-issues them); ``stopped`` when the daemon
stopped with work left (130 / 143 after SIGINT / SIGTERM, 4 for a resumable stop: an open
circuit, an outage, a full disk — the next daemon or ``reasonmed resume`` continues it).
The codes are those a ``reasonmed run`` of the same work would have exited with.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from reasonmed_async.exit_codes import ExitCode


class JobState(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    STOPPED = "stopped"


@dataclass(frozen=True)
class Verdict:
    state: JobState
    exit_code: ExitCode | None  # None while running

    @property
    def final(self) -> bool:
        return self.state is not JobState.RUNNING


def job_state(run_status: str, pending: int, failed_questions: int, stopped_with: ExitCode | None) -> Verdict:
    """``run_status`` is the run's row (running, finished, ingesting); ``stopped_with`` the daemon's stop code
    once it stopped driving (None while it drives)."""
    settled = run_status == "finished" or (run_status == "running" and pending == 0)
    if settled:
        return Verdict(JobState.FAILED, ExitCode.FAILURES) if failed_questions else Verdict(JobState.DONE, ExitCode.OK)
    if stopped_with is not None:
        return Verdict(JobState.STOPPED, stopped_with)
    return Verdict(JobState.RUNNING, None)
