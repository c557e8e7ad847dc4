"""Token-bucket arithmetic (tables, explicit clocks) and the DeploymentLimiter on a fake clock."""

from __future__ import annotations

import asyncio
import email.utils
import math

import pytest

from clock_support import FakeClock
from agents.llm import ChatMessage
from reasonmed_async.llm.ratelimit import (Cooldown, DeploymentLimiter, TokenBucket, estimate_prompt_tokens, window_safe_rate,
                                       parse_remaining, parse_retry_after)


# (operations on a 60/min bucket with burst 10 s -> capacity 10, rate 1/s), expected level at the end
@pytest.mark.parametrize("ops, at, expected", [
    ([], 0.0, 10.0),                                          # starts full
    ([("take", 10, 0.0)], 0.0, 0.0),
    ([("take", 10, 0.0)], 1.0, 1.0),                          # continuous refill
    ([("take", 10, 0.0)], 5.5, 5.5),
    ([("take", 10, 0.0)], 100.0, 10.0),                       # never above capacity
    ([("take", 4, 0.0), ("take", 4, 1.0)], 1.0, 3.0),
    ([("take", 25, 0.0)], 0.0, -15.0),                        # above capacity: taken whole, a debt
    ([("take", 8, 0.0), ("credit", 5, 0.0)], 0.0, 7.0),
    ([("take", 2, 0.0), ("credit", 5, 0.0)], 0.0, 10.0),      # credit capped at capacity
    ([("observe", 3, 0.0)], 0.0, 3.0),                        # server says fewer: lower to it
    ([("take", 7, 0.0), ("observe", 8, 0.0)], 0.0, 3.0),      # server says more: never raised
    ([("observe", 0, 0.0)], 2.0, 2.0),                        # refill continues after an observation
    ([("take", 10, 0.0), ("observe", 5, 4.0)], 4.0, 4.0),     # refilled to 4 first, 5 does not raise it
])
def test_token_bucket_levels(ops, at, expected):
    bucket = TokenBucket(60, burst_s=10)
    for op, amount, now in ops:
        {"take": bucket.take, "credit": bucket.credit, "observe": bucket.observe_remaining}[op](amount, now)
    assert bucket.level(at) == pytest.approx(expected)


@pytest.mark.parametrize("rate, burst, capacity", [(60, 10, 10), (600, 10, 100), (60, 1, 1), (3, 10, 0.5),
                                                   (30_000, 10, 5000)])
def test_capacity_is_rate_times_burst(rate, burst, capacity):
    assert TokenBucket(rate, burst).capacity == pytest.approx(capacity)


@pytest.mark.parametrize("taken, amount, now, expected", [
    (0, 1, 0.0, 0.0),           # available now
    (10, 0, 0.0, 0.0),          # nothing asked
    (10, 1, 0.0, 1.0),
    (10, 5, 2.0, 3.0),
    (10, 10, 0.0, 10.0),
    (10, 50, 0.0, 10.0),        # more than capacity: waits for a full bucket, not forever
    (0, 50, 0.0, 0.0),          # ... and a full bucket lets it go
    (25, 1, 0.0, 16.0),         # a debt is repaid first
    (10, 1, 3.0, 0.0),
])
def test_seconds_until(taken, amount, now, expected):
    bucket = TokenBucket(60, burst_s=10)
    bucket.take(taken, 0.0)
    assert bucket.seconds_until(amount, now) == pytest.approx(expected)


@pytest.mark.parametrize("call", [
    lambda b: b.seconds_until(-1, 0.0), lambda b: b.take(math.nan, 0.0), lambda b: b.credit(-2, 0.0),
    lambda b: b.observe_remaining(math.inf, 0.0), lambda b: b.take(True, 0.0),
])
def test_bad_amounts_raise(call):
    with pytest.raises(ValueError):
        call(TokenBucket(60))


@pytest.mark.parametrize("rate, burst", [(0, 10), (-1, 10), (60, 0), (math.inf, 1), (60, math.nan)])
def test_bad_rates_raise(rate, burst):
    with pytest.raises(ValueError):
        TokenBucket(rate, burst)


