"""A freed replica slot goes to the one waiter it admits: in arrival order, each model in turn, never lost to
a cancellation or a timer; and over HTTP a backend's waiters are not all woken by every release."""

from __future__ import annotations

import asyncio
import time

import pytest

from agents.llm import ChatMessage, ChatRequest, ConnectionLost
from clock_support import FakeClock
from fake_llm_server import FakeLLMServer, Faults
from reasonmed_async.llm.handover import Handover
from reasonmed_async.llm.openai_http import OpenAICompatBackend, OpenAISettings
from reasonmed_async.llm.replicas import PoolPolicy, ReplicaPool

NOW = 100.0


def _pool(cap: int) -> ReplicaPool:
    return ReplicaPool(["http://a/v1"], PoolPolicy(max_concurrency=cap, adaptive=False))


async def _queued(handover: Handover, model: str, wake_in: float | None = None) -> asyncio.Task:
    task = asyncio.create_task(handover.wait(model, wake_in))
    await asyncio.sleep(0)  # it is in the queue
    return task


async def _two_waiters_and_a_release() -> tuple[ReplicaPool, Handover, asyncio.Task, asyncio.Task]:
    """One slot, busy; two waiters queue; the slot is released and handed over (to the first)."""
    pool = _pool(1)
    held = pool.acquire(NOW, "m")
    handover = Handover(pool, lambda: NOW)
    first, second = await _queued(handover, "m"), await _queued(handover, "m")
    pool.succeeded(held, NOW, latency_s=0.1, tokens=10)
    handover.hand_over()
    return pool, handover, first, second


async def test_a_release_admits_the_first_waiter_and_wakes_no_other():
    pool, handover, first, second = await _two_waiters_and_a_release()
    await asyncio.sleep(0)
    assert first.done() and first.result().url == "http://a/v1"
    assert not second.done() and handover.waiting == 1  # still asleep: nothing was freed for it
    pool.succeeded(first.result(), NOW, latency_s=0.1, tokens=10)
    handover.hand_over()
    assert (await second).url == "http://a/v1" and handover.waiting == 0


async def test_slots_go_in_arrival_order_and_a_paused_model_blocks_no_other():
    pool = _pool(2)
    held = [pool.acquire(NOW, "m"), pool.acquire(NOW, "m")]
    handover = Handover(pool, lambda: NOW)
    paused = await _queued(handover, "paused")
    a1, b1, a2 = await _queued(handover, "a"), await _queued(handover, "b"), await _queued(handover, "a")
    pool.replicas[0].paused["paused"] = NOW + 60  # a 429 said: no request of this model for a minute
    for ticket in held:
        pool.succeeded(ticket, NOW, latency_s=0.1, tokens=10)
    handover.hand_over()
    await asyncio.sleep(0)
    assert a1.done() and b1.done()  # the two slots, to the first two waiters the pool admits
    assert not a2.done() and not paused.done() and handover.waiting == 2
    for task in (paused, a2):
        task.cancel()
    await asyncio.gather(paused, a2, return_exceptions=True)
    assert handover.waiting == 0


async def test_a_ticket_handed_to_a_waiter_cancelled_before_it_ran_goes_to_the_next():
    pool, _, doomed, patient = await _two_waiters_and_a_release()  # the ticket is the doomed waiter's now...
    doomed.cancel()  # ...but it is cancelled before it runs
    with pytest.raises(asyncio.CancelledError):
        await doomed
    assert (await patient) is not None  # the slot went on to the next waiter
    assert pool.replicas[0].outstanding == 1


async def test_a_waiter_leaves_at_its_clock_event_and_a_ticket_handed_as_it_fires_is_kept():
    pool = _pool(1)
    held = pool.acquire(NOW, "m")
    handover = Handover(pool, lambda: NOW)
    assert await handover.wait("m", 0.01) is None  # the next clock event: ask the pool again
    assert handover.waiting == 0
    waiter = await _queued(handover, "m", 0.0)  # its timer fires on the next loop turn...
    pool.succeeded(held, NOW, latency_s=0.1, tokens=10)
    handover.hand_over()  # ...after the ticket was handed over in this one
    assert (await waiter) is not None and pool.replicas[0].outstanding == 1


async def test_wake_all_sends_every_waiter_back_to_the_pool():
    pool = _pool(1)
    pool.acquire(NOW, "m")
    handover = Handover(pool, lambda: NOW)
    waiters = [await _queued(handover, m) for m in ("m", "m", "n")]
    handover.wake_all()
    assert await asyncio.gather(*waiters) == [None, None, None] and handover.waiting == 0


def _request(i: int) -> ChatRequest:
    return ChatRequest(model="m", messages=(ChatMessage("user", f"Question: case {i}: which option?\n\nOptions:\n"
                                                                  "A) yes\nB) no"),), temperature=0.7)


async def test_over_http_a_release_asks_the_pool_for_one_waiter_not_for_all():
    async with FakeLLMServer(Faults(latency_s=0.01)) as server:
        settings = OpenAISettings.from_options({"base_urls": [server.openai_url], "max_concurrency": 2,
                                                "adaptive": False})
        backend = OpenAICompatBackend(settings, api_key="test-key")
        asked = 0
        acquire = backend._pool.acquire

        def counted(now: float, model: str):
            nonlocal asked
            asked += 1
            return acquire(now, model)

        backend._pool.acquire = counted  # type: ignore[method-assign]
        try:
            done = await asyncio.gather(*(backend.complete(_request(i)) for i in range(40)))
        finally:
            await backend.aclose()
    assert len(done) == 40 and all(c.text for c in done)
    # each request asks once on arrival; each release once for its waiter and once more to find no slot left.
    # (Waking every waiter on every release asked ~40 x 40 / 2 times.)
    assert asked <= 40 + 2 * 40


