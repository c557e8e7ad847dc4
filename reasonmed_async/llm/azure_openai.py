"""Azure OpenAI chat deployments through the openai SDK, under client-side RPM / TPM limits.

The SDK's own retries are off (``max_retries=0``): ``RetryingClient`` owns the
policy.  This module owns what only the wire knows: per-deployment rate limits
(``ratelimit.DeploymentLimiter``), the 429 cooldown every task on a deployment
shares, o1-class request shaping, and translating SDK errors into ``LLMError``.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import openai

from agents.llm import (BadRequest, BadResponse, ChatMessage, ChatRequest, Completion, ConnectionLost, LLMError,
                        LLMTimeout, RateLimited, ServerError)

from reasonmed_async.config import BackendConfig, ConfigError
from reasonmed_async.llm.credentials import KEY_OPTIONS, KeySource, check_key_options
from reasonmed_async.llm.entra import ENTRA_SCOPE, EntraTokens, open_entra_tokens
from reasonmed_async.llm.ratelimit import DeploymentLimiter, Reservation, estimate_prompt_tokens, parse_retry_after, window_safe_rate
from reasonmed_async.llm.o1 import is_o1
from reasonmed_async.llm.wire import build_body, scrub

_OPTIONS = {"endpoint", "api_version", "api_key_env", "api_key_file", "auth", "entra_scope", "timeout_s",
            "deployments"}
_DEPLOYMENT_KEYS = {"rpm", "tpm", "burst_s", "window_s", "o1"}


@dataclass(frozen=True)
class Deployment:
    name: str
    rpm: float
    tpm: float
    burst_s: float = 1.0  # seconds of quota saved up (see ratelimit.window_safe_rate); at most window_s / 6
    o1: bool = False
    window_s: float = 60.0  # the quota period: rpm / tpm are per window_s seconds


@dataclass(frozen=True)
class AzureSettings:
    endpoint: str
    api_version: str
    timeout_s: float
    deployments: Mapping[str, Deployment]
    auth: str = "key"  # "key": api_key_env / api_key_file; "entra": Microsoft Entra ID tokens (entra.py)
    entra_scope: str = ENTRA_SCOPE

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> AzureSettings:
        """Validate a ``[backends.NAME]`` table of type "azure"; unknown keys are an error."""
        unknown = sorted(set(options) - _OPTIONS)
        if unknown:
            raise ValueError(f"unknown azure option(s): {', '.join(unknown)} (known: {', '.join(sorted(_OPTIONS))})")
        for key in ("endpoint", "api_version"):
            if not isinstance(options.get(key), str) or not options[key]:
                raise ValueError(f"azure option {key} is required and must be a non-empty string")
        auth = options.get("auth", "key")
        if auth not in ("key", "entra"):
            raise ValueError(f"azure option auth must be \"key\" or \"entra\", got {auth!r}")
        if auth == "entra" and any(options.get(k) is not None for k in KEY_OPTIONS):
            raise ValueError("auth = \"entra\" takes no api_key_env / api_key_file (the tokens come from Entra ID)")
        if auth == "key" and "entra_scope" in options:
            raise ValueError("entra_scope is for auth = \"entra\"")
        check_key_options(options, required=auth == "key")
        scope = options.get("entra_scope", ENTRA_SCOPE)
        if not isinstance(scope, str) or not scope:
            raise ValueError("azure option entra_scope must be a non-empty string")
        timeout = options.get("timeout_s", 600.0)
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or not 0 < timeout < math.inf:
            raise ValueError(f"azure option timeout_s must be a number > 0, got {timeout!r}")
        table = options.get("deployments")
        if not isinstance(table, Mapping) or not table:
            raise ValueError("azure option deployments is required: a table of deployment name -> {rpm, tpm}")
        return cls(options["endpoint"], options["api_version"], float(timeout),
                   {str(name): _deployment(str(name), spec) for name, spec in table.items()}, auth, scope)


def _deployment(name: str, spec: Any) -> Deployment:
    if not isinstance(spec, Mapping):
        raise ValueError(f"azure deployments.{name} must be a table with rpm and tpm")
    unknown = sorted(set(spec) - _DEPLOYMENT_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) in azure deployments.{name}: {', '.join(unknown)}"
                         f" (known: {', '.join(sorted(_DEPLOYMENT_KEYS))})")
    for key in ("rpm", "tpm", "burst_s", "window_s"):
        value = spec.get(key, {"burst_s": 1.0, "window_s": 60.0}.get(key))
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise ValueError(f"azure deployments.{name}.{key} must be a number > 0, got {value!r}")
    o1 = is_o1(name, spec)
    if not isinstance(o1, bool):
        raise ValueError(f"azure deployments.{name}.o1 must be true or false, got {o1!r}")
    return Deployment(name, float(spec["rpm"]), float(spec["tpm"]), float(spec.get("burst_s", 1.0)), o1,
                      float(spec.get("window_s", 60.0)))


def o1_messages(messages: tuple[ChatMessage, ...]) -> list[dict[str, str]]:
    """o1-class deployments take no system role: system text goes in front of the first user message."""
    system = "\n\n".join(m.content for m in messages if m.role == "system")
    out = [{"role": m.role, "content": m.content} for m in messages if m.role != "system"]
    if system:
        first_user = next((m for m in out if m["role"] == "user"), None)
        if first_user is None:
            out.insert(0, {"role": "user", "content": system})
        else:
            first_user["content"] = f"{system}\n\n{first_user['content']}"
    return out


def request_kwargs(request: ChatRequest, o1: bool) -> dict[str, Any]:
    """The ``chat.completions.create`` arguments for ``request`` on a deployment (o1-class or not):
    the common chat body, with o1-class models' own rules applied."""
    kwargs = build_body(request, model=request.model, schema_target="strict",
                        token_field="max_completion_tokens" if o1 else "max_tokens")
    if o1:  # no sampling parameters, user messages only
        kwargs.pop("temperature", None)
        kwargs.pop("top_p", None)
        kwargs["messages"] = o1_messages(request.messages)
    return kwargs


