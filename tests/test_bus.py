"""The message bus over a real SQLite journal: flow, idempotency, back-pressure, failures, stop/resume."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Sequence

import pytest

from bus import (
    Ack,
    Backoff,
    CoTGenerated,
    Message,
    MessageBus,
    Path,
    Provenance,
    Question,
    QuestionIngested,
    RecordReady,
    StageFailed,
    Subscription,
    Verdict,
    decode,
)
from reasonmed_async.store import CheckpointStore

RUN = "run-b"
PROV = Provenance(role="assemble", model="m", backend="sim")
NO_WAIT = Backoff(attempts=3, base_s=0.0, cap_s=0.0)


def question(i: int) -> Question:
    return Question(id=f"q{i:03d}", stem=f"stem {i}?", options=("yes", "no", "maybe"), answer=i % 3, ordinal=i)


def ingested(i: int) -> QuestionIngested:
    return QuestionIngested(run_id=RUN, question_id=question(i).id, question=question(i))


def new(result) -> list[Message]:
    """The messages a journal commit reported new (it returns them routed)."""
    return [getattr(r, "message", r) for r in result]


class Flow:
    """gen: QuestionIngested → ``paths`` CoTGenerated; verify: CoTGenerated → Verdict + RecordReady.

    Counts handler invocations per (subscription, message id): started, completed, cancelled."""

    def __init__(self, paths: int = 3, *, delay_s: float = 0.0, verify_delay_s: float = 0.0) -> None:
        self.paths = paths
        self.delay_s = delay_s
        self.verify_delay_s = verify_delay_s
        self.started: Counter[tuple[str, str]] = Counter()
        self.completed: Counter[tuple[str, str]] = Counter()
        self.cancelled: Counter[tuple[str, str]] = Counter()
        self.on_verify = None  # optional hook(message) called at the start of verify

    async def _track(self, name: str, message: Message, delay: float, make):
        key = (name, message.id)
        self.started[key] += 1
        try:
            if delay:
                await asyncio.sleep(delay)
            out = make()
        except asyncio.CancelledError:
            self.cancelled[key] += 1
            raise
        self.completed[key] += 1
        return out

    async def gen(self, message: Message) -> Sequence[Message]:
        assert isinstance(message, QuestionIngested)
        q = message.question
        return await self._track("gen", message, self.delay_s, lambda: [
            CoTGenerated(run_id=message.run_id, question_id=q.id, parent_id=message.id, question=q,
                         path=Path(name=f"p{k}", cot=f"cot {q.id} p{k}", stated_answer="A"))
            for k in range(self.paths)
        ])

    async def verify(self, message: Message) -> Sequence[Message]:
        assert isinstance(message, CoTGenerated)
        if self.on_verify is not None:
            self.on_verify(message)
        q = message.question

        def make():
            verdict = Verdict(run_id=message.run_id, question_id=q.id, parent_id=message.id, question=q,
                              path=message.path, verdict="Correct" if q.answer == 0 else "Error", reason="r")
            record = RecordReady(run_id=message.run_id, question_id=q.id, parent_id=message.id, question=q,
                                 tier="easy", path=message.path, response="A", response_provenance=PROV,
                                 record_id=f"{q.id}/{message.path.name}")
            return [verdict, record]

        return await self._track("verify", message, self.verify_delay_s, make)

    def subscriptions(self, *, concurrency: int = 2, queue_size: int = 8) -> list[Subscription]:
        return [
            Subscription("gen", (QuestionIngested,), self.gen, concurrency=concurrency, queue_size=queue_size,
                         backoff=NO_WAIT),
            Subscription("verify", (CoTGenerated,), self.verify, concurrency=concurrency, queue_size=queue_size,
                         backoff=NO_WAIT),
        ]


def make_bus(store: CheckpointStore, subs: Sequence[Subscription]) -> MessageBus:
    bus = MessageBus(store)
    for sub in subs:
        bus.subscribe(sub)
    return bus


async def intake(store: CheckpointStore, bus: MessageBus, n: int) -> list[QuestionIngested]:
    """What ``create_run`` does: the first messages go into the journal, routed, before the bus runs."""
    messages = [ingested(i) for i in range(n)]
    assert new(await store.commit([bus.route(m) for m in messages])) == messages
    return messages


async def snapshot(store: CheckpointStore) -> dict[str, list[tuple]]:
    return {
        "messages": await store.query("SELECT seq, id, type, label, parent_id, payload FROM messages ORDER BY seq"),
        "deliveries": await store.query("SELECT seq, message_id, consumer, state FROM deliveries ORDER BY seq"),
        "records": await store.query("SELECT * FROM records ORDER BY record_id"),
    }


async def states(store: CheckpointStore) -> Counter[tuple[str, str]]:
    return Counter(dict(((c, s), n) for c, s, n in await store.query(
        "SELECT consumer, state, COUNT(*) FROM deliveries GROUP BY consumer, state")))


async def run(bus: MessageBus, **kw) -> None:
    await asyncio.wait_for(bus.run(**kw), timeout=20)


# -- flow -------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("n", "paths", "concurrency", "queue_size"), [
    (1, 1, 1, 1),
    (5, 3, 1, 2),
    (12, 9, 4, 8),
])
async def test_flow_through_two_subscriptions(tmp_path, n, paths, concurrency, queue_size):
    flow = Flow(paths)
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, flow.subscriptions(concurrency=concurrency, queue_size=queue_size))
        await intake(store, bus, n)
        await run(bus, until_idle=True)
        assert sum(flow.completed.values()) == n + n * paths
        assert set(flow.completed.values()) == {1}
        assert await states(store) == Counter({("gen", "done"): n, ("verify", "done"): n * paths})
        types = dict(await store.query("SELECT type, COUNT(*) FROM messages GROUP BY type"))
        assert types == {"QuestionIngested": n, "CoTGenerated": n * paths, "Verdict": n * paths,
                         "RecordReady": n * paths}
        assert (await store.query("SELECT COUNT(*) FROM records"))[0][0] == n * paths
        assert bus.stats["gen"].handled == n and bus.stats["verify"].handled == n * paths
        assert bus.stats["gen"].failed == bus.stats["verify"].failed == 0
        assert bus.stats["verify"].in_flight == 0
        assert (await store.backlog()).total == 0


async def test_run_with_nothing_to_do_returns(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, Flow().subscriptions())
        await run(bus, until_idle=True)
        assert await states(store) == Counter()


async def test_routing_respects_accepts(tmp_path):
    flow = Flow(4)
    seen: list[str] = []

    async def only_even(message: Message) -> Sequence[Message]:
        seen.append(message.path.name)  # type: ignore[attr-defined]
        return []

    subs = flow.subscriptions() + [
        Subscription("even", (CoTGenerated,), only_even, accepts=lambda m: m.path.name in ("p0", "p2")),
    ]
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, subs)
        await intake(store, bus, 2)
        await run(bus, until_idle=True)
        assert sorted(seen) == ["p0", "p0", "p2", "p2"]
        assert await states(store) == Counter({("gen", "done"): 2, ("verify", "done"): 8, ("even", "done"): 4})


def test_subscription_validation():
    flow = Flow()
    with pytest.raises(ValueError):
        Subscription("x", (CoTGenerated,), flow.verify, concurrency=0)
    with pytest.raises(ValueError):
        Subscription("x", (CoTGenerated,), flow.verify, queue_size=0)


async def test_duplicate_subscription_is_refused(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, Flow().subscriptions())
        with pytest.raises(ValueError, match="duplicate"):
            bus.subscribe(Flow().subscriptions()[0])


# -- idempotency ------------------------------------------------------------------------------------

class GatedJournal:
    """The store as a journal whose ``backlog()`` waits for a gate: a publish lands while ``run`` starts."""

    def __init__(self, store: CheckpointStore) -> None:
        self.store = store
        self.gate = asyncio.Event()
        self.backlog_called = asyncio.Event()
        self.backlog_done = asyncio.Event()

    async def commit(self, outputs, ack=None, *, intake=False):
        return await self.store.commit(outputs, ack, intake=intake)

    async def backlog(self):
        self.backlog_called.set()
        await self.gate.wait()
        backlog = await self.store.backlog()
        self.backlog_done.set()
        return backlog

    def pending(self, consumer, watermark, *, after=0, intake_only=False):
        return self.store.pending(consumer, watermark, after=after, intake_only=intake_only)


async def test_publish_same_message_twice_is_a_no_op(tmp_path):
    flow = Flow(2)
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        journal = GatedJournal(store)
        journal.gate.set()
        bus = MessageBus(journal)  # type: ignore[arg-type]
        for sub in flow.subscriptions():
            bus.subscribe(sub)
        stop = asyncio.Event()
        runner = asyncio.create_task(bus.run(until_idle=False, stop=stop, grace_s=5))
        # past start-up (publishing during it: see test_publish_while_run_is_starting_delivers_once)
        await asyncio.wait_for(journal.backlog_done.wait(), 5)
        first = await bus.publish([ingested(1), ingested(2)])
        assert first == [ingested(1), ingested(2)]
        assert await bus.publish([ingested(1), ingested(2)]) == []
        assert await bus.publish([ingested(2), ingested(3)]) == [ingested(3)]
        for _ in range(400):
            if (await states(store)).get(("verify", "done"), 0) == 6:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(runner, 10)
        before = await snapshot(store)
        assert await bus.publish([ingested(1)]) == []
        assert await snapshot(store) == before
        assert set(flow.started.values()) == {1}
        assert sum(flow.started.values()) == 3 + 6


async def test_redelivered_input_changes_nothing(tmp_path):
    """A handler invoked twice for one input (a crash between its commit and … ) produces no new rows."""
    path = tmp_path / "x.db"
    flow = Flow(3)
    async with await CheckpointStore.open(path) as store:
        bus = make_bus(store, flow.subscriptions())
        await intake(store, bus, 4)
        await run(bus, until_idle=True)
        before = await snapshot(store)
    redo = [m for _, m, c, _ in before["deliveries"] if c in ("gen", "verify")][::3]
    con = sqlite3.connect(path)
    with con:
        con.executemany("UPDATE deliveries SET state='pending' WHERE message_id=?", [(m,) for m in redo])
    con.close()
    async with await CheckpointStore.open(path) as store:
        bus = make_bus(store, flow.subscriptions())
        assert (await store.backlog()).total == len(redo)
        await run(bus, until_idle=True)
        assert await snapshot(store) == before  # 'done' again, nothing added
        assert bus.stats["gen"].handled + bus.stats["verify"].handled == len(redo)
    handled_twice = {mid for (_, mid), c in flow.completed.items() if c == 2}
    assert handled_twice == set(redo)


async def test_journal_commit_of_same_outputs_and_ack_twice_is_a_no_op(tmp_path):
    flow = Flow(3)
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, flow.subscriptions())
        (q,) = await intake(store, bus, 1)
        outputs = await flow.gen(q)
        routed = [bus.route(m) for m in outputs]
        assert all(r.consumers == ("verify",) for r in routed)
        assert new(await store.commit(routed, Ack(q.id, "gen"))) == list(outputs)
        before = await snapshot(store)
        assert new(await store.commit(routed, Ack(q.id, "gen"))) == []
        assert new(await store.commit(routed, Ack(q.id, "gen", ok=False))) == []
        assert await snapshot(store) == before
        # the bus then delivers only what is pending
        await run(bus, until_idle=True)
        assert flow.completed[("gen", q.id)] == 1
        assert await states(store) == Counter({("gen", "done"): 1, ("verify", "done"): 3})


async def test_publish_before_run_delivers_each_message_once(tmp_path):
    """Intake published before ``run`` is in the journal's backlog; it must be handled once, not twice."""
    flow = Flow(1)
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, flow.subscriptions(queue_size=8))
        await bus.publish([ingested(i) for i in range(3)])
        await run(bus, until_idle=True)
        assert set(flow.started.values()) == {1} and len(flow.started) == 6, flow.started