@pytest.mark.parametrize("rate, burst, level_after", [
    (120, 10, 5.0),     # larger capacity: the level is kept, refill is faster from now on
    (12, 10, 2.0),      # smaller capacity: capped
])
def test_reconfigure(rate, burst, level_after):
    bucket = TokenBucket(60, 10)
    bucket.take(5, 0.0)
    bucket.reconfigure(rate, burst, now=0.0)
    assert bucket.level(0.0) == pytest.approx(level_after)
    assert bucket.capacity == pytest.approx(rate * burst / 60)


@pytest.mark.parametrize("extensions, now, left", [
    ([], 0.0, 0.0),
    ([(5, 0.0)], 0.0, 5.0),
    ([(5, 0.0)], 3.0, 2.0),
    ([(5, 0.0)], 9.0, 0.0),
    ([(5, 0.0), (1, 1.0)], 1.0, 4.0),     # a shorter extension never shortens the deadline
    ([(5, 0.0), (10, 1.0)], 1.0, 10.0),
    ([(-3, 0.0)], 0.0, 0.0),
])
def test_cooldown(extensions, now, left):
    cooldown = Cooldown()
    for seconds, at in extensions:
        cooldown.extend(seconds, at)
    assert cooldown.seconds_left(now) == pytest.approx(left)


@pytest.mark.parametrize("contents, expected", [
    ([], 3),
    ([""], 7),
    (["abcd"], 8),
    (["abcde"], 9),
    (["x" * 400, "y" * 40], 3 + 4 + 100 + 4 + 10),
])
def test_estimate_prompt_tokens(contents, expected):
    assert estimate_prompt_tokens([ChatMessage("user", c) for c in contents]) == expected
    assert estimate_prompt_tokens([{"role": "user", "content": c} for c in contents]) == expected


WALL = 1_700_000_000.0


@pytest.mark.parametrize("headers, expected", [
    ({}, None),
    ({"retry-after": "2"}, 2.0),
    ({"Retry-After": "1.5"}, 1.5),
    ({"retry-after-ms": "700"}, 0.7),
    ({"retry-after-ms": "700", "retry-after": "9"}, 0.7),       # milliseconds win
    ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
    ({"retry-after": email.utils.formatdate(WALL + 30, usegmt=True)}, 30.0),
    ({"retry-after": email.utils.formatdate(WALL - 30, usegmt=True)}, 0.0),
    ({"retry-after": "whenever"}, None),
    ({"retry-after": "-4"}, None),
])
def test_parse_retry_after(headers, expected):
    assert parse_retry_after(headers, WALL) == (None if expected is None else pytest.approx(expected))


@pytest.mark.parametrize("headers, expected", [
    ({}, (None, None)),
    ({"x-ratelimit-remaining-requests": "3", "X-RateLimit-Remaining-Tokens": "1200"}, (3.0, 1200.0)),
    ({"x-ratelimit-remaining-tokens": "lots"}, (None, None)),
    ({"x-ratelimit-remaining-requests": "-1"}, (None, None)),
])
def test_parse_remaining(headers, expected):
    assert parse_remaining(headers) == expected


async def test_limiter_serves_waiters_fifo_at_the_bucket_rate():
    clock = FakeClock()
    limiter = DeploymentLimiter(60, 1_000_000, burst_s=1, clock=clock, sleep=clock.sleep)  # 1 request/s, burst 1
    order: list[tuple[int, float]] = []

    async def one(i: int) -> None:
        await limiter.acquire(10)
        order.append((i, clock.now))

    await asyncio.gather(*(one(i) for i in range(5)))
    assert [i for i, _ in order] == [0, 1, 2, 3, 4]
    assert [t for _, t in order] == pytest.approx([0.0, 1.0, 2.0, 3.0, 4.0])


async def test_limiter_token_bucket_and_settle():
    clock = FakeClock()
    limiter = DeploymentLimiter(1_000_000, 600, burst_s=10, clock=clock, sleep=clock.sleep)  # 100 tokens, 10/s
    reservation = await limiter.acquire(80)
    assert limiter.tokens.level(clock.now) == pytest.approx(20)
    reservation.settle(30)                                  # 50 unused come back
    reservation.settle(0)                                   # only once
    assert limiter.tokens.level(clock.now) == pytest.approx(70)
    second = await limiter.acquire(90)                      # needs 20 more tokens: 2 s
    assert clock.now == pytest.approx(2.0)
    second.settle(120)                                      # the estimate was low: the excess is taken too
    assert limiter.tokens.level(clock.now) == pytest.approx(-30)


