"""Preflight: one cheap request per configured model and endpoint before anything is ingested.

``run``, ``resume``, ``retry`` and ``daemon`` call ``preflight(config)`` first
(``--no-preflight`` skips it).  For an OpenAI-compatible backend it asks each
replica ``GET /models`` (when the server lists models, a model missing from the
list is unknown) and sends each served model a 1-token completion; for Azure a
1-token completion to each deployment; the simulator and the in-process vLLM
engine need nothing.  A wrong key (401 / 403), an unknown model or deployment
(404, or absent from ``/models``) or an endpoint that cannot be reached stops the
command with exit 2 and one line naming the model, the endpoint and the cause.
Anything else (429, 5xx, a 400 about a parameter) means the endpoint and the key
are good: the run's own retry layer handles it.  Keys never reach the message.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # imported where used: the CLI imports this module (PreflightFailed) at every start
    import aiohttp

from reasonmed_async.config import AppConfig
from reasonmed_async.llm.credentials import read_key_file

_PING = [{"role": "user", "content": "Reply with OK."}]
_TIMEOUT_S = 20.0


class PreflightFailed(Exception):
    """A configured model cannot be used: ``str()`` is the one line to show."""


@dataclass(frozen=True)
class Probe:
    """One model at one endpoint: where to send the 1-token completion, and how."""

    model: str
    endpoint: str  # what the user configured (shown in messages)
    chat_url: str
    models_url: str | None
    headers: dict[str, str]
    body: dict[str, Any]
    secret: str | None


def _key(opts: dict[str, Any]) -> str | None:
    """The key as the backend will send it (the variable's or the file's; an unreadable file: none here,
    the backend then says why in one line)."""
    if opts.get("api_key_file"):
        try:
            return read_key_file(Path(str(opts["api_key_file"])).expanduser())
        except (OSError, ValueError, UnicodeDecodeError):
            return None
    env = opts.get("api_key_env")
    return os.environ.get(env) if env else None


def probes(config: AppConfig) -> list[Probe]:
    """The requests preflight makes for ``config`` (pure: reads only the config and the key variables)."""
    found: list[Probe] = []
    for model, name in sorted(config.model_backends.items()):
        backend = config.backends[name]
        opts = backend.options
        if backend.type == "openai":
            key = _key(opts)
            headers = {"Authorization": f"Bearer {key}"} if key else {}
            urls = [opts["base_url"]] if "base_url" in opts else list(opts.get("base_urls", []))
            for url in urls:
                base = url.rstrip("/")
                found.append(Probe(model, base, f"{base}/chat/completions", f"{base}/models", headers,
                                   {"model": model, "messages": _PING, "max_tokens": 1}, key))
        elif backend.type == "azure" and opts.get("auth") == "entra":
            continue  # tokens come from the credential when the backend opens: its first call is the probe
        elif backend.type == "azure":
            key = _key(opts)
            endpoint = str(opts.get("endpoint", "")).rstrip("/")
            deployment = opts.get("deployments", {}).get(model, {})
            o1 = deployment.get("o1", model.lower().startswith(("o1", "o3", "o4")))
            limit = {"max_completion_tokens": 16} if o1 else {"max_tokens": 1}
            found.append(Probe(model, endpoint, f"{endpoint}/openai/deployments/{model}/chat/completions"
                                                f"?api-version={opts.get('api_version', '')}", None,
                               {"api-key": key or ""}, {"messages": _PING, **limit}, key))
    return found


def _redact(text: str, secrets: Iterable[str | None]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return " ".join(text.split())[:200]


async def _error_text(resp: aiohttp.ClientResponse) -> tuple[str, str]:
    """(code, message) of an OpenAI-style error body, as far as there is one."""
    import aiohttp

    try:
        data = await resp.json(content_type=None)
    except (ValueError, aiohttp.ClientError):
        return "", (await resp.text())[:200]
    err = data.get("error", data) if isinstance(data, dict) else {}
    if not isinstance(err, dict):
        return "", str(err)
    return str(err.get("code") or ""), str(err.get("message") or "")


async def _check(session: aiohttp.ClientSession, probe: Probe, listed: dict[str, set[str] | None]) -> None:
    import aiohttp

    where = f"model {probe.model} at {probe.endpoint}"
    try:
        if probe.models_url is not None and probe.models_url not in listed:
            async with session.get(probe.models_url, headers=probe.headers) as resp:
                if resp.status in (401, 403):
                    code, message = await _error_text(resp)
                    raise PreflightFailed(f"{where}: authentication failed (HTTP {resp.status}"
                                          f"{': ' + _redact(message, [probe.secret]) if message else ''})")
                ids = None
                if resp.status == 200:
                    data = await resp.json(content_type=None)
                    ids = {str(m.get("id")) for m in data.get("data", []) if isinstance(m, dict)} or None
                listed[probe.models_url] = ids  # None: the server does not list its models
        served = listed.get(probe.models_url or "")
        if served is not None and probe.model not in served:
            raise PreflightFailed(f"{where}: unknown model (the server serves {', '.join(sorted(served)[:5])})")
        async with session.post(probe.chat_url, headers=probe.headers, json=probe.body) as resp:
            if resp.status < 400:
                return
            code, message = await _error_text(resp)
            detail = _redact(f"HTTP {resp.status}" + (f" {code}" if code else "") + (f": {message}" if message else ""),
                             [probe.secret])
            if resp.status in (401, 403):
                raise PreflightFailed(f"{where}: authentication failed ({detail})")
            if resp.status == 404 or code in ("model_not_found", "DeploymentNotFound"):
                raise PreflightFailed(f"{where}: unknown model or deployment ({detail})")
    except (aiohttp.ClientConnectionError, TimeoutError, OSError) as exc:
        reason = "no answer within the preflight timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
        raise PreflightFailed(f"{where}: unreachable ({_redact(str(exc) or reason, [probe.secret])})") from None


async def preflight(config: AppConfig, *, timeout_s: float = _TIMEOUT_S) -> int:
    """Check every configured model; raise ``PreflightFailed`` on the first that cannot be used.
    Returns how many requests were checked (0 for the simulator)."""
    checks = probes(config)
    if not checks:
        return 0
    import aiohttp

    listed: dict[str, set[str] | None] = {}
    timeout = aiohttp.ClientTimeout(total=timeout_s)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        for probe in checks:  # one at a time: a handful of requests, and the first failure is the one reported
            await _check(session, probe, listed)
    return len(checks)