async def test_publish_before_run_of_more_than_queue_size_does_not_block(tmp_path):
    flow = Flow(1)
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, flow.subscriptions(queue_size=2))
        try:
            await asyncio.wait_for(bus.publish([ingested(i) for i in range(5)]), 1.0)
        except TimeoutError:
            pytest.fail("publish() of 5 messages into a queue of 2 blocked with no bus running")
        await run(bus, until_idle=True)
        assert set(flow.completed.values()) == {1} and len(flow.completed) == 10


async def test_publish_while_run_is_starting_delivers_once(tmp_path):
    flow = Flow(1)
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        journal = GatedJournal(store)
        bus = MessageBus(journal)  # type: ignore[arg-type]
        for sub in flow.subscriptions():
            bus.subscribe(sub)
        stop = asyncio.Event()
        runner = asyncio.create_task(bus.run(until_idle=True, stop=stop, grace_s=5))
        await asyncio.wait_for(journal.backlog_called.wait(), 5)
        publishing = asyncio.create_task(bus.publish([ingested(1)]))
        await asyncio.sleep(0.05)  # the publish waits for run() to finish reading the backlog
        journal.gate.set()
        assert await asyncio.wait_for(publishing, 5) == [ingested(1)]
        done, _ = await asyncio.wait([runner], timeout=2)
        if not done:
            stop.set()
            await asyncio.wait_for(runner, 5)
        assert done, "run(until_idle=True) never became idle"
        await runner
        assert await states(store) == Counter({("gen", "done"): 1, ("verify", "done"): 1})
        assert flow.started[("gen", ingested(1).id)] == 1


