"""An OpenAI-compatible chat-completions backend (OpenAI, ``vllm serve``, any ``/v1/chat/completions``).

It speaks the wire format over one shared ``aiohttp.ClientSession`` (the openai
SDK costs about ten times the CPU per request), spreads requests over replicas
with ``ReplicaPool`` (fewest outstanding, adaptive caps, ejection of dead
replicas) and never retries: ``RetryingClient`` around it does.

Options of ``[backends.NAME]`` (``type = "openai"``):

- ``base_urls`` (list) or ``base_url`` (one): replica base URLs, e.g. ``http://127.0.0.1:8000/v1``
- ``api_key_env``: the environment variable holding the key (optional: a vLLM without ``--api-key``), or
  ``api_key_file``: a file holding it, re-read on SIGHUP and after a 401 (``credentials.KeySource``)
- ``max_concurrency``: the most requests in flight per URL (default ``max_num_seqs x replicas``, else 64)
- ``max_num_seqs``, ``replicas`` (1): the servers' ``--max-num-seqs`` and how many servers one URL fronts
  (a router's URL: its replica count); they size ``max_concurrency`` when it is not given
- ``timeout_s`` (600): per HTTP exchange; also how long a request waits while every replica is ejected
- ``structured_output`` ("auto" | "json_schema" | "json_object" | "none", default "auto"): how a request with a
  schema asks for JSON.  ``auto`` starts with ``json_schema``; where an endpoint answers that it cannot take
  that ``response_format`` (400 / 422 / 500 naming it), it falls back to ``json_object`` with the schema in
  its ``schema`` field (llama.cpp's servers), then to ``none`` (the prompt asks for JSON; the parsers and
  their corrections do the rest).  Decided once per endpoint and model, logged (``llm.structured_output``),
  and the refused attempt is not a failure of the call.
- ``structured_output_models`` (table): the same, per model name, overriding ``structured_output``
- ``max_tokens`` goes as ``max_tokens`` (what every compatible server reads), as ``max_completion_tokens``
  only to OpenAI's own API for o-series / gpt-5 models; schemas sent to OpenAI's API are its strict subset
- ``adaptive`` (true): adapt each replica's cap to its latency (AIMD); false keeps ``max_concurrency``
- ``initial_concurrency`` (8), ``eject_after`` (3), ``cooloff_s`` (10): see ``replicas.PoolPolicy``
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import aiohttp
import structlog

from agents.llm import ChatRequest, Completion, ConnectionLost, LLMError, LLMTimeout, RateLimited, ServerError

from reasonmed_async.config import BackendConfig, ConfigError
from reasonmed_async.llm.credentials import KeySource
from reasonmed_async.llm.deadlines import Deadlines
from reasonmed_async.llm.handover import Handover
from reasonmed_async.llm.identity import identity_headers
from reasonmed_async.llm.openai_settings import OPTIONS, OpenAISettings  # noqa: F401 - OPTIONS re-exported
from reasonmed_async.llm.replicas import ReplicaPool, Ticket
from reasonmed_async.llm.schema_targets import is_openai_service, needs_max_completion_tokens
from reasonmed_async.llm.wire import build_body, post_chat, refuses_format

_FALLBACK = {"json_schema": "json_object", "json_object": "none"}
_official = functools.lru_cache(maxsize=256)(is_openai_service)  # per replica URL, not per request

_FAILURES = (ConnectionLost, ServerError, LLMTimeout)  # the replica itself did not answer: counts toward ejection

log = structlog.get_logger("llm")


class OpenAICompatBackend:
    """``complete`` / ``aclose`` over replicas of one OpenAI-compatible server.  Build it inside a running loop."""

    backend_name = "openai"
    #: each exchange has this backend's ``timeout_s``: ``RetryingClient`` adds no second timeout
    owns_timeout = True
    #: the longest a 429's Retry-After pauses a replica (the pipeline sets it from ``[retry] max_wait_s``)
    max_wait_s: float = 300.0

    def __init__(self, settings: OpenAISettings, *, api_key: str | None = None,
                 credentials: KeySource | None = None, clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._pool = ReplicaPool(list(settings.base_urls), settings.policy)
        #: the key's source (``reload_all`` re-reads its file on SIGHUP); a plain ``api_key`` is a fixed one
        self.credentials = credentials or (KeySource("[backends]", api_key) if api_key else None)
        self._clock = clock
        self._waiters = Handover(self._pool, clock)  # requests waiting for a slot: a release hands it to one
        self._closed = False
        self._modes: dict[tuple[str, str], str] = {}  # (endpoint, model) -> the mode "auto" settled on
        self._deadlines = Deadlines(settings.timeout_s)  # each exchange's timeout_s, one timer for them all
        connect_s = min(30.0, settings.timeout_s)
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=0),  # the pool caps concurrency, per replica
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=connect_s),
        )

    def __repr__(self) -> str:
        return f"OpenAICompatBackend(base_urls={list(self._settings.base_urls)!r})"

    def replica_stats(self) -> list[dict[str, object]]:
        """Per replica: url, outstanding, cap, sent, ejected, ejections."""
        return self._pool.snapshot()

    def structured_output_modes(self) -> dict[str, str]:
        """``"endpoint model" -> mode`` for every endpoint and model where ``auto`` has settled (or started)."""
        return {f"{url} {model}": mode for (url, model), mode in sorted(self._modes.items())}

    def _mode(self, url: str, model: str) -> str:
        configured = self._settings.structured_output_for(model)
        if configured != "auto":
            return configured
        return self._modes.setdefault((url, model), "json_schema")

    def _fall_back(self, url: str, model: str, mode: str, exc: LLMError) -> bool:
        """After a refused ``response_format``: move ``auto`` on to the next mode; True to send the request again."""
        if self._settings.structured_output_for(model) != "auto" or mode not in _FALLBACK:
            return False
        if not refuses_format(getattr(exc, "status", 0), str(exc)):
            return False
        key = (url, model)
        if self._modes.get(key) == mode:  # not yet moved on by a concurrent request
            self._modes[key] = _FALLBACK[mode]
            log.warning("llm.structured_output", endpoint=url, model=model, refused=mode, now=_FALLBACK[mode],
                        error=str(exc))
        return True

    def _body(self, request: ChatRequest, url: str) -> tuple[dict[str, Any], str]:
        mode = self._mode(url, request.model) if request.json_schema is not None else "none"
        official = _official(url)
        token_field = "max_completion_tokens" if official and needs_max_completion_tokens(request.model) else "max_tokens"
        body = build_body(request, model=request.model, structured_output=mode, token_field=token_field,
                          schema_target="strict" if official else "grammar")
        return body, mode

    async def complete(self, request: ChatRequest) -> Completion:
        while True:
            ticket = await self._admit(request.model)
            body, mode = self._body(request, ticket.url)
            key = self.credentials.current if self.credentials is not None else None
            headers = identity_headers(request)  # a new dict each call: the key goes into it
            if key:
                headers["Authorization"] = f"Bearer {key}"
            try:
                completion = await post_chat(
                    self._session, f"{ticket.url}/chat/completions", body, headers=headers,
                    deadlines=self._deadlines, endpoint=ticket.url, backend=self.backend_name,
                    secrets=self.credentials.known if self.credentials is not None else ())
            except LLMError as exc:
                if request.json_schema is not None and self._fall_back(ticket.url, request.model, mode, exc):
                    self._pool.answered(ticket, self._clock())  # the endpoint answered: it is alive
                    continue
                if self.credentials is not None and self.credentials.replaced(exc, key):
                    self._pool.answered(ticket, self._clock())  # a rotated key: the one resend, at once
                    continue
                self._settle(ticket, exc)
                raise exc.at(ticket.url)
            except BaseException:  # cancelled (or a bug): nothing learnt about the replica; CancelledError propagates
                self._pool.abandoned(ticket)
                raise
            else:
                self._settle(ticket, completion)
                return completion
            finally:
                if self._waiters.waiting:  # a slot is free: to the first waiter it can serve (sync: safe if cancelled)
                    self._waiters.hand_over()

    def _settle(self, ticket: Ticket, outcome: Completion | LLMError) -> None:
        """Tell the pool how the request ended; log an ejection or a re-admission."""
        now, replica = self._clock(), self._pool.replicas[ticket.index]
        ejections = replica.ejections
        if isinstance(outcome, Completion):
            self._pool.succeeded(ticket, now, latency_s=outcome.latency_s, tokens=outcome.completion_tokens)
        elif isinstance(outcome, RateLimited):
            wait = outcome.retry_after_s
            self._pool.rate_limited(ticket, now, None if wait is None else min(wait, self.max_wait_s))
        elif isinstance(outcome, _FAILURES):
            self._pool.failed(ticket, now)
        else:
            self._pool.answered(ticket, now)
        if replica.ejections > ejections:
            log.warning("llm.replica_ejected", endpoint=ticket.url, cooloff_s=self._settings.policy.cooloff_s,
                        error=f"{type(outcome).__name__}: {outcome}")
        elif ticket.probe:
            log.info("llm.replica_readmitted", endpoint=ticket.url)

    async def _admit(self, model: str) -> Ticket:
        """Wait for a replica to take the request: handed a slot by a release, or until the next clock event."""
        started = self._clock()
        while True:
            if self._closed:
                raise ConnectionLost("the backend is closed")
            now = self._clock()
            ticket = self._pool.acquire(now, model)
            if ticket is not None:
                return ticket
            wake = self._pool.next_change(now, model)
            if self._pool.all_ejected():
                deadline = started + self._settings.timeout_s
                if now >= deadline:
                    raise ConnectionLost(f"every replica of {', '.join(self._settings.base_urls)} is ejected after"
                                         f" repeated failures; none came back within {self._settings.timeout_s} s")
                wake = deadline if wake is None else min(wake, deadline)
            ticket = await self._waiters.wait(model, None if wake is None else max(0.0, wake - now))
            if ticket is None:
                continue
            if not self._closed and self._pool.still_admits(ticket, self._clock()):
                return ticket
            # handed over, then the backend closed or a 429 / an ejection came before this waiter ran: the slot
            # goes back (to the next waiter it can serve), and this one asks again
            self._pool.abandoned(ticket)
            self._waiters.hand_over()

    def reconfigure(self, options: Mapping[str, Any]) -> None:
        """Hot reload (SIGHUP): new concurrency caps and ejection policy; replicas and key stay."""
        settings = OpenAISettings.from_options(options)
        if settings.base_urls != self._settings.base_urls:
            raise ValueError("base_urls cannot change on a reload; restart the daemon")
        self._settings = replace(self._settings, policy=settings.policy, timeout_s=settings.timeout_s)
        self._deadlines.timeout_s = settings.timeout_s  # for the exchanges that start from now on
        self._pool.policy = settings.policy
        for replica in self._pool.replicas:
            replica.limit = replace(replica.limit, cap=min(replica.limit.cap, float(settings.policy.max_concurrency)))
        self._waiters.wake_all()

    async def aclose(self) -> None:
        self._closed = True
        self._waiters.wake_all()
        await self._session.close()


async def open_openai_backend(config: BackendConfig) -> OpenAICompatBackend:
    """The backend for a ``[backends.NAME]`` table; ``ConfigError`` names the table and the problem."""
    try:
        settings = OpenAISettings.from_options(config.options)
    except ValueError as exc:
        raise ConfigError(f"[backends.{config.name}]: {exc}") from None
    return OpenAICompatBackend(settings, credentials=KeySource.from_options(config.name, config.options))
