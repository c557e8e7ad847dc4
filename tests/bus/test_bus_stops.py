"""What the bus does not retry, what it unwraps, and the two things that always win: cancellation and a stop."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence

import pytest

from bus import CoTGenerated, FailureKind, Message, Stage, StageFailed, StopRun, Subscription, decode
from reasonmed_async.store.checkpoint import CheckpointStore
from reasonmed_async.store.reading import MESSAGE_COLUMNS

from bus_support import NO_WAIT, Flow, intake, make_bus, run, states


class CallError(Exception):
    """Stands for an LLM client's error: it carries its own failure kind and was retried already."""

    failure_kind = FailureKind.CALL_FAILED
    attempts = 3


class Unparseable(Exception):
    failure_kind = FailureKind.UNPARSEABLE

    def __init__(self, raw: str) -> None:
        super().__init__("no JSON object")
        self.raw = raw


async def _failures(store: CheckpointStore) -> list[StageFailed]:
    return [m for _, m in await store.load(f"SELECT {MESSAGE_COLUMNS} FROM messages"
                                           " WHERE type='StageFailed'")]


@pytest.mark.parametrize(("error", "kind", "raw"), [
    (CallError("HTTP 500"), FailureKind.CALL_FAILED, ""),
    (Unparseable("I think the answer is B"), FailureKind.UNPARSEABLE, "I think the answer is B"),
    (KeyError("path"), FailureKind.INTERNAL, ""),
])
async def test_errors_outside_retry_on_fail_at_once_with_their_kind(tmp_path, error, kind, raw):
    calls: Counter[str] = Counter()

    async def broken(message: Message) -> Sequence[Message]:
        calls[message.id] += 1
        raise error

    flow = Flow(2)
    subs = [flow.subscriptions()[0], Subscription("ranker", (CoTGenerated,), broken, backoff=NO_WAIT, stage=Stage.RANK)]
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, subs)
        await intake(store, bus, 1)
        await run(bus, until_idle=True)
        assert set(calls.values()) == {1}, "the bus adds no attempt to an error it does not own"
        failures = await _failures(store)
        assert len(failures) == 2
        for f in failures:
            assert (f.stage, f.kind, f.error_class, f.raw) == (Stage.RANK, kind, type(error).__name__, raw)
        assert all(f.attempts == getattr(error, "attempts", 1) for f in failures)


async def test_failure_inside_a_fan_out_stores_the_inner_cause(tmp_path):
    async def fan(message: Message) -> Sequence[Message]:
        async def one(k: int) -> None:
            if k == 2:
                raise CallError("deployment gpt-x: HTTP 400: context_length_exceeded")
            await asyncio.sleep(0)

        async with asyncio.TaskGroup() as tg:
            for k in range(3):
                tg.create_task(one(k))
        return []

    flow = Flow(1)
    subs = [flow.subscriptions()[0], Subscription("summarizer", (CoTGenerated,), fan, backoff=NO_WAIT, stage=Stage.SUMMARIZE)]
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, subs)
        await intake(store, bus, 1)
        await run(bus, until_idle=True)
        (f,) = await _failures(store)
        assert (f.error_class, f.message) == ("CallError", "deployment gpt-x: HTTP 400: context_length_exceeded")
        assert f.kind is FailureKind.CALL_FAILED and f.stage is Stage.SUMMARIZE


async def test_cancelled_fan_out_handler_is_left_pending(tmp_path):
    """A handler whose inner TaskGroup is running when the run stops: cancelled, pending, never failed."""
    started = asyncio.Event()

    async def fan(message: Message) -> Sequence[Message]:
        async def one(k: int) -> None:
            if k == 0:
                started.set()
                await asyncio.sleep(3600)
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                raise CallError("connection reset while cancelled") from None  # a client that turns it into an error

        async with asyncio.TaskGroup() as tg:
            for k in range(3):
                tg.create_task(one(k))
        return []

    flow = Flow(1)
    subs = [flow.subscriptions()[0], Subscription("generator", (CoTGenerated,), fan, backoff=NO_WAIT, stage=Stage.GENERATE)]
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, subs)
        await intake(store, bus, 1)
        stop = asyncio.Event()
        runner = asyncio.create_task(bus.run(until_idle=True, stop=stop, grace_s=0.05))
        await asyncio.wait_for(started.wait(), 5)
        stop.set()
        await asyncio.wait_for(runner, 5)
        assert await _failures(store) == []
        assert await states(store) == Counter({("gen", "done"): 1, ("generator", "pending"): 1})


async def test_stop_run_halts_the_bus_leaving_the_message_pending(tmp_path):
    class Outage(StopRun):
        pass

    calls = Counter[str]()

    async def out(message: Message) -> Sequence[Message]:
        calls[message.id] += 1
        async with asyncio.TaskGroup() as tg:  # wrapped in an exception group: still a stop
            tg.create_task(asyncio.sleep(0))
            raise Outage("endpoint out for 1800 s")

    flow = Flow(3)
    subs = [flow.subscriptions(concurrency=1)[0],
            Subscription("verifier", (CoTGenerated,), out, backoff=NO_WAIT, concurrency=1,
                         stage=Stage.VERIFY)]
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        bus = make_bus(store, subs)
        await intake(store, bus, 2)
        with pytest.raises(Outage, match="1800"):
            await run(bus, until_idle=True)
        assert await _failures(store) == []
        counted = await states(store)
        assert counted[("verifier", "failed")] == 0 and counted[("verifier", "done")] == 0
        assert counted[("verifier", "pending")] == 3 * counted[("gen", "done")] >= 3
        assert sum(calls.values()) == 1, "no other message is handled once the run is stopping"