# -- back-pressure ----------------------------------------------------------------------------------

@pytest.mark.parametrize(("slow_queue", "slow_concurrency", "fan_out"), [(4, 1, 40), (4, 3, 60), (1, 2, 30)])
async def test_back_pressure_bounds_every_queue(tmp_path, slow_queue, slow_concurrency, fan_out):
    handled: list[str] = []

    async def fan(message: Message) -> Sequence[Message]:
        q = message.question  # type: ignore[attr-defined]
        return [CoTGenerated(run_id=RUN, question_id=q.id, parent_id=message.id, question=q,
                             path=Path(name=f"p{k}", cot="c")) for k in range(fan_out)]

    async def slow(message: Message) -> Sequence[Message]:
        await asyncio.sleep(0.001)
        handled.append(message.id)
        return []

    bounds = {"fan": 2, "slow": slow_queue}
    subs = [
        Subscription("fan", (QuestionIngested,), fan, concurrency=2, queue_size=bounds["fan"]),
        Subscription("slow", (CoTGenerated,), slow, concurrency=slow_concurrency, queue_size=slow_queue),
    ]
    n = 5
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, subs)
        await intake(store, bus, n)
        depths: list[dict[str, int]] = []
        done = asyncio.Event()

        async def sample() -> None:
            while not done.is_set():
                depths.append(bus.queue_depths())
                await asyncio.sleep(0)

        sampler = asyncio.create_task(sample())
        try:
            await run(bus, until_idle=True)
        finally:
            done.set()
            await sampler
        assert len(handled) == len(set(handled)) == n * fan_out
        assert len(depths) > 10
        for d in depths:
            assert all(d[name] <= bound for name, bound in bounds.items()), d
        for name, bound in bounds.items():
            assert bus.stats[name].max_depth <= bound
        # the slow consumer's queue was actually full: its producers waited
        assert bus.stats["slow"].max_depth == slow_queue
        assert max(d["slow"] for d in depths) == slow_queue
        assert await states(store) == Counter({("fan", "done"): n, ("slow", "done"): n * fan_out})


