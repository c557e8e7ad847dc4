"""The one retry layer of an LLM call: transport and server errors, outages, 429s and open circuits.

``RetryingClient`` wraps a backend for one model.  Each attempt has exactly one
timeout: the backend's own where it has one (``owns_timeout``: the HTTP backends'
``timeout_s`` per exchange), else ``[retry] timeout_s`` (in-process vLLM, the sim with a latency);
an attempt that never yields to the event loop (``answers_at_once``: the sim at zero latency) gets
no timer, which could not fire on it.  After a failed
attempt ``ModelHealth`` (``health.py``) decides: fail the request, retry it
(a strike: ``[retry] attempts`` in all), wait for the model to come back (no
strike, while ``outage_budget_s`` lasts), stop the run (``OutageBudgetSpent``)
or open the model's circuit (``CircuitOpen``).  Waits are exponential, capped
and jittered, and never longer than ``max_wait_s`` (a ``Retry-After`` included).
Nothing above this layer retries an ``LLMError`` again.  One resend happens below it: a 401 to a
request whose key file has since changed is sent again at once by the backend with the new key
(``credentials.py``); this layer sees only the 401s a re-read could not fix.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

import structlog

from agents.llm import ChatRequest, Completion, LLMClient, LLMError, LLMTimeout, RateLimited
from bus import Backoff
from bus.logcontext import bind_context, reset_context

from reasonmed_async.llm.gauge import CallGauge
from reasonmed_async.llm.health import ModelHealth, Next, RetryPolicy
from reasonmed_async.outcome import CircuitOpen, OutageBudgetSpent

log = structlog.get_logger("llm")

__all__ = ["AttemptObserver", "RetryPolicy", "RetryingClient"]


class AttemptObserver(Protocol):
    async def attempt_failed(self, request: ChatRequest, error: LLMError) -> None: ...

    async def retrying(self, request: ChatRequest, error: LLMError) -> None:
        """The failed attempt is sent again (after a strike or a wait)."""


class CircuitObserver(Protocol):
    async def circuit_opened(self, model: str, endpoint: str, error: str) -> None: ...


class RetryingClient:
    """``complete`` with retries, waits and the circuit of one model (see the module docstring).

    ``backoff`` gives the attempts and the backoff of a request's strikes; ``policy`` the rest of
    ``[retry]`` (its ``attempts``/``base_s``/``cap_s`` are ignored in favour of ``backoff``).
    ``sleep`` and ``clock`` are injectable so tests control time.  The error that ends the
    request is re-raised with ``.attempts`` set."""

    def __init__(self, inner: LLMClient, backoff: Backoff, *, timeout_s: float | None = 600.0,
                 policy: RetryPolicy | None = None, observer: AttemptObserver | None = None,
                 health: ModelHealth | None = None, on_circuit: CircuitObserver | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 clock: Callable[[], float] = time.monotonic, rng: random.Random | None = None,
                 gauge: CallGauge | None = None) -> None:
        self._inner = inner
        self.gauge = gauge or CallGauge()  # attempts on the wire and waits now (``status`` shows the pipeline's)
        self._backoff = backoff
        self._policy = policy or RetryPolicy(attempts=backoff.attempts, timeout_s=timeout_s)
        self._timeout_s = timeout_s if policy is None else policy.timeout_s
        if getattr(inner, "owns_timeout", False):
            self._timeout_s = None  # one timeout per attempt: the backend's
        self._observer = observer
        self._health = health
        self._on_circuit = on_circuit
        self._sleep = sleep
        self._clock = clock
        self._rng = rng or random.Random()

    def _health_of(self, model: str) -> ModelHealth:
        if self._health is None:
            self._health = ModelHealth(model, self._policy)
        return self._health

    async def complete(self, request: ChatRequest) -> Completion:
        health = self._health_of(request.model)
        attempt = strikes = waits = 0
        previous_failure: float | None = None
        while True:
            if health.circuit is not None:
                raise CircuitOpen(request.model, "", health.circuit, health.streak)
            attempt += 1
            # on the backend's lines (one bind per attempt: the cache layer above binds nothing)
            context = bind_context(model=request.model, stage=request.meta.get("task", ""), attempt=attempt)
            try:
                with self.gauge.sending(request.model):
                    # no timer when the backend times its own exchanges, nor for an attempt that returns without
                    # ever yielding to the event loop (``answers_at_once``: the sim at zero latency), which no
                    # timer could interrupt anyway
                    if self._timeout_s is None or getattr(self._inner, "answers_at_once", False):
                        completion = await self._inner.complete(request)
                    else:
                        async with asyncio.timeout(self._timeout_s):
                            completion = await self._inner.complete(request)
            except TimeoutError as exc:
                error: LLMError = LLMTimeout(f"no answer within {self._timeout_s} s")
                error.__cause__ = exc
            except LLMError as exc:
                error = exc
            else:
                health.succeeded(self._clock())
                return completion
            finally:
                reset_context(context)
            now = self._clock()
            if self._observer is not None:
                await self._observer.attempt_failed(request, error)
            step = health.failed(request.cache_key(), error, now, strikes=strikes, previous_failure=previous_failure)
            previous_failure = now
            log.info(f"llm.{step.value}", model=request.model, stage=request.meta.get("task", ""), attempt=attempt,
                     endpoint=error.endpoint, error=f"{type(error).__name__}: {error}")
            if step is Next.FAIL:
                error.attempts = attempt
                raise error
            if step is Next.OPEN:
                await self._circuit_opened(request.model, request.meta.get("task", ""), error, health)
                raise CircuitOpen(request.model, error.endpoint, health.circuit or str(error), health.streak)
            if step is Next.STOP:
                since = health.failing_since if health.failing_since is not None else now
                raise OutageBudgetSpent(request.model, error.endpoint, now - since, f"{type(error).__name__}: {error}")
            if step is Next.RETRY:
                strikes += 1
                delay = self._backoff.delay(strikes)
            else:
                waits += 1
                floor = error.retry_after_s or 0.0 if isinstance(error, RateLimited) else 0.0
                ceiling = min(self._backoff.cap_s, self._backoff.base_s * 2 ** min(waits - 1, 30))
                delay = max(min(floor, self._policy.max_wait_s), self._rng.uniform(ceiling / 2, ceiling))
            if self._observer is not None:
                await self._observer.retrying(request, error)
            with self.gauge.waiting(request.model):
                await self._sleep(min(delay, self._policy.max_wait_s))

    async def _circuit_opened(self, model: str, stage: str, error: LLMError, health: ModelHealth) -> None:
        log.error("llm.circuit_open", model=model, stage=stage, endpoint=error.endpoint, error=health.circuit,
                  consecutive=health.streak)
        if self._on_circuit is not None:
            await self._on_circuit.circuit_opened(model, error.endpoint, health.circuit or str(error))