def translate_error(exc: openai.OpenAIError, deployment: str, retry_after_s: float | None, *,
                    secrets: Iterable[str] = ()) -> LLMError:
    """The one mapping of SDK errors to ``LLMError``; ``secrets`` (every key and token seen) are redacted
    should a server echo one."""
    error = _translate(exc, f"azure:{deployment}", retry_after_s).at(f"azure:{deployment}")
    error.args = (scrub(str(error.args[0]), secrets),)
    return error


def _translate(exc: openai.OpenAIError, where: str, retry_after_s: float | None) -> LLMError:
    if isinstance(exc, openai.APITimeoutError):
        return LLMTimeout(f"{where}: request timed out")
    if isinstance(exc, openai.APIConnectionError):
        cause = exc.__cause__ or exc
        return ConnectionLost(f"{where}: connection failed ({type(cause).__name__}: {cause})")
    if isinstance(exc, openai.APIStatusError):
        status = exc.status_code
        detail = f"{where}: HTTP {status}" + (f" [{exc.code}]" if exc.code else "") + f" request_id={exc.request_id}"
        if status == 429:
            return RateLimited(f"{detail} (retry after {retry_after_s} s)", retry_after_s=retry_after_s)
        if status == 408:
            return LLMTimeout(detail)
        if status >= 500:
            return ServerError(detail, status=status)
        return BadRequest(f"{detail}: {exc.message}", status=status)
    return BadResponse(f"{where}: unusable response ({type(exc).__name__})")


