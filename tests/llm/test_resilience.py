"""Retries, timeouts, the circuit and backoff arithmetic, over fake inner clients."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from clock_support import FakeClock
from agents.llm import (
    BadRequest,
    BadResponse,
    ChatRequest,
    ConnectionLost,
    LLMError,
    LLMTimeout,
    RateLimited,
    ServerError,
)
from bus import Backoff
from reasonmed_async.llm.retry import RetryingClient, RetryPolicy
from reasonmed_async.outcome import CircuitOpen, OutageBudgetSpent

from inner_llm_support import NO_WAIT, OK, FakeLLM, request


def retrying(inner, attempts: int = 3, clock: FakeClock | None = None, **policy) -> RetryingClient:
    clock = clock or FakeClock(start=1000.0)
    return RetryingClient(inner, Backoff(attempts=attempts, base_s=0.5, cap_s=30.0),
                          policy=RetryPolicy(attempts=attempts, **policy), sleep=clock.sleep, clock=clock)


STRIKES = [  # a request that fails alone: each failure is a strike against it
    pytest.param(lambda: ServerError("503 unavailable", status=503), id="server-error"),
    pytest.param(lambda: BadResponse("no choices"), id="bad-response"),
    pytest.param(lambda: LLMTimeout("slow"), id="timeout-from-backend"),
]
OUTAGE = [  # the endpoint is busy or gone: waiting, never a strike
    pytest.param(lambda: RateLimited("429", retry_after_s=None), id="rate-limited"),
    pytest.param(lambda: RateLimited("429", retry_after_s=0.0), id="rate-limited-zero"),
    pytest.param(lambda: ConnectionLost("connection refused"), id="connection-lost"),
]


@pytest.mark.parametrize("attempts", [1, 2, 4])
@pytest.mark.parametrize("error", STRIKES)
async def test_request_failing_alone_is_tried_attempts_times(error, attempts):
    exc = error()
    inner = FakeLLM(default=exc)
    client = retrying(inner, attempts)
    with pytest.raises(type(exc)) as raised:
        await client.complete(request())
    assert raised.value is exc
    assert raised.value.attempts == attempts
    assert len(inner.calls) == attempts


@pytest.mark.parametrize("failures", [0, 1, 2])
@pytest.mark.parametrize("error", STRIKES + OUTAGE)
async def test_recovers_after_transient_failures(error, failures):
    inner = FakeLLM(*[error() for _ in range(failures)])
    client = retrying(inner, 3)
    got = await client.complete(request())
    assert got.text == f"{OK.text} #{failures + 1}"
    assert len(inner.calls) == failures + 1
    assert all(c is inner.calls[0] for c in inner.calls)  # the same request every time


@pytest.mark.parametrize("error", OUTAGE)
async def test_an_outage_costs_no_attempts_until_the_budget_is_spent(error):
    """Far more failures than ``attempts``: the request waits (capped, growing) and the run stops at the budget."""
    clock = FakeClock(start=1000.0)
    inner = FakeLLM(default=error())
    client = retrying(inner, 3, clock, outage_budget_s=600.0, max_wait_s=60.0)
    with pytest.raises(OutageBudgetSpent, match="did not answer for 6"):
        await client.complete(request())
    assert len(inner.calls) > 10
    assert clock.now - 1000.0 >= 600.0
    assert max(clock.sleeps) <= 60.0 and clock.sleeps[-1] > clock.sleeps[0]


async def test_outage_ends_when_the_endpoint_answers():
    clock = FakeClock(start=1000.0)
    inner = FakeLLM(*[ConnectionLost("refused")] * 40)
    client = retrying(inner, 3, clock, outage_budget_s=1800.0, max_wait_s=30.0)
    assert (await client.complete(request())).text.startswith(OK.text)
    assert len(inner.calls) == 41


@pytest.mark.parametrize("retry_after", [0.05, 7.0, 86400.0])
async def test_retry_after_is_a_floor_capped_at_max_wait(retry_after):
    clock = FakeClock(start=1000.0)
    inner = FakeLLM(RateLimited("429", retry_after_s=retry_after), RateLimited("429", retry_after_s=retry_after))
    client = retrying(inner, 3, clock, max_wait_s=300.0)
    await client.complete(request())
    assert len(inner.calls) == 3
    assert all(min(retry_after, 300.0) <= s <= 300.0 for s in clock.sleeps), clock.sleeps


@pytest.mark.parametrize(("status", "message"), [
    (400, "This model's maximum context length is 8192 tokens"),
    (400, "The response was filtered due to the prompt triggering Azure OpenAI's content management policy"),
    (422, "unprocessable"),
])
async def test_request_specific_refusal_is_not_retried(status, message):
    inner = FakeLLM(default=BadRequest(message, status=status))
    client = retrying(inner, 5)
    with pytest.raises(BadRequest) as raised:
        await client.complete(request())
    assert raised.value.attempts == 1
    assert raised.value.status == status
    assert len(inner.calls) == 1


@pytest.mark.parametrize(("status", "message"), [
    (401, "Incorrect API key provided"), (403, "forbidden"), (404, "The model `m-1` does not exist"),
    (400, "unknown parameter for this model"),
])
async def test_endpoint_wrong_errors_open_the_circuit_after_k(status, message):
    inner = FakeLLM(default=BadRequest(message, status=status))
    client = retrying(inner, 3, circuit_after=4)
    with pytest.raises(CircuitOpen, match="4 consecutive"):
        await client.complete(request())
    assert len(inner.calls) == 4
    with pytest.raises(CircuitOpen):  # open: no further call reaches the endpoint
        await client.complete(request("another"))
    assert len(inner.calls) == 4


async def test_a_400_from_a_model_that_answered_fails_its_request_only():
    inner = FakeLLM(OK, BadRequest("unknown parameter", status=400))
    client = retrying(inner, 3)
    await client.complete(request())
    with pytest.raises(BadRequest):
        await client.complete(request("another"))
    assert len(inner.calls) == 2


async def test_non_retryable_after_retryable_stops_at_once():
    inner = FakeLLM(ServerError("500"), BadRequest("context length exceeded"))
    client = retrying(inner, 5)
    with pytest.raises(BadRequest) as raised:
        await client.complete(request())
    assert raised.value.attempts == 2
    assert len(inner.calls) == 2


@pytest.mark.parametrize("exc", [ValueError("bug"), KeyError("k"), TypeError("t"), RuntimeError("r")],
                         ids=lambda e: type(e).__name__)
async def test_programming_errors_propagate_at_once(exc):
    inner = FakeLLM(default=exc)
    client = RetryingClient(inner, Backoff(attempts=5, **NO_WAIT))
    with pytest.raises(type(exc)) as raised:
        await client.complete(request())
    assert raised.value is exc
    assert not hasattr(raised.value, "attempts")
    assert len(inner.calls) == 1


@pytest.mark.parametrize("attempts", [1, 2])
async def test_timeout_becomes_llm_timeout(attempts):
    inner = FakeLLM(default=1.0)  # sleeps a second each call
    client = RetryingClient(inner, Backoff(attempts=attempts, **NO_WAIT), timeout_s=0.02)
    start = time.monotonic()
    with pytest.raises(LLMTimeout) as raised:
        await client.complete(request())
    assert time.monotonic() - start < 0.5
    assert raised.value.attempts == attempts
    assert isinstance(raised.value.__cause__, TimeoutError)
    assert "0.02" in str(raised.value)
    assert len(inner.calls) == attempts


async def test_timeout_then_success():
    inner = FakeLLM(1.0, 0.0)
    client = RetryingClient(inner, Backoff(attempts=2, **NO_WAIT), timeout_s=0.02)
    assert await client.complete(request()) == OK
    assert len(inner.calls) == 2


async def test_no_timeout_when_none():
    inner = FakeLLM(0.03)
    client = RetryingClient(inner, Backoff(attempts=1, **NO_WAIT), timeout_s=None)
    assert await client.complete(request()) == OK


async def test_cancellation_is_not_retried():
    inner = FakeLLM(default=5.0)
    client = RetryingClient(inner, Backoff(attempts=5, **NO_WAIT), timeout_s=10)
    task = asyncio.create_task(client.complete(request()))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert len(inner.calls) == 1


async def test_observer_sees_every_failed_attempt():
    seen: list[str] = []
    resent: list[str] = []

    class Observer:
        async def attempt_failed(self, request: ChatRequest, error: LLMError) -> None:
            seen.append(type(error).__name__)

        async def retrying(self, request: ChatRequest, error: LLMError) -> None:
            resent.append(type(error).__name__)

    inner = FakeLLM(ServerError("500"), RateLimited("429"), BadRequest("context length exceeded"))
    client = RetryingClient(inner, Backoff(attempts=5, **NO_WAIT), observer=Observer())
    with pytest.raises(BadRequest):
        await client.complete(request())
    assert seen == ["ServerError", "RateLimited", "BadRequest"]
    assert resent == ["ServerError", "RateLimited"]  # the permanent error is not sent again


# -- Backoff arithmetic -----------------------------------------------------------------------------

@pytest.mark.parametrize(("base", "cap", "ceilings"), [
    (0.1, 1.0, [0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0]),
    (0.05, 5.0, [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]),
    (1.0, 1.0, [1.0, 1.0, 1.0]),
    (0.0, 5.0, [0.0, 0.0, 0.0]),
    (2.0, 0.0, [0.0, 0.0]),
])
def test_backoff_ceiling_doubles_and_caps(base, cap, ceilings):
    b = Backoff(attempts=3, base_s=base, cap_s=cap)
    assert [b.ceiling(k) for k in range(1, len(ceilings) + 1)] == pytest.approx(ceilings)
    assert b.ceiling(0) == pytest.approx(min(cap, base))  # clamps below the first failure


@pytest.mark.parametrize("failed", [1, 2, 3, 6, 12])
def test_backoff_delay_is_within_zero_and_ceiling(failed):
    b = Backoff(attempts=3, base_s=0.1, cap_s=1.0, rng=random.Random(failed))
    delays = [b.delay(failed) for _ in range(500)]
    assert all(0.0 <= d <= b.ceiling(failed) for d in delays)
    assert len(set(delays)) > 400  # full jitter, not a constant
    assert max(delays) > 0.8 * b.ceiling(failed)  # and it spans the range
    assert min(delays) < 0.2 * b.ceiling(failed)


@pytest.mark.parametrize(("at_least", "failed"), [(5.0, 1), (0.05, 3), (0.0, 2), (1.0, 10)])
def test_backoff_at_least_is_a_floor(at_least, failed):
    b = Backoff(attempts=3, base_s=0.1, cap_s=1.0, rng=random.Random(7))
    delays = [b.delay(failed, at_least=at_least) for _ in range(200)]
    assert all(d >= at_least for d in delays)
    assert all(d <= max(at_least, b.ceiling(failed)) for d in delays)
    if at_least >= b.ceiling(failed):
        assert set(delays) == {at_least}


def test_backoff_is_reproducible_with_a_seeded_rng():
    a = Backoff(rng=random.Random(3))
    b = Backoff(rng=random.Random(3))
    assert [a.delay(k) for k in range(1, 6)] == [b.delay(k) for k in range(1, 6)]
    assert a == b  # the rng takes no part in equality


@pytest.mark.parametrize("kwargs", [{"attempts": 0}, {"attempts": -1}, {"base_s": -0.1}, {"cap_s": -1.0}])
def test_backoff_validation(kwargs):
    with pytest.raises(ValueError):
        Backoff(**kwargs)


async def test_a_backend_with_its_own_timeout_gets_no_second_one():
    class TimedBackend(FakeLLM):
        owns_timeout = True

    inner = TimedBackend(0.05)
    client = RetryingClient(inner, Backoff(attempts=1, **NO_WAIT), timeout_s=0.01)
    assert await client.complete(request()) == OK  # the backend's timeout rules, not [retry] timeout_s
