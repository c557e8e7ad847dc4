"""How a run ended when it did not simply finish: typed stops that the CLI maps to exit codes.

Raised by the LLM layer (outage budget spent, circuit open) or the store (disk
full); they are ``bus.StopRun``s, so the bus stops the run leaving every
message pending.  ``exit_code`` is what the CLI returns for one
(``ExitCode.RESUMABLE``: ``reasonmed resume`` continues after the cause is fixed).
"""

from __future__ import annotations

from enum import StrEnum

from bus.stop import StopRun

from reasonmed_async.exit_codes import ExitCode


class StopReason(StrEnum):
    OUTAGE = "outage"              # an endpoint stayed out longer than [retry] outage_budget_s
    CIRCUIT_OPEN = "circuit_open"  # a model's endpoint or credentials are wrong (401/403/404, ...)
    DISK_FULL = "disk_full"        # the checkpoint database could not commit (SQLITE_FULL)


class RunStopped(StopRun):
    """The run stopped before the end, resumably: ``str()`` is the one line to show the user."""

    def __init__(self, reason: StopReason, message: str, *, resumable: bool = True) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.resumable = resumable

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.RESUMABLE if self.resumable else ExitCode.INTERNAL


class OutageBudgetSpent(RunStopped):
    def __init__(self, model: str, endpoint: str, waited_s: float, error: str) -> None:
        super().__init__(StopReason.OUTAGE,
                         f"model {model} at {endpoint or 'its endpoint'} did not answer for {waited_s:.0f} s"
                         f" (the [retry] outage_budget_s); last error: {error}")
        self.model, self.endpoint = model, endpoint


class CircuitOpen(RunStopped):
    def __init__(self, model: str, endpoint: str, error: str, count: int) -> None:
        super().__init__(StopReason.CIRCUIT_OPEN,
                         f"circuit open for model {model} at {endpoint or 'its endpoint'}: {count} consecutive"
                         f" {error}")
        self.model, self.endpoint, self.error = model, endpoint, error


class StoreFull(RunStopped):
    def __init__(self, path: str, detail: str) -> None:
        super().__init__(StopReason.DISK_FULL, f"{path}: the database cannot grow ({detail}): free space, then resume")
