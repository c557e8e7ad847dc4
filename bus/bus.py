"""The in-process message bus: typed topics, bounded queues, durable hand-offs.

Each subscription owns a bounded ``asyncio.Queue`` and ``concurrency`` worker
tasks.  A worker takes a message, runs the handler (a failure becomes a
``StageFailed``; see ``subscription.py`` for the one case the bus retries),
commits the outputs
together with the acknowledgement of its input, and only then puts the outputs
on their consumers' queues — blocking while a queue is full, so a slow stage
slows its producers instead of growing memory.  The graph of queues must be
acyclic for that back-pressure to be deadlock-free: a stage that loops back
(re-verification, say) is unrolled into one subscription per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import replace

import structlog

from .journal import Ack, Journal, Routed
from .logcontext import bind_context
from .messages import Message
from .stop import StopRun
from .subscription import ConsumerStats, Handler, Subscription, handle_with_retries, settle_error

log = structlog.get_logger("bus")
_root = logging.getLogger()  # the logging setup sets its level to the lowest any handler writes

__all__ = ["ConsumerStats", "Handler", "MessageBus", "Subscription"]


class MessageBus:
    def __init__(self, journal: Journal) -> None:
        self._journal = journal
        self._subs: dict[str, Subscription] = {}
        self._by_type: dict[type[Message], list[Subscription]] = {}
        self._queues: dict[str, asyncio.Queue[Message]] = {}
        self.stats: dict[str, ConsumerStats] = {}
        self._outstanding = 0
        self._in_flight = 0
        self._idle = asyncio.Event()
        #: set whenever a delivery settles (handled, or an intake committed); its one watcher clears it
        self.settled = asyncio.Event()
        self._quiet = asyncio.Event()
        self._quiet.set()
        self._stopping = False
        self._running = False
        self._live = False  # set once run() has read the backlog: later intake is counted as it comes
        self._intake = asyncio.Lock()
        self._arrivals: dict[str, asyncio.Event] = {}
        self._tg: asyncio.TaskGroup | None = None
        self._workers: dict[str, set[asyncio.Task[None]]] = {}
        self._retire: dict[str, int] = {}
        self._halt = asyncio.Event()
        self._cancelling = False  # set before the bus cancels its workers: what they raise then is not a failure
        #: the first ``StopRun`` a handler or the journal raised; ``run`` re-raises it after the drain
        self.stopped_by: StopRun | None = None

    # -- wiring ---------------------------------------------------------------
    def subscribe(self, sub: Subscription) -> None:
        if self._running:
            raise RuntimeError("subscribe before the bus runs")
        if sub.name in self._subs:
            raise ValueError(f"duplicate subscription {sub.name!r}")
        self._subs[sub.name] = sub
        self._by_type.clear()
        self._queues[sub.name] = asyncio.Queue(maxsize=sub.queue_size)
        self.stats[sub.name] = ConsumerStats()
        self._arrivals[sub.name] = asyncio.Event()

    def route(self, message: Message) -> Routed:
        kind = type(message)
        candidates = self._by_type.get(kind)
        if candidates is None:
            candidates = self._by_type[kind] = [s for s in self._subs.values() if issubclass(kind, s.topics)]
        return Routed(message, tuple(s.name for s in candidates if s.accepts(message)))

    def queue_depths(self) -> dict[str, int]:
        return {name: q.qsize() for name, q in self._queues.items()}

    # -- publishing -----------------------------------------------------------
    async def publish(self, messages: Iterable[Message]) -> list[Message]:
        """Persist messages from outside any handler (intake); the bus feeds them from the journal."""
        routed = [self.route(m) for m in messages]
        new = await self.ingest(lambda: self._journal.commit(routed, intake=True))
        return [r.message for r in new]

    async def ingest(self, commit: Callable[[], Awaitable[Sequence[Routed]]]) -> Sequence[Routed]:
        """Run ``commit`` (which persists intake messages) and have the bus deliver what it returns.

        Intake is never put on a queue here, so a huge file cannot block the
        caller: each consumer's feeder reads it from the journal, in order, as
        its queue has room.  Committed before ``run`` reads the backlog, it is
        part of the backlog; after, the feeders are woken for it."""
        self._outstanding += 1  # an intake in progress keeps run(until_idle) from finishing under it
        self._idle.clear()
        try:
            async with self._intake:
                new = await commit()
                if self._live:
                    self._outstanding += sum(len(r.consumers) for r in new)
                    for name in {c for r in new for c in r.consumers}:
                        self._arrivals[name].set()
        finally:
            self._settle()
        return new

    async def _deliver(self, routed: Sequence[Routed]) -> None:
        for r in routed:
            for name in r.consumers:
                if self._stopping:
                    return  # durable in the journal: a resume delivers it
                self._outstanding += 1
                self._idle.clear()
                queue = self._queues[name]
                if queue.full():
                    await self._put(name, r.message)
                else:  # most puts find room: no coroutine for them
                    queue.put_nowait(r.message)
                    stats = self.stats[name]
                    if queue.qsize() > stats.max_depth:
                        stats.max_depth = queue.qsize()

    async def _put(self, name: str, message: Message) -> None:
        queue = self._queues[name]
        await queue.put(message)
        stats = self.stats[name]
        stats.max_depth = max(stats.max_depth, queue.qsize())

    def _settle(self, count: int = 1) -> None:
        self._outstanding -= count
        self.settled.set()
        if self._outstanding == 0:
            self._idle.set()

    # -- running --------------------------------------------------------------
    async def run(self, *, until_idle: bool = True, stop: asyncio.Event | None = None, grace_s: float = 30.0) -> None:
        """Deliver the journal's backlog and everything it leads to.

        Returns when nothing is left to do (``until_idle``) or when ``stop`` is
        set; then stops intake, lets handlers in flight finish within
        ``grace_s``, and cancels the rest.  Unfinished deliveries stay pending
        in the journal."""
        if self._running:
            raise RuntimeError("bus is already running")
        self._running = True
        self._stopping = False
        self._halt.clear()
        self.stopped_by = None
        self._cancelling = False
        async with self._intake:  # a publish lands wholly before (backlog) or after (in memory)
            backlog = await self._journal.backlog()
            self._live = True
        self._outstanding += sum(backlog.counts.get(n, 0) for n in self._subs)
        if self._outstanding == 0:
            self._idle.set()
        else:
            self._idle.clear()
        stop = stop or asyncio.Event()
        try:
            async with asyncio.TaskGroup() as tg:
                self._tg = tg
                tasks = [tg.create_task(self._feed(n, backlog.watermark), name=f"{n}-feeder") for n in self._subs]
                for name, sub in self._subs.items():
                    self._workers[name] = {tg.create_task(self._worker(sub), name=f"{name}-{i}")
                                           for i in range(sub.concurrency)}
                waits = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._halt.wait())]
                if until_idle:
                    waits.append(asyncio.ensure_future(self._idle.wait()))
                try:
                    await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                    await self._drain(grace_s)
                finally:
                    for w in waits:
                        w.cancel()
                    self._cancelling = True  # also when run() itself is cancelled: the TaskGroup cancels them
                for task in [*tasks, *(t for ws in self._workers.values() for t in ws)]:
                    task.cancel()
            if self.stopped_by is not None:
                raise self.stopped_by
        finally:
            self._running = False
            self._live = False
            self._tg = None
            self._workers.clear()

    async def wait_idle(self) -> None:
        """Until nothing is left to deliver or handle (intake stopped, this is the end of the work)."""
        await self._idle.wait()

    def set_concurrency(self, name: str, workers: int) -> None:
        """Change a running subscription's number of workers (a config reload): extra ones
        start now; surplus ones leave after the message they are on."""
        if workers < 1:
            raise ValueError("a subscription needs at least one worker")
        sub = self._subs[name]
        self._subs[name] = replace(sub, concurrency=workers)
        live = self._workers.get(name)
        if self._tg is None or live is None:
            return
        self._retire[name] = max(0, len(live) - workers)
        for i in range(len(live), workers):
            live.add(self._tg.create_task(self._worker(self._subs[name]), name=f"{name}-{i}"))

    def halt(self, reason: StopRun) -> None:
        """Stop the run because of ``reason`` (the first one wins); ``run`` re-raises it after the drain."""
        if self.stopped_by is None:
            self.stopped_by = reason
            log.error("bus.halt", reason=str(reason), error=type(reason).__name__)
        self._stopping = True
        self._halt.set()

    async def _drain(self, grace_s: float) -> None:
        self._stopping = True
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(grace_s):
                await self._quiet.wait()
        if self._in_flight:
            log.warning("drain.deadline", in_flight=self._in_flight, grace_s=grace_s)

    async def _feed(self, name: str, watermark: int) -> None:
        """Feed ``name``'s queue from the journal: first its backlog (everything pending up
        to ``watermark``), then intake that arrives while running, as it arrives."""
        last = 0
        async for seq, message in self._journal.pending(name, watermark):
            if self._stopping:
                return
            last = seq
            await self._put(name, message)
        last = max(last, watermark)
        arrived = self._arrivals[name]
        while not self._stopping:
            await arrived.wait()
            arrived.clear()
            async for seq, message in self._journal.pending(name, None, after=last, intake_only=True):
                if self._stopping:
                    return
                last = seq
                await self._put(name, message)

    def _is_cancelling(self) -> bool:
        return self._cancelling

    async def _worker(self, sub: Subscription) -> None:
        queue = self._queues[sub.name]
        stats = self.stats[sub.name]
        # Every line logged while handling (agent, LLM layer, backend) carries run, question, agent.  This
        # task has its own copy of the context: the agent is bound once, run and question when they change.
        bind_context(agent=sub.name)
        bound: tuple[str, str] | None = None
        while True:
            if self._retire.get(sub.name):
                self._retire[sub.name] -= 1
                task = asyncio.current_task()
                self._workers.get(sub.name, set()).discard(task)  # type: ignore[arg-type]
                return
            message = queue.get_nowait() if queue.qsize() else await queue.get()
            if self._stopping:
                return  # left pending in the journal
            self._in_flight += 1
            stats.in_flight += 1
            self._quiet.clear()
            started = time.perf_counter()
            if bound != (message.run_id, message.question_id):
                bound = (message.run_id, message.question_id)
                bind_context(run=message.run_id, question=message.question_id)
            try:
                if sub.retry_on:
                    outputs, ok = await handle_with_retries(sub, message, stats, cancelled=self._is_cancelling)
                else:  # what handle_with_retries does for one attempt, without a coroutine around the handler
                    try:
                        outputs, ok = await sub.handler(message), True
                    except BaseException as exc:  # noqa: BLE001 - settle_error re-raises what must propagate
                        failed = settle_error(sub, message, exc, 1, 1, self._is_cancelling)
                        assert failed is not None  # one attempt: never retried
                        outputs, ok = [failed], False
                new = await self._journal.commit([self.route(m) for m in outputs], Ack(message.id, sub.name, ok))
                if _root.isEnabledFor(logging.DEBUG):  # a per-message event: not even built below DEBUG
                    log.debug("handler.done", ok=ok, outputs=len(outputs),
                              latency_s=round(time.perf_counter() - started, 4))
            except StopRun as exc:  # the message stays pending: the run stops, a resume delivers it again
                self.halt(exc)
                return
            finally:
                self._in_flight -= 1
                stats.in_flight -= 1
                if self._in_flight == 0:
                    self._quiet.set()
            stats.handled += 1
            stats.failed += not ok
            await self._deliver(new)
            self._settle()
