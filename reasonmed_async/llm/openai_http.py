"""An OpenAI-compatible chat-completions backend (OpenAI, ``vllm serve``, any ``/v1/chat/completions``).

It speaks the wire format over one shared ``aiohttp.ClientSession`` (the openai
SDK costs about ten times the CPU per request), spreads requests over replicas
with ``ReplicaPool`` (fewest outstanding, adaptive caps, ejection of dead
replicas) and never retries: ``RetryingClient`` around it does.

Options of ``[backends.NAME]`` (``type = "openai"``):

- ``base_urls`` (list) or ``base_url`` (one): replica base URLs, e.g. ``http://127.0.0.1:8000/v1``
- ``api_key_env``: the environment variable holding the key (optional: a vLLM without ``--api-key``)
- ``max_concurrency``: the most requests in flight per URL (default ``max_num_seqs x replicas``, else 64)
- ``max_num_seqs``, ``replicas`` (1): the servers' ``--max-num-seqs`` and how many servers one URL fronts
  (a router's URL: its replica count); they size ``max_concurrency`` when it is not given
- ``timeout_s`` (600): per HTTP exchange; also how long a request waits while every replica is ejected
- ``structured_output`` ("json_schema" | "none"): send ``response_format`` json_schema when a request has a schema
- ``adaptive`` (true): adapt each replica's cap to its latency (AIMD); false keeps ``max_concurrency``
- ``initial_concurrency`` (8), ``eject_after`` (3), ``cooloff_s`` (10): see ``replicas.PoolPolicy``
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import aiohttp
import structlog

from agents.llm import ChatRequest, Completion, ConnectionLost, LLMError, LLMTimeout, RateLimited, ServerError

from reasonmed_async.config import BackendConfig, ConfigError
from reasonmed_async.llm.identity import default_concurrency, identity_headers
from reasonmed_async.llm.replicas import PoolPolicy, ReplicaPool, Ticket
from reasonmed_async.llm.wire import STRUCTURED_OUTPUT, build_body, post_chat

OPTIONS = frozenset({"base_url", "base_urls", "api_key_env", "max_concurrency", "timeout_s", "structured_output",
                     "adaptive", "initial_concurrency", "eject_after", "cooloff_s", "eject_last",
                     "max_num_seqs", "replicas"})
_FAILURES = (ConnectionLost, ServerError, LLMTimeout)  # the replica itself did not answer: counts toward ejection

log = structlog.get_logger("llm")


@dataclass(frozen=True)
class OpenAISettings:
    base_urls: tuple[str, ...]
    api_key_env: str | None = None
    timeout_s: float = 600.0
    structured_output: str = "json_schema"
    policy: PoolPolicy = field(default_factory=PoolPolicy)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> OpenAISettings:
        """Validated settings; ``ValueError`` naming the offending key."""
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(OPTIONS))}")
        if ("base_url" in options) == ("base_urls" in options):
            raise ValueError("give exactly one of base_url (one replica) or base_urls (a list)")
        urls = [options["base_url"]] if "base_url" in options else options["base_urls"]
        if not isinstance(urls, list | tuple) or not urls:
            raise ValueError("base_urls must be a non-empty list of URLs")
        for url in urls:
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ValueError(f"base_urls: {url!r} is not an http:// or https:// URL")
        env = options.get("api_key_env")
        if env is not None and (not isinstance(env, str) or not env):
            raise ValueError("api_key_env must name an environment variable")
        structured = options.get("structured_output", "json_schema")
        if structured not in STRUCTURED_OUTPUT:
            raise ValueError(f"structured_output must be one of {', '.join(STRUCTURED_OUTPUT)}, got {structured!r}")
        policy = PoolPolicy(
            max_concurrency=default_concurrency(options),
            adaptive=_bool(options, "adaptive", True),
            initial_concurrency=_int(options, "initial_concurrency", 8),
            eject_after=_int(options, "eject_after", 3),
            cooloff_s=_number(options, "cooloff_s", 10.0),
            eject_last=_bool(options, "eject_last", False),
        )
        timeout = _number(options, "timeout_s", 600.0)
        if timeout <= 0:
            raise ValueError("timeout_s must be > 0")
        return cls(tuple(u.rstrip("/") for u in urls), env, timeout, structured, policy)


def _int(options: Mapping[str, Any], key: str, default: int) -> int:
    value = options.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
    return value


def _number(options: Mapping[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{key} must be a number >= 0, got {value!r}")
    return float(value)


def _bool(options: Mapping[str, Any], key: str, default: bool) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {value!r}")
    return value


class OpenAICompatBackend:
    """``complete`` / ``aclose`` over replicas of one OpenAI-compatible server.  Build it inside a running loop."""

    backend_name = "openai"
    #: each exchange has this backend's ``timeout_s``: ``RetryingClient`` adds no second timeout
    owns_timeout = True
    #: the longest a 429's Retry-After pauses a replica (the pipeline sets it from ``[retry] max_wait_s``)
    max_wait_s: float = 300.0

    def __init__(self, settings: OpenAISettings, *, api_key: str | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._settings = settings
        self._pool = ReplicaPool(list(settings.base_urls), settings.policy)
        self._headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._secrets = (api_key,) if api_key else ()
        self._clock = clock
        self._changed = asyncio.Event()
        self._closed = False
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

    async def complete(self, request: ChatRequest) -> Completion:
        body = build_body(request, model=request.model, structured_output=self._settings.structured_output)
        ticket = await self._admit(request.model)
        try:
            completion = await post_chat(
                self._session, f"{ticket.url}/chat/completions", body,
                headers={**self._headers, **identity_headers(request)},
                timeout_s=self._settings.timeout_s, endpoint=ticket.url, backend=self.backend_name,
                secrets=self._secrets)
        except LLMError as exc:
            self._settle(ticket, exc)
            raise exc.at(ticket.url)
        except BaseException:  # cancelled (or a bug): nothing learnt about the replica; CancelledError propagates
            self._pool.abandoned(ticket)
            raise
        else:
            self._settle(ticket, completion)
            return completion
        finally:
            self._notify()

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
        """Wait for a replica to take the request: on a state change (a release) or the next clock event."""
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
            changed = self._changed
            try:
                async with asyncio.timeout(None if wake is None else max(0.0, wake - now)):
                    await changed.wait()
            except TimeoutError:
                pass  # our own deadline: the clock may have admitted something

    def _notify(self) -> None:
        """Wake every waiter (a broadcast: synchronous, so it is safe in ``finally`` even while cancelled)."""
        self._changed.set()
        self._changed = asyncio.Event()

    def reconfigure(self, options: Mapping[str, Any]) -> None:
        """Hot reload (SIGHUP): new concurrency caps and ejection policy; replicas and key stay."""
        settings = OpenAISettings.from_options(options)
        if settings.base_urls != self._settings.base_urls:
            raise ValueError("base_urls cannot change on a reload; restart the daemon")
        self._settings = replace(self._settings, policy=settings.policy, timeout_s=settings.timeout_s)
        self._pool.policy = settings.policy
        for replica in self._pool.replicas:
            replica.limit = replace(replica.limit, cap=min(replica.limit.cap, float(settings.policy.max_concurrency)))
        self._notify()

    async def aclose(self) -> None:
        self._closed = True
        self._notify()
        await self._session.close()


async def open_openai_backend(config: BackendConfig) -> OpenAICompatBackend:
    """The backend for a ``[backends.NAME]`` table; ``ConfigError`` names the table and the problem."""
    try:
        settings = OpenAISettings.from_options(config.options)
    except ValueError as exc:
        raise ConfigError(f"[backends.{config.name}]: {exc}") from None
    api_key = None
    if settings.api_key_env is not None:
        api_key = os.environ.get(settings.api_key_env)
        if not api_key:
            raise ConfigError(f"[backends.{config.name}]: environment variable {settings.api_key_env} is not set"
                              " (it must hold the API key)")
    return OpenAICompatBackend(settings, api_key=api_key)
