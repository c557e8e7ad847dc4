"""Retries and a timeout per request, around any LLM client: one policy rules."""

from __future__ import annotations

import asyncio
from typing import Protocol

import structlog

from agents.llm import ChatRequest, Completion, LLMClient, LLMError, LLMTimeout, RateLimited
from bus import Backoff

log = structlog.get_logger("llm")


class AttemptObserver(Protocol):
    async def attempt_failed(self, request: ChatRequest, error: LLMError) -> None: ...


class RetryingClient:
    """Bounded attempts with exponential backoff and full jitter, on ``LLMError`` only.

    A ``RateLimited`` error's ``retry_after_s`` is a floor on the wait.  The
    error that ends the last attempt is re-raised with ``.attempts`` set."""

    def __init__(self, inner: LLMClient, backoff: Backoff, *, timeout_s: float | None = 600.0,
                 observer: AttemptObserver | None = None) -> None:
        self._inner = inner
        self._backoff = backoff
        self._timeout_s = timeout_s
        self._observer = observer

    async def complete(self, request: ChatRequest) -> Completion:
        attempts = self._backoff.attempts
        for attempt in range(1, attempts + 1):
            context = structlog.contextvars.bind_contextvars(attempt=attempt)  # on the backend's lines
            try:
                async with asyncio.timeout(self._timeout_s):
                    return await self._inner.complete(request)
            except TimeoutError as exc:
                error: LLMError = LLMTimeout(f"no answer within {self._timeout_s} s")
                error.__cause__ = exc
            except LLMError as exc:
                error = exc
            finally:
                structlog.contextvars.reset_contextvars(**context)
            if self._observer is not None:
                await self._observer.attempt_failed(request, error)
            log.info("llm.retry" if attempt < attempts and error.retryable else "llm.failed",
                     model=request.model, stage=request.meta.get("task", ""), attempt=attempt,
                     error=f"{type(error).__name__}: {error}")
            if attempt == attempts or not error.retryable:
                error.attempts = attempt  # type: ignore[attr-defined]
                raise error
            floor = error.retry_after_s or 0.0 if isinstance(error, RateLimited) else 0.0
            await asyncio.sleep(self._backoff.delay(attempt, at_least=floor))
        raise AssertionError("unreachable")
