"""The message bus over a real SQLite journal: failures, cancellation, stop and resume."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import pytest

from bus import (
    Backoff,
    CoTGenerated,
    FailureKind,
    Message,
    Stage,
    StageFailed,
    Subscription,
    Verdict,
    decode,
)
from reasonmed_async.store.checkpoint import CheckpointStore
from reasonmed_async.store.reading import MESSAGE_COLUMNS

from bus_support import RUN, NO_WAIT, Flow, intake, make_bus, run, snapshot, states


# -- failures ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("attempts", [1, 2, 4])
async def test_transient_handler_error_is_retried_then_becomes_stage_failed(tmp_path, attempts):
    """Only the types in ``retry_on`` are retried by the bus, at most ``backoff.attempts`` times."""
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
        Subscription("checker", (CoTGenerated,), broken, backoff=Backoff(attempts=attempts, base_s=0.001, cap_s=0.002),
                     stage=Stage.VERIFY, retry_on=(ValueError,)),
        Subscription("failures", (StageFailed,), on_failure),
    ]
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, subs)
        await intake(store, bus, 2)
        await run(bus, until_idle=True)
        rows = await store.load(f"SELECT {MESSAGE_COLUMNS}, label, parent_id FROM messages"
                                " WHERE type='StageFailed'")
        assert len(rows) == 2
        for (label, parent), failed in rows:
            mid = failed.id
            assert isinstance(failed, StageFailed)
            assert failed.id == mid
            assert failed.stage is Stage.VERIFY and label == "verify"
            assert failed.kind is FailureKind.INTERNAL
            assert (failed.error_class, failed.message) == ("ValueError", "bad input p1")
            assert failed.reason == "ValueError: bad input p1"
            assert failed.attempts == attempts
            assert failed.path == "p1"
            assert failed.failed_type == "CoTGenerated"
            assert failed.parent_id == parent
            assert calls[parent] == attempts
            state = await store.query("SELECT state FROM deliveries WHERE message_seq=(SELECT seq FROM messages WHERE id=?) AND consumer='checker'",
                                      (parent,))
            assert state == [("failed",)]
        assert sorted(f.id for f in failures) == sorted(m.id for _, m in rows)
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
    subs = [flow.subscriptions()[0], Subscription("flaky", (CoTGenerated,), flaky, backoff=NO_WAIT,
                                                  retry_on=(RuntimeError,))]
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
        assert await store.query("SELECT state FROM deliveries WHERE message_seq=(SELECT seq FROM messages WHERE id=?) AND consumer='hang'",
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
