"""The LLM call metrics, taken in the retry layer: every attempt sent to a backend, its outcome, tokens and cost.

Where each fact is known, once: a failed attempt reaches the retry layer's
observer (``observing`` tees it to the store's accounting); the one successful
attempt of a call is the completion ``RetryingClient`` returns (``metered``
wraps it); an opened circuit comes through the same observer.  Counted per
attempt, so ``reasonmed_llm_requests_total`` equals what the servers received
(retries included; cache hits and calls shared in flight never reach a server
and are not attempts: see ``collectors.CacheCollector``).

The hot path is one dict lookup and a handful of ``inc``/``observe`` on label
children bound once per (stage, model, endpoint): a few microseconds a call
(``bench/metrics_overhead.py``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from agents.llm import ChatRequest, Completion, LLMClient, LLMError
from reasonmed_async.llm.retry import AttemptObserver, CircuitObserver
from reasonmed_async.metrics.labels import OK, endpoint_label, outcome_label, stage_label

#: seconds; an LLM answer takes from tens of milliseconds (a short judgement) to minutes (an 8k-token CoT)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 640.0)

Cost = Callable[[str, int, int], float]


@dataclass(frozen=True)
class _Series:
    """The label children of one (stage, model, endpoint): bound once, then only incremented."""

    ok: Counter
    latency: Histogram
    prompt: Counter
    completion: Counter
    cost: Counter


class CallMetrics:
    def __init__(self, registry: CollectorRegistry, cost: Cost) -> None:
        self._cost = cost
        self.requests = Counter(
            "reasonmed_llm_requests", "Requests sent to an LLM backend (attempts: retries included), by outcome",
            ["stage", "model", "endpoint", "outcome"], registry=registry)
        self.latency = Histogram(
            "reasonmed_llm_request_duration_seconds", "Latency of the LLM requests that returned a completion",
            ["stage", "model", "endpoint"], buckets=LATENCY_BUCKETS, registry=registry)
        self.tokens = Counter(
            "reasonmed_llm_tokens", "Tokens of the completions returned (as the server's usage reported them)",
            ["stage", "model", "endpoint", "kind"], registry=registry)
        self.cost = Counter(
            "reasonmed_llm_cost_usd", "US dollars of the completions returned ([models.X] price_in / price_out)",
            ["stage", "model"], registry=registry)
        self.circuit = Gauge(
            "reasonmed_llm_circuit_open", "1 while the model's circuit is open (its calls are refused)",
            ["model"], registry=registry)
        self._series: dict[tuple[str, str, str], _Series] = {}
        self._failures: dict[tuple[str, str, str, str], Counter] = {}

    def metered(self, client: LLMClient, model: str) -> LLMClient:
        """``client`` (a ``RetryingClient`` for ``model``), its successful attempts counted."""
        self.circuit.labels(model).set(0)
        return _MeteredClient(client, self)

    def observing(self, inner: Observer) -> Observer:
        """The retry layer's observer: failed attempts and opened circuits counted, then passed to ``inner``."""
        return _Tee(self, inner)

    def succeeded(self, request: ChatRequest, completion: Completion) -> None:
        task, model = request.meta.get("task", ""), request.model
        series = self._series.get((task, model, completion.endpoint))
        if series is None:
            series = self._bind(task, model, completion.endpoint)
        series.ok.inc()
        series.latency.observe(completion.latency_s)
        series.prompt.inc(completion.prompt_tokens)
        series.completion.inc(completion.completion_tokens)
        series.cost.inc(self._cost(model, completion.prompt_tokens, completion.completion_tokens))

    def failed(self, request: ChatRequest, error: LLMError) -> None:
        key = (request.meta.get("task", ""), request.model, error.endpoint, outcome_label(error))
        counter = self._failures.get(key)
        if counter is None:
            counter = self._failures[key] = self.requests.labels(
                stage_label(key[0]), key[1], endpoint_label(key[2]), key[3])
        counter.inc()

    def circuit_opened(self, model: str) -> None:
        self.circuit.labels(model).set(1)

    def _bind(self, task: str, model: str, endpoint: str) -> _Series:
        stage, where = stage_label(task), endpoint_label(endpoint)
        series = self._series[(task, model, endpoint)] = _Series(
            ok=self.requests.labels(stage, model, where, OK),
            latency=self.latency.labels(stage, model, where),
            prompt=self.tokens.labels(stage, model, where, "prompt"),
            completion=self.tokens.labels(stage, model, where, "completion"),
            cost=self.cost.labels(stage, model))
        return series


class Observer(AttemptObserver, CircuitObserver, Protocol):
    """What ``RetryingClient`` is given as ``observer`` and ``on_circuit`` (the store's ``FailedAttempts``)."""


class _MeteredClient:
    def __init__(self, inner: LLMClient, metrics: CallMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def complete(self, request: ChatRequest) -> Completion:
        completion = await self._inner.complete(request)
        self._metrics.succeeded(request, completion)
        return completion


class _Tee:
    def __init__(self, metrics: CallMetrics, inner: Observer) -> None:
        self._metrics = metrics
        self._inner = inner

    async def attempt_failed(self, request: ChatRequest, error: LLMError) -> None:
        self._metrics.failed(request, error)
        await self._inner.attempt_failed(request, error)

    async def circuit_opened(self, model: str, endpoint: str, error: str) -> None:
        self._metrics.circuit_opened(model)
        await self._inner.circuit_opened(model, endpoint, error)

    async def retrying(self, request: ChatRequest, error: LLMError) -> None:  # status's retries row
        await self._inner.retrying(request, error)
