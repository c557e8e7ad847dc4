"""The call metrics through the real retry layer: every attempt counted once, with its outcome, tokens and cost.

A scripted backend stands in for the server; ``RetryingClient`` and the store's
``FailedAttempts`` (a real SQLite file) are the ones the pipeline wires, so the
metrics and the ``calls`` table are compared with what the backend was asked.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from agents.llm import BadRequest, ChatMessage, ChatRequest, Completion, LLMError, ServerError
from bus import Backoff
from clock_support import FakeClock
from reasonmed_async.llm.cache import FailedAttempts
from reasonmed_async.llm.retry import RetryingClient, RetryPolicy
from reasonmed_async.metrics.calls import CallMetrics
from reasonmed_async.outcome import CircuitOpen
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore

URL = "http://gpu-3:8000/v1"
PRICE_IN, PRICE_OUT = 2.5, 10.0  # $ per million tokens


def cost(model: str, prompt: int, completion: int) -> float:
    return (prompt * PRICE_IN + completion * PRICE_OUT) / 1e6


def request(task: str, content: str = "Which enzyme is deficient in PKU?") -> ChatRequest:
    return ChatRequest(model="qwen-72b", messages=(ChatMessage("user", content),), temperature=0.7,
                       meta={"task": task, "question_id": "pubmedqa-21645374"})


class ScriptedBackend:
    """Raises or returns the scripted items in order (the backend under ``RetryingClient``)."""

    def __init__(self, *script: Completion | LLMError) -> None:
        self.script = list(script)
        self.calls = 0

    async def complete(self, _: ChatRequest) -> Completion:
        self.calls += 1
        item = self.script.pop(0)
        if isinstance(item, LLMError):
            raise item.at(URL)
        return item


def answer(prompt: int, completion: int, latency_s: float) -> Completion:
    return Completion(text="1. Restate ... Final answer: B", prompt_tokens=prompt, completion_tokens=completion,
                      latency_s=latency_s, endpoint=URL, backend="openai")


async def wired(tmp_path: Path, backend: ScriptedBackend, **policy: float) -> tuple[object, CollectorRegistry,
                                                                                      CheckpointStore]:
    registry = CollectorRegistry()
    metrics = CallMetrics(registry, cost)
    store = await CheckpointStore.open(tmp_path / "calls.db")
    observer = metrics.observing(FailedAttempts(store))
    clock = FakeClock(start=1000.0)
    retrying = RetryingClient(backend, Backoff(attempts=3, base_s=0.5, cap_s=30.0),
                              policy=RetryPolicy(attempts=3, **policy), observer=observer, on_circuit=observer,
                              sleep=clock.sleep, clock=clock)
    return metrics.metered(retrying, "qwen-72b"), registry, store


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    value = registry.get_sample_value(name, {"model": "qwen-72b", **labels})
    return 0.0 if value is None else value


async def test_a_503_burst_then_an_answer_counts_three_attempts_and_the_answer_s_tokens(tmp_path: Path) -> None:
    backend = ScriptedBackend(ServerError("HTTP 503: overloaded", status=503),
                              ServerError("HTTP 503: overloaded", status=503), answer(812, 377, 3.2),
                              answer(640, 25, 0.4))
    client, registry, store = await wired(tmp_path, backend)
    try:
        await client.complete(request("generate"))
        await client.complete(request("verify", "Is the reasoning correct?"))
        where = {"endpoint": "gpu-3:8000/v1"}
        assert backend.calls == 4
        assert sample(registry, "reasonmed_llm_requests_total", stage="generate", outcome="server_error", **where) == 2
        assert sample(registry, "reasonmed_llm_requests_total", stage="generate", outcome="ok", **where) == 1
        assert sample(registry, "reasonmed_llm_requests_total", stage="verify", outcome="ok", **where) == 1
        assert sample(registry, "reasonmed_llm_tokens_total", stage="generate", kind="prompt", **where) == 812
        assert sample(registry, "reasonmed_llm_tokens_total", stage="generate", kind="completion", **where) == 377
        assert sample(registry, "reasonmed_llm_cost_usd_total", stage="generate") == pytest.approx(cost("", 812, 377))
        assert sample(registry, "reasonmed_llm_request_duration_seconds_count", stage="generate", **where) == 1
        assert sample(registry, "reasonmed_llm_request_duration_seconds_sum", stage="generate", **where) == 3.2
        assert sample(registry, "reasonmed_llm_request_duration_seconds_bucket", stage="generate", le="2.5",
                      **where) == 0
        assert sample(registry, "reasonmed_llm_request_duration_seconds_bucket", stage="generate", le="5.0",
                      **where) == 1
        assert sample(registry, "reasonmed_llm_circuit_open") == 0
        # the store's accounting still gets every failed attempt (the tee passes them on)
        totals = {(st, o): n for st, _, o, n, _, _ in await queries.call_totals(store)}
        assert totals == {("generate", "error:ServerError"): 2}
    finally:
        await store.close()


async def test_a_wrong_key_opens_the_circuit_and_the_gauge_says_so(tmp_path: Path) -> None:
    backend = ScriptedBackend(*[BadRequest("HTTP 401: Incorrect API key provided: sk-***", status=401)] * 5)
    client, registry, store = await wired(tmp_path, backend, circuit_after=5)
    try:
        with pytest.raises(CircuitOpen):
            await client.complete(request("generate"))
        with pytest.raises(CircuitOpen):  # refused without an attempt: nothing more is counted
            await client.complete(request("generate", "another question"))
        assert backend.calls == 5
        assert sample(registry, "reasonmed_llm_requests_total", stage="generate", outcome="auth_error",
                      endpoint="gpu-3:8000/v1") == 5
        assert sample(registry, "reasonmed_llm_circuit_open") == 1
        assert sample(registry, "reasonmed_llm_requests_total", stage="generate", outcome="ok",
                      endpoint="gpu-3:8000/v1") == 0
    finally:
        await store.close()


async def test_the_retry_layer_s_own_timeout_is_counted_as_a_timeout(tmp_path: Path) -> None:
    class Hangs:
        calls = 0

        async def complete(self, _: ChatRequest) -> Completion:
            self.calls += 1
            if self.calls == 1:
                await asyncio.Event().wait()  # never answers: the retry layer's timeout ends it
            return answer(100, 10, 0.1)

    client, registry, store = await wired(tmp_path, Hangs(), timeout_s=0.05)  # type: ignore[arg-type]
    try:
        await client.complete(request("summarize"))
        assert sample(registry, "reasonmed_llm_requests_total", stage="summarize", outcome="timeout",
                      endpoint="none") == 1
        assert sample(registry, "reasonmed_llm_requests_total", stage="summarize", outcome="ok",
                      endpoint="gpu-3:8000/v1") == 1
    finally:
        await store.close()
