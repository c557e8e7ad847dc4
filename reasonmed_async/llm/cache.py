"""The LLM response cache: a completed call is stored the moment it returns."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import msgspec
from msgspec.structs import replace

from agents.llm import ChatRequest, Completion, LLMClient, LLMError
from reasonmed_async.logs.setup import per_call_logger

_encode = msgspec.json.Encoder().encode
_decode = msgspec.json.Decoder(Completion).decode
#: a call re-issued by ``reasonmed retry`` in round r is sent as sample ``sample + SAMPLE_STRIDE * r``
SAMPLE_STRIDE = 100_000

#: the ``calls.outcome`` of a model whose circuit opened
CIRCUIT_OPEN = "circuit_open"
#: ``calls.outcome`` rows that count events, not calls made: a call the cache answered, an attempt sent again
CACHED, RETRIED = "cached", "retried"
#: the ``meta`` key of a model whose circuit is open, with its endpoint and error class
OPEN_CIRCUIT_PREFIX = "circuit_open:"
EVENT_OUTCOMES = (CACHED, RETRIED)


class ResponseStore(Protocol):
    """Where completed calls are kept.  ``cache_put`` and ``count_call`` are write-behinds: submitted when
    called, committed no later than anything the caller writes after them; the future they return is set
    once committed (awaiting it is optional: the cache does not wait for it before handing a completion on)."""

    async def cache_get(self, key: str) -> bytes | None: ...

    def cache_put(
        self, key: str, model: str, payload: bytes, stage: str, endpoint: str, prompt: int, completion: int
    ) -> asyncio.Future[None]: ...

    def count_call(self, stage: str, model: str, endpoint: str, outcome: str, prompt: int,
                   completion: int) -> asyncio.Future[None]: ...

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None: ...


class FailedAttempts:
    """Counts every failed attempt of a call (retried or final) per endpoint in the store's accounting,
    and an opened circuit as the outcome ``circuit_open`` (what ``status`` shows)."""

    def __init__(self, store: ResponseStore) -> None:
        self._store = store

    async def attempt_failed(self, request: ChatRequest, error: LLMError) -> None:
        await self._store.count_call(request.meta.get("task", ""), request.model, error.endpoint,
                                     f"error:{type(error).__name__}", 0, 0)

    async def retrying(self, request: ChatRequest, error: LLMError) -> None:
        """The failed attempt is sent again (a strike, or a wait while the endpoint is out)."""
        await self._store.count_call(request.meta.get("task", ""), request.model, error.endpoint, RETRIED, 0, 0)

    async def circuit_opened(self, model: str, endpoint: str, error: str) -> None:
        # open until a process drives the run again (``reports/live.py``): the error's class only, never its text
        # (a server may echo the key it refused).  Written before the count: when the run stops on another
        # model's circuit meanwhile and this is cancelled between the two writes, ``status`` still shows the
        # circuit (a lost count is the lesser untruth)
        opened = json.dumps({"endpoint": endpoint, "error": error.split(": ", 1)[0], "at": time.time()})
        await self._store.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                                  (OPEN_CIRCUIT_PREFIX + model, opened))
        await self._store.count_call("", model, endpoint, CIRCUIT_OPEN, 0, 0)


class _LeaderGone(Exception):
    """The call a follower waited on was cancelled: the follower makes it itself."""


class _Flight:
    """A call in flight, then its completion until the store has committed it; ``outcome`` is made by the
    first identical request that waits for it (most calls have none: no future made, resolved and dropped
    per call for nobody)."""

    __slots__ = ("outcome", "completion")

    def __init__(self) -> None:
        self.outcome: asyncio.Future[Completion] | None = None
        self.completion: Completion | None = None  # answered, its cache entry not yet committed

    def wait(self) -> asyncio.Future[Completion]:
        if self.outcome is None:
            self.outcome = asyncio.get_running_loop().create_future()
            if self.completion is not None:
                self.outcome.set_result(self.completion)
        return self.outcome

    def answered(self, completion: Completion) -> None:
        self.completion = completion
        if self.outcome is not None:
            self.outcome.set_result(completion)


class CachedClient:
    """Answers a request from the store if it was ever answered; otherwise calls and stores.

    Keyed by ``ChatRequest.cache_key()`` (model, messages, sampling, sample
    index), so a redelivered message never pays for the same call twice.
    Single-flight: while a call is in flight, an identical request waits for
    it instead of making its own (and shares its result, or its final error);
    if the call is cancelled, a waiting request makes the call itself.  A completion is handed on as soon
    as its cache entry is submitted (a write-behind: committed before anything the caller writes next);
    until it is committed, identical requests are answered from the flight (the store cannot answer yet)."""

    def __init__(self, inner: LLMClient, store: ResponseStore,
                 rounds: Mapping[tuple[str, str, str], tuple[int, int]] | None = None) -> None:
        self._inner = inner
        self._store = store
        # (question id, task, path) -> (retry round, max_tokens or 0), from `reasonmed retry`
        self._rounds = rounds or {}
        self._in_flight: dict[str, _Flight] = {}
        # (the cache entry's write-behind, key, flight) of answered calls, oldest first: see ``_forget_landed``
        self._landing: deque[tuple[asyncio.Future[None], str, _Flight]] = deque()
        self.hits = 0
        self.misses = 0
        self.shared = 0  # answered by an identical call in flight

    def _reissued(self, request: ChatRequest) -> ChatRequest:
        """A call ``reasonmed retry`` re-issues goes out as a new sample (the cache cannot replay the
        output that failed); its path-less and any-task entries cover every path and task of the question."""
        if not self._rounds:
            return request
        meta = request.meta
        qid, task, path = meta.get("question_id", ""), meta.get("task", ""), meta.get("path", "")
        for probe in ((qid, task, path), (qid, task, ""), (qid, "*", "")):
            if probe in self._rounds:
                round_, max_tokens = self._rounds[probe]
                return replace(request, sample=request.sample + SAMPLE_STRIDE * round_,
                               max_tokens=max_tokens or request.max_tokens)
        return request

    async def complete(self, request: ChatRequest) -> Completion:
        started = time.perf_counter()
        if self._landing:
            self._forget_landed()
        request = self._reissued(request)
        key = request.cache_key()
        stage = request.meta.get("task", "")
        in_flight = self._in_flight
        while True:
            if key not in in_flight:
                stored = await self._store.cache_get(key)
                if stored is not None:
                    self.hits += 1
                    completion = replace(_decode(stored), cached=True)
                    self._store.count_call(stage, request.model, completion.endpoint, CACHED, 0, 0)
                    break
            leader = in_flight.get(key)
            if leader is None:  # the call itself (inline, not a coroutine of its own: one frame less per resume)
                self.misses += 1
                flight = in_flight[key] = _Flight()
                try:  # the lines logged below carry model, stage and attempt: bound by the retry layer, per attempt
                    completion = await self._inner.complete(request)
                    stored_at = self._store.cache_put(key, request.model, _encode(completion), stage,
                                                      completion.endpoint, completion.prompt_tokens,
                                                      completion.completion_tokens)
                except BaseException as exc:
                    del in_flight[key]
                    if (shared := flight.outcome) is not None:
                        shared.set_exception(_LeaderGone() if isinstance(exc, asyncio.CancelledError) else exc)
                        shared.exception()  # retrieved: no "never retrieved" warning when a waiter was cancelled
                    raise
                flight.answered(completion)
                self._landing.append((stored_at, key, flight))
                break
            try:
                completion = replace(await asyncio.shield(leader.wait()), cached=True)
            except _LeaderGone:
                continue
            self.shared += 1
            break
        call_log = per_call_logger()
        if call_log is not None:
            _log_call(call_log, request.model, stage, completion, time.perf_counter() - started)
        return completion

    def _forget_landed(self) -> None:
        """The flights whose cache entry is committed (or failed: the store says so to its next writer) leave
        ``_in_flight``: the store answers for them now.  Write-behinds commit in the order they were submitted,
        so those are the oldest entries of ``_landing``; checked at each call, not by a callback per call."""
        landing, in_flight = self._landing, self._in_flight
        while landing and landing[0][0].done():
            _, key, flight = landing.popleft()
            if in_flight.get(key) is flight:
                del in_flight[key]


def _log_call(call_log: Any, model: str, stage: str, completion: Completion, latency_s: float) -> None:
    """One ``llm.call`` line per completed call: sizes and timings, never the prompt or the text.

    ``latency_s`` is what the caller waited (retries and backoff included; a
    cache lookup for a hit, whose tokens are those of the original call)."""
    call_log.info("llm.call", model=model, stage=stage, endpoint=completion.endpoint, backend=completion.backend,
             latency_s=round(latency_s, 4), prompt_tokens=completion.prompt_tokens,
             completion_tokens=completion.completion_tokens, cached=completion.cached,
             finish_reason=completion.finish_reason)