class AzureBackend:
    """``complete`` / ``aclose`` over one Azure OpenAI resource with several deployments."""

    #: each exchange has this backend's ``timeout_s``: ``RetryingClient`` adds no second timeout
    owns_timeout = True
    #: the longest a 429's Retry-After pauses a deployment (the pipeline sets it from ``[retry] max_wait_s``)
    max_wait_s: float = 300.0

    def __init__(self, settings: AzureSettings, client: openai.AsyncAzureOpenAI, *,
                 credentials: KeySource | None = None, tokens: EntraTokens | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.settings = settings
        self._client = client
        #: the key's source, asked by the client on every request (``reload_all`` re-reads its file on SIGHUP)
        self.credentials = credentials
        self._tokens = tokens  # auth = "entra": the token provider the client asks on every request
        self._clock = clock
        self._limiters = {name: DeploymentLimiter(
            window_safe_rate(d.rpm, d.burst_s, d.window_s), window_safe_rate(d.tpm, d.burst_s, d.window_s),
            d.burst_s, clock=clock, sleep=sleep, window_s=d.window_s)
                          for name, d in settings.deployments.items()}

    def __repr__(self) -> str:
        return f"AzureBackend(endpoint={self.settings.endpoint!r}, deployments={sorted(self._limiters)})"

    def limiter(self, deployment: str) -> DeploymentLimiter:
        return self._limiters[deployment]

    def update_limits(self, deployment: str, rpm: float, tpm: float, burst_s: float | None = None) -> None:
        """Hot reload of one deployment's quotas."""
        d = self.settings.deployments[deployment]
        burst = d.burst_s if burst_s is None else burst_s
        self._limiters[deployment].update_limits(
            window_safe_rate(rpm, burst, d.window_s), window_safe_rate(tpm, burst, d.window_s), burst)

    def reconfigure(self, options: Mapping[str, Any]) -> None:
        """Hot reload (SIGHUP): new quotas for the deployments this backend already has."""
        settings = AzureSettings.from_options(options)
        for name, d in settings.deployments.items():
            if name in self._limiters:
                self.update_limits(name, d.rpm, d.tpm, d.burst_s)

    async def complete(self, request: ChatRequest) -> Completion:
        name = request.model
        deployment = self.settings.deployments.get(name)
        if deployment is None:
            raise BadRequest(f"azure: deployment {name!r} is not in this backend's deployments table", status=404)
        limiter = self._limiters[name]
        kwargs = request_kwargs(request, deployment.o1)
        reservation = await limiter.acquire(estimate_prompt_tokens(request.messages) + request.max_tokens)
        while True:
            sent = self.credentials.current if self.credentials is not None else None
            started = self._clock()
            try:
                raw = await self._client.chat.completions.with_raw_response.create(**kwargs)
                break
            except openai.RateLimitError as exc:
                retry_after = parse_retry_after(exc.response.headers, time.time())
                limiter.on_429(None if retry_after is None else min(retry_after, self.max_wait_s))
                limiter.observe(exc.response.headers)
                raise translate_error(exc, name, retry_after, secrets=self._secrets()) from exc
            except openai.OpenAIError as exc:
                error = translate_error(exc, name, None, secrets=self._secrets())
                if self.credentials is not None and self.credentials.replaced(error, sent):
                    continue  # a rotated key: the one resend, at once (its quota is already reserved)
                raise error from exc
        latency = self._clock() - started
        try:  # settle with real usage first: the server's remaining counts then have the last word
            try:
                completion = raw.parse()
            except (openai.OpenAIError, ValueError, TypeError) as exc:  # a 2xx whose body is no chat completion
                raise BadResponse(f"azure:{name}: unusable response ({type(exc).__name__})") from exc
            return self._to_completion(completion, name, reservation, latency)
        finally:
            limiter.observe(raw.headers)

    def _to_completion(self, completion: Any, name: str, reservation: Reservation, latency: float) -> Completion:
        choices = getattr(completion, "choices", None) or []
        usage = getattr(completion, "usage", None)
        prompt = int(getattr(usage, "prompt_tokens", 0) or 0)
        generated = int(getattr(usage, "completion_tokens", 0) or 0)
        if usage is not None:
            reservation.settle(prompt + generated)
        message = getattr(choices[0], "message", None) if choices else None
        text = getattr(message, "content", None)
        if not isinstance(text, str):
            raise BadResponse(f"azure:{name}: the response has no message content"
                              f" (finish_reason={getattr(choices[0], 'finish_reason', None) if choices else None})")
        details = getattr(usage, "completion_tokens_details", None)
        return Completion(
            text=text,
            finish_reason=str(choices[0].finish_reason or "stop"),
            prompt_tokens=prompt,
            completion_tokens=generated,
            reasoning_tokens=int(getattr(details, "reasoning_tokens", 0) or 0),
            latency_s=latency,
            endpoint=f"azure:{name}",
            backend="azure",
        )

    def _secrets(self) -> tuple[str, ...]:
        return ((self.credentials.known if self.credentials is not None else ())
                + (self._tokens.known if self._tokens is not None else ()))

    async def aclose(self) -> None:
        await self._client.close()
        if self._tokens is not None:
            await self._tokens.aclose()


async def open_azure_backend(config: BackendConfig, *, env: Mapping[str, str] | None = None,
                             clock: Callable[[], float] = time.monotonic,
                             sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> AzureBackend:
    """Build the backend for ``[backends.NAME]``: the key from ``api_key_env`` / ``api_key_file``, handed to the
    SDK as an async provider it asks on every request (so a re-read key file takes effect without a new
    client), or Entra ID tokens (``auth = "entra"``); ``clock`` and ``sleep`` pace its rate limits
    (injectable, so tests control time)."""
    try:
        settings = AzureSettings.from_options(config.options)
    except ValueError as exc:
        raise ConfigError(f"[backends.{config.name}]: {exc}") from exc
    common = {"azure_endpoint": settings.endpoint, "api_version": settings.api_version, "max_retries": 0,
              "timeout": settings.timeout_s}
    if settings.auth == "entra":
        tokens = open_entra_tokens(config.name, settings.entra_scope)
        client = openai.AsyncAzureOpenAI(azure_ad_token_provider=tokens.provider, **common)
        return AzureBackend(settings, client, tokens=tokens, clock=clock, sleep=sleep)
    source = KeySource.from_options(config.name, config.options, env)
    assert source is not None  # from_options required a key source
    client = openai.AsyncAzureOpenAI(api_key=source.provider, **common)
    return AzureBackend(settings, client, credentials=source, clock=clock, sleep=sleep)
