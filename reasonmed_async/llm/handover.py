"""Requests waiting for a replica slot, and the slot a release frees handed to the first one it can serve.

``OpenAICompatBackend`` admits a request when its ``ReplicaPool`` gives a ticket; when none can be had,
the request queues here, in arrival order, until a release hands it one.  ``hand_over`` (called when a
request ends) asks the pool for a ticket on behalf of the first waiter whose model it admits (a waiter of a
model paused by a 429 waits on, the others do not wait behind it), as long as the pool has room, and
resolves that waiter's future with it: a release wakes the one waiter it admits, in the order they came
(the order in which a broadcast's woken waiters ran).  Before, a release woke every waiter and each asked
the pool again: over HTTP at zero latency, 300 questions, ~36,000 wake-ups admitted nothing for ~6,500
calls (BENCHMARKS.md, issue 13, sixth pass).  One queue for every model, not one per model served in
turn: the models share the replicas' slots, and turns starved the busiest (qwen, generating and
verifying, got a fifth of the slots for over half the calls: a third fewer calls a second).

A waiter also leaves at ``wake_in`` (the pool's next clock event when it queued: a probe due, a pause over),
at a clock event that arose after it queued (a 429 pausing its model, an ejection: one timer, set by
``hand_over`` to the earliest event of a waiting model, sends that model's waiters to the pool when it
comes), and on ``wake_all`` (the backend reconfigured or closed), with no ticket: it then asks the pool
itself.  A ticket
handed to a waiter that is cancelled before it runs goes back to the pool and on to the next waiter, and
one handed as its timer fires is used, not lost.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter, deque
from collections.abc import Callable

from reasonmed_async.llm.replicas import ReplicaPool, Ticket


class Handover:
    def __init__(self, pool: ReplicaPool, clock: Callable[[], float]) -> None:
        self._pool = pool
        self._clock = clock
        self._queue: deque[tuple[str, asyncio.Future[Ticket | None]]] = deque()  # (model, its future), first first
        self.waiting = 0
        self._models: Counter[str] = Counter()  # the models of the waiters, to find their next clock event
        self._events: dict[str, float] = {}  # model -> its next clock event, when ``_timer`` was set
        self._timer: asyncio.TimerHandle | None = None
        self._timer_due: float | None = None  # the clock time ``_timer`` is set for

    async def wait(self, model: str, wake_in: float | None) -> Ticket | None:
        """Queue for a ``model`` slot: the ticket handed over, or None after ``wake_in`` s or a ``wake_all``."""
        handed: asyncio.Future[Ticket | None] = asyncio.get_running_loop().create_future()
        entry = (model, handed)
        queue = self._queue
        queue.append(entry)
        self.waiting += 1
        self._models[model] += 1
        try:
            if wake_in is None:
                return await handed
            try:
                async with asyncio.timeout(wake_in):
                    return await handed
            except TimeoutError:
                return _ticket(handed)  # handed over as the timer fired: this waiter's
        except BaseException:
            ticket = _ticket(handed)
            if ticket is not None:  # handed over, then cancelled before it could use it
                self._pool.abandoned(ticket)
                self.hand_over()
            raise
        finally:
            self.waiting -= 1
            self._models[model] -= 1
            if not self._models[model]:
                del self._models[model]
            if not handed.done() or handed.cancelled():  # left on its own: take it out of the queue
                handed.cancel()
                with contextlib.suppress(ValueError):  # ``hand_over`` may have dropped it already
                    queue.remove(entry)

    def hand_over(self) -> None:
        """Each slot the pool can give now, to the first waiter (in arrival order) whose model it admits."""
        if not self.waiting:
            return
        now, queue, pool = self._clock(), self._queue, self._pool
        refused: set[str] = set()  # models the pool admits no request of now (a pause, or no slot)
        i = 0
        while i < len(queue) and pool.has_room(now):
            model, handed = queue[i]
            if handed.done():  # cancelled: its waiter is leaving
                del queue[i]
            elif model in refused:
                i += 1
            elif (ticket := pool.acquire(now, model)) is None:
                refused.add(model)
                i += 1
            else:
                del queue[i]
                handed.set_result(ticket)
        self._set_timer(now)

    def _set_timer(self, now: float) -> None:
        """The timer for the earliest clock event of a waiting model: a pause or an ejection begun after its
        waiters queued (their own ``wake_in`` did not know of it), so they are not left waiting for a release."""
        events = {m: t for m in self._models if (t := self._pool.next_change(now, m)) is not None}
        self._events = events
        due = min(events.values(), default=None)
        if due == self._timer_due:
            return
        self._cancel_timer()
        if due is not None:
            self._timer_due = due
            self._timer = asyncio.get_running_loop().call_later(max(0.0, due - now), self._clock_event)

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
        self._timer, self._timer_due = None, None

    def _clock_event(self) -> None:
        """The waiters of each model whose clock event has come leave, without a ticket, and ask the pool."""
        self._timer, self._timer_due = None, None
        now = self._clock()
        come = {m for m, t in self._events.items() if t <= now}
        if come:
            queue = self._queue
            staying = [entry for entry in queue if entry[0] not in come]
            for model, handed in queue:
                if model in come and not handed.done():
                    handed.set_result(None)
            queue.clear()
            queue.extend(staying)  # in place: each waiter removes itself from this deque
        self._set_timer(now)

    def wake_all(self) -> None:
        """Every waiter leaves without a ticket and asks the pool again (a reconfiguration, the backend closing)."""
        self._cancel_timer()
        queue, self._queue = self._queue, deque()
        for _, handed in queue:
            if not handed.done():
                handed.set_result(None)


def _ticket(handed: asyncio.Future[Ticket | None]) -> Ticket | None:
    return handed.result() if handed.done() and not handed.cancelled() else None