# -- failures ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("attempts", [1, 2, 4])
async def test_failing_handler_is_retried_then_becomes_stage_failed(tmp_path, attempts):
    calls: Counter[str] = Counter()
    failures: list[StageFailed] = []

    async def broken(message: Message) -> Sequence[Message]:
        calls[message.id] += 1
        if message.path.name == "p1":  # type: ignore[attr-defined]
            raise ValueError(f"bad input {message.path.name}")  # type: ignore[attr-defined]
        return []

    async def on_failure(message: Message) -> Sequence[Message]:
        assert isinstance(message, StageFailed)
        failures.append(message)
        return []

    flow = Flow(3)
    subs = [
        flow.subscriptions()[0],
        Subscription("checker", (CoTGenerated,), broken, backoff=Backoff(attempts=attempts, base_s=0.001, cap_s=0.002)),
        Subscription("failures", (StageFailed,), on_failure),
    ]
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, subs)
        await intake(store, bus, 2)
        await run(bus, until_idle=True)
        rows = await store.query("SELECT id, payload, label, parent_id FROM messages WHERE type='StageFailed'")
        assert len(rows) == 2
        for mid, payload, label, parent in rows:
            failed = decode(payload)
            assert isinstance(failed, StageFailed)
            assert failed.id == mid
            assert failed.stage == "checker" == label
            assert failed.reason == "ValueError: bad input p1"
            assert failed.attempts == attempts
            assert failed.path == "p1"
            assert failed.failed_type == "CoTGenerated"
            assert failed.parent_id == parent
            assert calls[parent] == attempts
            state = await store.query("SELECT state FROM deliveries WHERE message_id=? AND consumer='checker'",
                                      (parent,))
            assert state == [("failed",)]
        assert sorted(f.id for f in failures) == sorted(r[0] for r in rows)
        assert sorted(calls.values()) == [1, 1, 1, 1] + [attempts] * 2
        assert bus.stats["checker"].failed == 2
        assert bus.stats["checker"].retried == 2 * (attempts - 1)
        assert await states(store) == Counter({("gen", "done"): 2, ("checker", "done"): 4,
                                               ("checker", "failed"): 2, ("failures", "done"): 2})


