"""How a ``run`` / ``resume`` / ``retry`` ended, as an exit code and the one line that explains it.

``settle`` reads the database after the bus has returned: every question settled
(final records, or a final rejection by the method) is 0; some questions failed
is 3, with how many and how to retry them; work left is 130 / 143 after a signal,
4 otherwise (a resumable stop).  ``ExitCode`` is the one table of codes.
"""

from __future__ import annotations

import signal
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reasonmed_async.exit_codes import ExitCode
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore


@dataclass(frozen=True)
class Outcome:
    code: ExitCode
    message: str


def interrupted_code(signum: int) -> ExitCode:
    return ExitCode.SIGTERM if signum == signal.SIGTERM else ExitCode.SIGINT


async def settle(store: CheckpointStore, db: Path, run_ids: Sequence[str], *, done: bool,
                 signum: int | None = None, stop_reason: str | None = None) -> Outcome:
    """The exit code and closing line of a command that drove ``run_ids`` until ``done`` or a stop."""
    resume = f"reasonmed resume --db {db}"
    if not done:
        if signum is not None:
            name = signal.Signals(signum).name
            return Outcome(interrupted_code(signum),
                           f"interrupted by {name} with work left (checkpointed); continue with `{resume}`")
        why = stop_reason or "stopped before the end"
        return Outcome(ExitCode.RESUMABLE, f"{why}; nothing is lost, continue with `{resume}`")
    failed = sum([await queries.failed_questions(store, r) for r in run_ids])
    questions = sum([(info.questions if (info := await queries.run_info(store, r)) else 0) for r in run_ids])
    if failed:
        return Outcome(ExitCode.FAILURES,
                       f"completed with failures: {failed} of {questions} questions failed a stage"
                       f" (reasons in `reasonmed export`'s failures.jsonl); re-issue them with"
                       f" `reasonmed retry --db {db}`")
    return Outcome(ExitCode.OK, f"done: all {questions} questions settled")