async def test_closing_the_backend_sends_its_waiters_away():
    async with FakeLLMServer() as server:
        server.hold_from = 0  # every request waits at the server
        settings = OpenAISettings.from_options({"base_urls": [server.openai_url], "max_concurrency": 1,
                                                "adaptive": False})
        backend = OpenAICompatBackend(settings, api_key="test-key")
        on_wire = asyncio.create_task(backend.complete(_request(0)))
        async with asyncio.timeout(30):  # a hang guard
            while not server.held:
                await asyncio.sleep(0.01)
            waiting = asyncio.create_task(backend.complete(_request(1)))
            while not backend._waiters.waiting:
                await asyncio.sleep(0)
        await backend.aclose()
        with pytest.raises(ConnectionLost):
            await waiting
        server.released.set()
        await asyncio.gather(on_wire, return_exceptions=True)


async def test_a_slot_handed_over_before_a_429_paused_its_model_waits_out_the_pause():
    """The ticket was the waiter's before it ran; a 429 for its model came in between: it is not sent early."""
    settings = OpenAISettings.from_options({"base_urls": ["http://127.0.0.1:9/v1"], "max_concurrency": 1,
                                            "adaptive": False})
    backend = OpenAICompatBackend(settings, api_key="test-key")
    pool = backend._pool
    try:
        held = pool.acquire(time.monotonic(), "m")
        waiter = asyncio.create_task(backend._admit("m"))
        await asyncio.sleep(0)
        pool.succeeded(held, time.monotonic(), latency_s=0.1, tokens=10)
        backend._waiters.hand_over()  # the slot is the waiter's...
        pause_end = time.monotonic() + 0.2
        pool.replicas[0].paused["m"] = pause_end  # ...and a 429 pauses its model before it runs
        ticket = await asyncio.wait_for(waiter, 30)
        assert time.monotonic() >= pause_end and ticket.model == "m"
        assert pool.replicas[0].outstanding == 1
    finally:
        await backend.aclose()


def _idle_backend(clock: FakeClock, **options) -> OpenAICompatBackend:
    """One replica, one slot, nothing listening: only admission is exercised (no request is sent)."""
    settings = OpenAISettings.from_options({"base_urls": ["http://127.0.0.1:9/v1"], "max_concurrency": 1,
                                            "adaptive": False, **options})
    return OpenAICompatBackend(settings, api_key="test-key", clock=clock)


async def _queued_untimed(backend: OpenAICompatBackend, clock: FakeClock):
    """The slot is held; a request queues while the pool is simply full: no clock event, so no timer."""
    held = backend._pool.acquire(clock(), "m")
    waiter = asyncio.create_task(backend._admit("m"))
    await asyncio.sleep(0)
    assert backend._waiters.waiting == 1 and backend._pool.next_change(clock(), "m") is None
    return held, waiter


async def test_a_waiter_queued_before_a_429_paused_its_model_is_admitted_when_the_pause_ends():
    """The held request's 429 pauses the model; it ends and hands over nothing (the model is paused): the
    waiter, queued with no timer, is still admitted at the pause's end with nothing else running."""
    clock = FakeClock(NOW)
    backend = _idle_backend(clock)
    pool = backend._pool
    try:
        held, waiter = await _queued_untimed(backend, clock)
        pool.rate_limited(held, clock(), 0.05)  # Retry-After: 0.05 s
        backend._waiters.hand_over()  # what the request's end does: the paused model is refused
        assert not waiter.done() and pool.replicas[0].outstanding == 0
        clock.now += 0.06  # past the pause; no request is running, no release will come
        ticket = await asyncio.wait_for(waiter, 10)  # a hang guard: before, it waited forever
        assert ticket.model == "m" and pool.replicas[0].outstanding == 1
    finally:
        await backend.aclose()


async def test_a_waiter_queued_before_its_replica_was_ejected_gets_the_probe_when_the_cool_off_ends():
    """The held request fails and ejects the only replica (the pool then has no room at all): the waiter,
    queued with no timer, is handed the probe when the cool-off ends."""
    clock = FakeClock(NOW)
    backend = _idle_backend(clock, eject_after=1, eject_last=True, cooloff_s=0.05)
    pool = backend._pool
    try:
        held, waiter = await _queued_untimed(backend, clock)
        pool.failed(held, clock())  # ejected for the cool-off
        backend._waiters.hand_over()
        assert not waiter.done() and pool.replicas[0].ejected_until == NOW + 0.05
        clock.now += 0.06
        ticket = await asyncio.wait_for(waiter, 10)
        assert ticket.probe and pool.replicas[0].outstanding == 1
    finally:
        await backend.aclose()


async def test_a_pause_that_ends_sends_only_its_models_waiters_to_the_pool():
    clock = FakeClock(NOW)
    pool = _pool(1)
    held = pool.acquire(NOW, "m")
    handover = Handover(pool, clock)
    paused, other = await _queued(handover, "m"), await _queued(handover, "n")
    pool.rate_limited(held, NOW, 0.05)  # a 429 for "m"...
    busy = pool.acquire(NOW, "x")  # ...and the freed slot taken by a request that asked first
    handover.hand_over()  # no room: nothing handed, the pause's end is on the timer
    clock.now += 0.06
    assert await asyncio.wait_for(paused, 10) is None  # left at the pause's end: it asks the pool itself
    assert not other.done() and handover.waiting == 1  # "n" had no event: it waits on for a release
    pool.succeeded(busy, clock(), latency_s=0.1, tokens=10)
    handover.hand_over()
    assert (await other).model == "n"