async def test_handler_that_recovers_on_retry_succeeds(tmp_path):
    calls: Counter[str] = Counter()

    async def flaky(message: Message) -> Sequence[Message]:
        calls[message.id] += 1
        if calls[message.id] < 3:
            raise RuntimeError("transient")
        return []

    flow = Flow(2)
    subs = [flow.subscriptions()[0], Subscription("flaky", (CoTGenerated,), flaky, backoff=NO_WAIT)]
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, subs)
        await intake(store, bus, 2)
        await run(bus, until_idle=True)
        assert set(calls.values()) == {3}
        assert bus.stats["flaky"].failed == 0 and bus.stats["flaky"].retried == 8
        assert (await store.query("SELECT COUNT(*) FROM messages WHERE type='StageFailed'")) == [(0,)]
        assert await states(store) == Counter({("gen", "done"): 2, ("flaky", "done"): 4})


# -- stop, cancellation, resume -----------------------------------------------------------------------

async def test_cancelled_handler_is_left_pending_not_failed(tmp_path):
    started = asyncio.Event()
    cancelled: list[str] = []

    async def hang(message: Message) -> Sequence[Message]:
        started.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.append(message.id)
            raise
        return []

    flow = Flow(1)
    subs = [flow.subscriptions()[0], Subscription("hang", (CoTGenerated,), hang, backoff=NO_WAIT)]
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, subs)
        await intake(store, bus, 1)
        stop = asyncio.Event()
        runner = asyncio.create_task(bus.run(until_idle=True, stop=stop, grace_s=0.05))
        await asyncio.wait_for(started.wait(), 5)
        stop.set()
        await asyncio.wait_for(runner, 5)
        assert len(cancelled) == 1
        (cot_id,) = cancelled
        assert await store.query("SELECT state FROM deliveries WHERE message_id=? AND consumer='hang'",
                                 (cot_id,)) == [("pending",)]
        assert await store.query("SELECT COUNT(*) FROM messages WHERE type='StageFailed'") == [(0,)]
        assert bus.stats["hang"].failed == 0 and bus.stats["hang"].retried == 0
        assert bus.stats["hang"].in_flight == 0


