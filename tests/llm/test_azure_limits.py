"""AzureBackend's limits against a minimal Azure-shaped server on 127.0.0.1 (tests/llm/mini_azure.py): a 429 and
its Retry-After hold back every task on the deployment; the request and token buckets space arrivals; the
remaining-quota headers lower the buckets."""

from __future__ import annotations

import asyncio
import time

import pytest

from agents.llm import RateLimited
from clock_support import FakeClock
from mini_azure import KEY, Reply, backend, chat, options, server  # noqa: F401
from reasonmed_async.config import BackendConfig
from reasonmed_async.llm.azure_openai import open_azure_backend
from reasonmed_async.llm.ratelimit import estimate_prompt_tokens


@pytest.mark.parametrize("headers, expected", [
    ({"Retry-After": "1"}, 1.0),
    ({"retry-after-ms": "250", "Retry-After": "1"}, 0.25),
    ({}, None),
])
async def test_429_raises_rate_limited_with_retry_after(server, backend, headers, expected):
    server.replies.append(Reply(429, headers, {"error": {"code": "429", "message": "Rate limit is exceeded."}}))
    with pytest.raises(RateLimited) as info:
        await backend.complete(chat())
    assert info.value.retry_after_s == expected and info.value.retryable
    assert len(server.arrivals) == 1                                   # the SDK did not retry
    assert backend.limiter("gpt-4o").cooldown.seconds_left(time.monotonic()) > 0


async def test_a_429_holds_back_every_task_on_the_deployment(server, backend):
    server.replies.append(Reply(429, {"retry-after-ms": "600"}, {"error": {"code": "429", "message": "slow down"}}))
    with pytest.raises(RateLimited):
        await backend.complete(chat())
    first = server.arrivals[0].t
    results = await asyncio.gather(*(backend.complete(chat()) for _ in range(6)))
    assert len(results) == 6
    assert min(a.t for a in server.arrivals[1:]) >= first + 0.6
    await backend.complete(chat("o1-mini"))                            # other deployments are not held back


def assert_spaced(times: list[float], gap_s: float) -> None:
    """Arrivals ``gap_s`` apart; the first one may be late by the SDK's connection set-up (unlimited: milliseconds)."""
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[0] >= gap_s * 0.6 and all(g >= gap_s * 0.9 for g in gaps[1:]), gaps
    assert times[-1] - times[1] >= (len(times) - 2) * gap_s - 0.05, gaps


async def test_request_bucket_spaces_arrivals(server, backend):
    await asyncio.gather(*(backend.complete(chat("slow-rpm")) for _ in range(5)))
    assert_spaced([a.t for a in server.arrivals], 0.5)                 # burst of 1, then 2 a second


async def test_token_bucket_spaces_arrivals_and_usage_settles(server):
    request = chat("tok", max_tokens=100)
    cost = estimate_prompt_tokens(request.messages) + 100
    deployments = {"tok": {"rpm": 6000, "tpm": cost * 120, "burst_s": 0.5}}     # one request's worth, ~2 per s
    server.default = Reply(usage=(cost - 100, 100, 0))                 # used all it reserved
    clock = FakeClock()
    admitted: list[float] = []
    b = await open_azure_backend(BackendConfig("az", "azure", options(server, deployments=deployments)),
                                 env={"AZ_TEST_KEY": KEY}, clock=clock, sleep=clock.sleep)
    limiter = b.limiter("tok")
    acquire = limiter.acquire

    async def admit(tokens: int):  # the moment (on the test's clock) each request is let go to the server
        reservation = await acquire(tokens)
        admitted.append(clock())
        return reservation

    limiter.acquire = admit  # type: ignore[method-assign]
    try:
        await asyncio.gather(*(b.complete(request) for _ in range(3)))
        assert len(admitted) == 3
        assert all(later - earlier >= 0.49 for earlier, later in zip(admitted, admitted[1:])), admitted
        server.default = Reply(usage=(1, 1, 0))                        # uses almost nothing: credited back
        clock.now += 0.5
        started = clock()
        for _ in range(3):
            await b.complete(request)
        assert clock() - started < 0.8                                 # uncredited: 3 requests need >= 1 s
    finally:
        await b.aclose()


async def test_remaining_headers_lower_the_buckets(server):
    deployments = {"metered": {"rpm": 600, "tpm": 60_000}}           # 10 requests, 1000 tokens a second
    server.replies.append(Reply(headers={"x-ratelimit-remaining-requests": "0",
                                         "x-ratelimit-remaining-tokens": "0"}))
    b = await open_azure_backend(BackendConfig("az", "azure", options(server, deployments=deployments)),
                                 env={"AZ_TEST_KEY": KEY})
    try:
        await b.complete(chat("metered", max_tokens=50))
        limiter, now = b.limiter("metered"), time.monotonic()
        assert limiter.requests.level(now) < 1 and limiter.tokens.level(now) < 100   # not the 100 / 10000 saved
        await b.complete(chat("metered", max_tokens=50))             # waits 0.1 s for a request unit
        assert server.arrivals[1].t - server.arrivals[0].t >= 0.09
    finally:
        await b.aclose()
