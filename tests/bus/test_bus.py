"""The message bus over a real SQLite journal: flow, routing, idempotency, back-pressure."""

from __future__ import annotations

import asyncio
import sqlite3
from collections import Counter
from collections.abc import Sequence

import pytest

from bus import (
    Ack,
    CoTGenerated,
    Message,
    MessageBus,
    Path,
    QuestionIngested,
    Subscription,
)
from reasonmed_async.store.checkpoint import CheckpointStore

from bus_support import RUN, Flow, intake, ingested, make_bus, new, run, snapshot, states


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
        con.executemany("UPDATE delivery_rows SET state=0 WHERE message_seq=(SELECT seq FROM message_rows WHERE id=?)",
                        [(bytes.fromhex(m),) for m in redo])  # (v8: 0 is pending, ids as their bytes)
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