async def test_limiter_waits_out_a_shared_cooldown():
    clock = FakeClock()
    limiter = DeploymentLimiter(6000, 1_000_000, clock=clock, sleep=clock.sleep)
    limiter.on_429(5.0)
    times: list[float] = []

    async def one() -> None:
        await limiter.acquire(1)
        times.append(clock.now)

    await asyncio.gather(*(one() for _ in range(4)))
    assert min(times) >= 5.0
    limiter.on_429(None)                                    # no Retry-After: the default cooldown
    assert limiter.cooldown.seconds_left(clock.now) == pytest.approx(limiter.default_cooldown_s)


async def test_limiter_re_checks_when_a_429_lands_while_it_sleeps():
    clock = FakeClock()
    limiter = DeploymentLimiter(60, 1_000_000, burst_s=1, clock=clock, sleep=clock.sleep)
    await limiter.acquire(1)                                # bucket empty: the next waits 1 s

    async def landing_429(seconds: float) -> None:
        if not clock.sleeps:
            limiter.on_429(3.0)                             # arrives during the first wait
        await clock.sleep(seconds)

    limiter._sleep = landing_429
    await limiter.acquire(1)
    assert clock.now == pytest.approx(3.0) and clock.sleeps == pytest.approx([1.0, 2.0])


async def test_observed_headers_lower_the_buckets():
    clock = FakeClock()
    limiter = DeploymentLimiter(600, 6000, burst_s=10, clock=clock, sleep=clock.sleep)  # 100 req, 1000 tokens
    limiter.observe({"X-RateLimit-Remaining-Requests": "0", "x-ratelimit-remaining-tokens": "500"})
    assert limiter.requests.level(0.0) == 0 and limiter.tokens.level(0.0) == 500
    limiter.observe({"x-ratelimit-remaining-requests": "50"})           # never raised
    assert limiter.requests.level(0.0) == 0
    await limiter.acquire(700)                              # requests: 0.1 s; tokens: 200 at 100/s = 2 s
    assert clock.now == pytest.approx(2.0)


async def test_update_limits_hot_reload():
    clock = FakeClock()
    limiter = DeploymentLimiter(60, 600, burst_s=10, clock=clock, sleep=clock.sleep)
    await limiter.acquire(100)
    limiter.update_limits(rpm=600, tpm=6000)
    assert limiter.requests.capacity == pytest.approx(100) and limiter.tokens.capacity == pytest.approx(1000)
    await limiter.acquire(100)                              # 6000/min now refills 100 tokens in 1 s
    assert clock.now == pytest.approx(1.0)
    limiter.update_limits(rpm=60, tpm=600, burst_s=1)
    assert limiter.tokens.capacity == pytest.approx(10)


async def test_cancelled_waiter_takes_nothing_and_frees_the_line():
    limiter = DeploymentLimiter(600, 6000)                  # real clock and sleep
    limiter.on_429(30.0)
    waiter = asyncio.create_task(limiter.acquire(10))
    await asyncio.sleep(0.01)
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert not limiter._lock.locked()
    limiter.cooldown.until = -math.inf
    await asyncio.wait_for(limiter.acquire(10), 1.0)
    assert limiter.requests.level(limiter._clock()) == pytest.approx(limiter.requests.capacity - 1, abs=0.01)


def _busiest(times: list[float], span: float) -> int:
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] >= span - 1e-9:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


@pytest.mark.parametrize(("rpm", "burst_s"), [(60, 1.0), (600, 1.0), (6000, 1.0), (600, 0.5), (300, 5.0)])
async def test_paced_deployment_keeps_every_10_s_window_within_a_sixth_of_the_rpm(rpm, burst_s):
    """Requests as fast as the limiter admits them, for ten minutes of a controllable clock."""
    clock = FakeClock()
    limiter = DeploymentLimiter(window_safe_rate(rpm, burst_s), 10**9, burst_s, clock=clock, sleep=clock.sleep)
    times = []
    while clock() < 600:
        await limiter.acquire(1)
        times.append(clock())
    assert _busiest(times, 10.0) <= rpm / 6
    assert _busiest(times, 60.0) <= rpm
    assert len(times) >= 0.95 * window_safe_rate(rpm, burst_s) * 10, "the paced rate is used (10/11 of the quota at 1 s)"