async def test_in_flight_handler_finishing_within_grace_is_committed(tmp_path):
    started = asyncio.Event()

    async def slowish(message: Message) -> Sequence[Message]:
        started.set()
        await asyncio.sleep(0.05)
        q = message.question  # type: ignore[attr-defined]
        return [Verdict(run_id=RUN, question_id=q.id, parent_id=message.id, question=q,
                        path=message.path, verdict="Correct", reason="ok")]  # type: ignore[attr-defined]

    async def after(message: Message) -> Sequence[Message]:
        return []

    flow = Flow(1)
    subs = [flow.subscriptions()[0], Subscription("slowish", (CoTGenerated,), slowish),
            Subscription("after", (Verdict,), after)]
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, subs)
        await intake(store, bus, 1)
        stop = asyncio.Event()
        runner = asyncio.create_task(bus.run(until_idle=True, stop=stop, grace_s=5))
        await asyncio.wait_for(started.wait(), 5)
        stop.set()
        await asyncio.wait_for(runner, 5)
        # its outputs are durable and pending for their consumer; nothing was delivered in memory
        assert await states(store) == Counter({("gen", "done"): 1, ("slowish", "done"): 1, ("after", "pending"): 1})
        assert bus.stats["after"].handled == 0


@pytest.mark.parametrize(("grace_s", "stop_after"), [(5.0, 7), (0.0, 7), (5.0, 1), (0.0, 30)])
async def test_stop_and_resume_finishes_exactly_the_remaining_work(tmp_path, grace_s, stop_after):
    n, paths = 12, 3
    path = tmp_path / "x.db"

    # the reference: one uninterrupted run
    reference = Flow(paths)
    async with await CheckpointStore.open(tmp_path / "ref.db") as store:
        bus = make_bus(store, reference.subscriptions())
        await intake(store, bus, n)
        await run(bus, until_idle=True)
        expected = await snapshot(store)

    flow = Flow(paths, delay_s=0.001, verify_delay_s=0.003)
    stop = asyncio.Event()
    verified = 0

    def count_and_stop(_: Message) -> None:
        nonlocal verified
        verified += 1
        if verified == stop_after:
            stop.set()

    flow.on_verify = count_and_stop
    async with await CheckpointStore.open(path) as store:
        bus = make_bus(store, flow.subscriptions(concurrency=3, queue_size=4))
        await intake(store, bus, n)
        await run(bus, until_idle=True, stop=stop, grace_s=grace_s)
        assert stop.is_set()
        left = (await store.backlog()).total
        assert left > 0
    first_completed = sum(flow.completed.values())
    assert first_completed < n + n * paths

    flow.on_verify = None
    async with await CheckpointStore.open(path) as store:  # a fresh bus on the re-opened store
        bus = make_bus(store, flow.subscriptions(concurrency=3, queue_size=4))
        await run(bus, until_idle=True)
        assert bus.stats["gen"].handled + bus.stats["verify"].handled == n + n * paths - first_completed
        after = await snapshot(store)
        assert (await store.backlog()).total == 0

    # every message handled to completion exactly once overall; only cancelled ones were started again
    assert len(flow.completed) == n + n * paths
    assert set(flow.completed.values()) == {1}
    for key, count in flow.started.items():
        assert count == 1 + flow.cancelled[key], key
    if grace_s > 0:
        assert not flow.cancelled
    # the same messages, deliveries and records as an uninterrupted run
    for table in ("messages", "deliveries", "records"):
        def content(rows, table=table):
            if table == "messages":
                return sorted((r[1], r[2], r[3], r[4], r[5]) for r in rows)
            if table == "deliveries":
                return sorted((r[1], r[2], r[3]) for r in rows)
            return sorted(rows)
        assert content(after[table]) == content(expected[table]), table


async def test_bus_cannot_run_twice_at_once(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, Flow().subscriptions())
        stop = asyncio.Event()
        runner = asyncio.create_task(bus.run(until_idle=False, stop=stop, grace_s=1))
        await asyncio.sleep(0.01)
        with pytest.raises(RuntimeError, match="already running"):
            await bus.run()
        with pytest.raises(RuntimeError, match="before the bus runs"):
            bus.subscribe(Subscription("late", (Verdict,), Flow().verify))
        stop.set()
        await asyncio.wait_for(runner, 5)
