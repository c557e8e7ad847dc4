"""The timeouts of a backend's HTTP exchanges: one timer for all of them, not one per request.

``asyncio.timeout`` arms a ``TimerHandle`` per exchange (pushed onto the event loop's heap, compared by a
Python ``__lt__``, cancelled and left there for the loop to pop): ~3 % of the event loop's time over HTTP at
zero latency.  Every exchange of a backend has the same ``timeout_s``, so ``Deadlines`` keeps the exchanges
in flight in a dict and one timer, set for the earliest deadline: starting and ending an exchange is a dict
insert and delete; the timer fires about once a ``timeout_s`` (then it expires what is due and is set for
the earliest deadline left).

The semantics are ``asyncio.timeout``'s: when the deadline passes, the task is cancelled; the exchange's
``CancelledError`` then ends it as a ``TimeoutError`` (``end``), unless the task was also cancelled from
outside (``uncancel`` counts), when the cancellation propagates.  ``start`` and ``end`` are plain calls,
for a ``try`` / ``finally`` in the awaiting coroutine (no async context manager, no coroutine per exchange).
"""

from __future__ import annotations

import asyncio
import math
import time

# a timer may run up to the clock's resolution early (asyncio's ``_run_once``): what is due by then is due
_SLACK = time.get_clock_info("monotonic").resolution


class Deadline:
    """One exchange in flight: its task, when it is due, the task's ``cancelling()`` when it started."""

    __slots__ = ("task", "at", "cancelling", "expired")

    def __init__(self, task: asyncio.Task[object], at: float, cancelling: int) -> None:
        self.task, self.at, self.cancelling, self.expired = task, at, cancelling, False


class Deadlines:
    """The deadlines of one backend's exchanges; ``timeout_s`` may change (a reload): later exchanges get it."""

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._live: dict[Deadline, None] = {}
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = math.inf

    def __len__(self) -> int:
        return len(self._live)

    def start(self) -> Deadline:
        """The running task's exchange starts now: due in ``timeout_s``."""
        task = asyncio.current_task()
        if task is None:
            raise RuntimeError("Deadlines.start must be called from a task")
        loop = task.get_loop()
        deadline = Deadline(task, loop.time() + self.timeout_s, task.cancelling())
        self._live[deadline] = None
        if deadline.at < self._timer_at:  # the earliest (the first, or after a reload shortened timeout_s)
            self._arm(loop, deadline.at)
        return deadline

    def end(self, deadline: Deadline, error: BaseException | None = None) -> None:
        """The exchange is over, with ``error`` if it raised one: a ``TimeoutError`` is raised (from it) where
        the deadline cancelled the task; otherwise the caller goes on as it would have."""
        self._live.pop(deadline, None)  # the timer stays: when it fires, it is set for the earliest left, if any
        if deadline.expired and deadline.task.uncancel() <= deadline.cancelling \
                and isinstance(error, asyncio.CancelledError):
            raise TimeoutError from error

    def _arm(self, loop: asyncio.AbstractEventLoop, at: float) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_at = loop.call_at(at, self._fire, loop), at

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        """Cancel every exchange now due; set the timer for the earliest left (the dict holds only those in
        flight: at most the backend's concurrency)."""
        self._timer, self._timer_at = None, math.inf
        now, earliest = loop.time() + _SLACK, math.inf
        for deadline in list(self._live):
            if deadline.at <= now:
                del self._live[deadline]
                deadline.expired = True
                deadline.task.cancel()
            elif deadline.at < earliest:
                earliest = deadline.at
        if earliest < math.inf:
            self._arm(loop, earliest)
