"""A fake OpenAI + Azure chat-completions server (aiohttp on 127.0.0.1): the real wire format, seeded faults
(``Faults``, ``RequestRecord``: fake_faults.py).

``async with FakeLLMServer(faults=Faults(...), api_key="test-key") as server:`` serves
``{server.openai_url}/chat/completions`` (Bearer key, body ``model``) and ``{server.azure_endpoint}
/openai/deployments/{d}/chat/completions?api-version=`` (``api-key``); ``server.requests`` records
every request; ``server.early_requests`` counts those that came for a model/deployment while a
Retry-After it had sent was running: the refused request itself again (its retry: sent after the 429 was
read, however soon), on the 429's own connection (HTTP/1.1: sent after it was read), or on another one
``early_grace_s`` or more after it (sooner, it may have been on the wire already);
``server.hold_from = n`` holds every chat request after the n-th until ``server.released`` is set;
``server.api_key = "new"`` rotates the key (``also_accepted``: keys accepted meanwhile; ``bearer_check``:
Entra ID tokens instead, ``token -> None | why refused``); ``await server.kill()`` drops every connection and stops listening; ``server.fail_status = 503`` makes every
chat request fail on demand (``/health`` still answers 200, as a wedged vLLM's does).  ``server.script``, if set,
is asked first about every valid request: ``script(record, body, seen)`` returns None (answer normally) or
``(status, text, headers)``: an error with that message, or for 200 an answer whose content is ``text``.  Answers come from reading the
prompt: judge JSON, a summary, or a six-step CoT ending ``Final answer: X``.
``sampling=True`` (``--sampling``) words each answer anew as a sampling model does (``fake_sampler``).
Standalone: ``python tests/fake_llm_server.py --port 8000 [--sampling] [--fault latency_s=0.5 ...]``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import fields
from typing import Any

from aiohttp import web
from fake_answers import answer, draw_of, pick, tokens  # noqa: F401 - answer, tokens: imported from here too
from fake_faults import Faults, RequestRecord  # noqa: F401 - imported from here too


_MALFORMED = "Having read it carefully, I believe the reasoning is broadly sound, though I cannot be sure."


class FakeLLMServer:
    def __init__(self, faults: Faults | None = None, *, api_key: str | None = "test-key", port: int = 0,
                 early_grace_s: float = 0.1, same_connection_early: bool = True,
                 served_models: tuple[str, ...] = (), sampling: bool = False) -> None:
        self.faults = faults or Faults()
        self.sampling = sampling  # word answers as a sampler does (fake_sampler): unseeded above temperature 0, anew
        self.served_models = served_models  # listed by GET /v1/models; others get 404 (as vLLM); empty: any
        self.api_key = api_key  # None: any key, or none, is accepted; switch it mid-run to rotate the key
        self.also_accepted: frozenset[str] = frozenset()  # during a rotation: keys accepted besides api_key
        self.bearer_check: Callable[[str | None], str | None] | None = None  # Entra: token -> None or why refused
        self.hold_from: int | None = None  # chat requests from this many on wait for `released` (a paused server)
        self.released = asyncio.Event()
        self.held = 0
        self.port = port
        self.early_grace_s = early_grace_s
        # False: a request on the 429's own connection gets the same grace as any other. A client may
        # have admitted it while the 429 was arriving (aiohttp hands the connection back on EOF, before
        # the caller has read the status): only a full application can close that race.
        self.same_connection_early = same_connection_early
        self.base_url = ""
        self.fail_status: int | None = None  # set (e.g. 503): every chat request answers it, /health stays 200
        self.requests: list[RequestRecord] = []
        self.answered = 0  # chat requests answered 200 with a completion
        self.rate_limits_sent: dict[str, list[tuple[float, float, object, str]]] = defaultdict(list)  # (sent, until, conn, body)
        self.early_by_key: dict[str, int] = defaultdict(int)
        self._seen: dict[str, int] = defaultdict(int)
        self._window: dict[str, deque[tuple[float, int]]] = defaultdict(deque)
        self._runner: web.AppRunner | None = None
        self.script: Callable[[RequestRecord, dict[str, Any], int], tuple[int, str, dict[str, str]] | None] | None = None

    early_requests = property(lambda self: sum(self.early_by_key.values()))
    openai_url = property(lambda self: self.base_url + "/v1")
    azure_endpoint = property(lambda self: self.base_url)

    async def start(self) -> FakeLLMServer:
        app = web.Application()
        app.router.add_post("/v1/chat/completions", self._openai)
        app.router.add_get("/health", self._health)  # vLLM's (routers probe it)
        app.router.add_get("/v1/models", self._models)
        app.router.add_get("/fake/stats", self._stats)  # the fake's own count, for benchmarks
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._azure)
        self._runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=2.0, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        self.port = self._runner.addresses[0][1]
        self.base_url = f"http://127.0.0.1:{self.port}"
        return self

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def kill(self) -> None:
        """Stop listening and drop every connection at once, answers in flight included."""
        for site in list(self._runner.sites if self._runner else []):
            await site.stop()
        for conn in self._runner.server.connections if self._runner and self._runner.server else []:
            conn.force_close()
        await self.stop()

    __aenter__ = start

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _health(self, request: web.Request) -> web.StreamResponse:
        return web.Response(status=200)

    async def _stats(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"requests": len(self.requests), "answered": self.answered})

    async def _openai(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        return await self._handle(request, auth[7:] if auth.startswith("Bearer ") else None, None)

    async def _models(self, request: web.Request) -> web.StreamResponse:
        auth = request.headers.get("Authorization", "")
        record = RequestRecord(time.monotonic(), request.path, "", {}, headers=dict(request.headers))
        self.requests.append(record)
        if not self._accepts(auth[7:] if auth.startswith("Bearer ") else None):
            return self._error(record, 401, f"Incorrect API key provided: {auth[7:]}.", "invalid_api_key")
        record.status = 200
        return web.json_response({"object": "list", "data": [{"id": m, "object": "model", "owned_by": "fake"}
                                                             for m in self.served_models]})

    async def _azure(self, request: web.Request) -> web.StreamResponse:
        if self.bearer_check is not None:  # Entra ID: Authorization: Bearer <token>, no api-key
            auth = request.headers.get("Authorization", "")
            refused = self.bearer_check(auth[7:] if auth.startswith("Bearer ") else None)
            if refused is not None:
                record = RequestRecord(time.monotonic(), request.path, request.match_info["deployment"], {},
                                       headers=dict(request.headers))
                self.requests.append(record)
                return self._error(record, 401, refused, "invalid_token")
            return await self._handle(request, None, request.match_info["deployment"], authorised=True)
        return await self._handle(request, request.headers.get("api-key"), request.match_info["deployment"])

    def _accepts(self, key_given: str | None) -> bool:
        return self.api_key is None or key_given == self.api_key or key_given in self.also_accepted

    async def _handle(self, request: web.Request, key_given: str | None, deployment: str | None, *,
                      authorised: bool = False) -> web.StreamResponse:
        now = time.monotonic()
        record = RequestRecord(now, request.path, deployment or "", {}, headers=dict(request.headers))
        self.requests.append(record)
        if self.hold_from is not None and len(self.requests) > self.hold_from and not self.released.is_set():
            self.held += 1  # answered (or refused) as the server stands once released
            await self.released.wait()
        if self.fail_status is not None:  # failing on demand (an overloaded or broken replica behind a router)
            return self._error(record, self.fail_status, "The server is overloaded, try again later.", None)
        if not authorised and not self._accepts(key_given):
            return self._error(record, 401, f"Incorrect API key provided: {key_given}.", "invalid_api_key")
        if deployment is not None and "api-version" not in request.query:
            return self._error(record, 400, "Missing required query parameter: api-version", "missing_api_version")
        try:
            body = await request.json()
        except ValueError:
            body = None
        valid = isinstance(body, dict) and isinstance(body.get("messages"), list)
        if not valid or not (deployment or body.get("model")):
            return self._error(record, 400, "The body must be a JSON object with messages and a model.", None)
        record.body, record.model_or_deployment = body, (key := deployment or str(body["model"]))
        if self.served_models and deployment is None and key not in self.served_models:
            return self._error(record, 404, f"The model `{key}` does not exist.", "model_not_found")
        body_key = json.dumps(body, sort_keys=True)
        if any(now < until and (refused == body_key or now >= at + self.early_grace_s
                                or (self.same_connection_early and conn is request.protocol))
               for at, until, conn, refused in self.rate_limits_sent.get(key, [])):
            self.early_by_key[key] += 1
        prompt = "\n".join(str(m.get("content", "")) for m in body["messages"] if isinstance(m, dict))
        record.prompt_tokens = tokens(prompt)
        limit = int(body.get("max_completion_tokens") or body.get("max_tokens") or 0)
        wait = self._over_limits(key, now, record.prompt_tokens + limit)
        seen, self._seen[body_key] = self._seen[body_key], self._seen[body_key] + 1

        scripted = self.script(record, body, seen) if self.script is not None else None
        if scripted is not None:
            status, text, headers = scripted
            if status != 200:
                return self._error(record, status, text, None, headers)
            return self._answer(record, body, malformed=False, cut=False, text=text, draw=(body_key, seen))

        def roll(name: str) -> bool:
            rate = getattr(self.faults, name)
            return rate > 0 and pick(self.faults.seed, body_key, seen, name) % 1_000_000 < rate * 1_000_000

        if wait is not None or roll("rate_429"):
            wait = self.faults.retry_after_s if wait is None else wait
            self.rate_limits_sent[key].append((now, now + wait, request.protocol, body_key))
            record.retry_after_s = wait
            headers = {"Retry-After": str(max(1, -int(-wait // 1))), "retry-after-ms": str(int(wait * 1000))}
            return self._error(record, 429, f"Rate limit exceeded. Retry after {wait:.3f} seconds.", "429", headers)
        if self.faults.rate_400 > 0 and pick(self.faults.seed, body_key, "rate_400") % 1_000_000 < (
                self.faults.rate_400 * 1_000_000):
            return self._error(record, 400, "This model's maximum context length is 8192 tokens.",
                               "context_length_exceeded")
        if roll("rate_500"):
            return self._error(record, 500, "The server had an error while processing your request.", None)
        if roll("rate_reset"):
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError  # the connection is gone: nothing is written
        delay = self.faults.latency_s + (self.faults.slow_s if roll("slow_rate") else 0.0)
        if delay > 0:
            await asyncio.sleep(delay)
        return self._answer(record, body, malformed=roll("malformed_rate"), cut=roll("length_rate"), draw=(body_key, seen))

    def _answer(self, record: RequestRecord, body: dict[str, Any], *, malformed: bool, cut: bool,
                draw: tuple[str, int], text: str | None = None) -> web.Response:
        users = [str(m.get("content", "")) for m in body["messages"] if isinstance(m, dict) and m.get("role") == "user"]
        limit = body.get("max_completion_tokens") or body.get("max_tokens")
        choices = []
        for i in range(int(body.get("n") or 1)):
            kind, said = answer(users[-1] if users else "", index=i, seed=body.get("seed"),
                                draw=draw_of(body, *draw, i) if self.sampling else None)
            said = _MALFORMED if malformed and kind == "judge" else said if text is None else text
            keep = min(len(said) * 2 // 5 if cut else len(said), int(limit) * 4 if limit else len(said))
            message = {"role": "assistant", "content": said[: max(1, keep)]}
            choices.append({"index": i, "message": message, "finish_reason": "length" if keep < len(said) else "stop"})
        record.completion_tokens = sum(tokens(c["message"]["content"]) for c in choices)
        record.status = 200
        self.answered += 1
        usage = {"prompt_tokens": record.prompt_tokens, "completion_tokens": record.completion_tokens, "total_tokens":
                 record.prompt_tokens + record.completion_tokens, "completion_tokens_details": {"reasoning_tokens": 0}}
        data = {"id": f"chatcmpl-{len(self.requests)}", "object": "chat.completion", "created": int(time.time()),
                "model": record.model_or_deployment, "choices": choices, "usage": usage}
        return web.json_response(data, headers=self._headers(record))

    def _error(self, record: RequestRecord, status: int, message: str, code: str | None,
               headers: dict[str, str] | None = None) -> web.Response:
        record.status = status
        kind = "rate_limit_error" if status == 429 else "server_error" if status >= 500 else "invalid_request_error"
        body = {"error": {"message": message, "type": kind, "param": None, "code": code}}
        return web.json_response(body, status=status, headers={**self._headers(record), **(headers or {})})

    def _headers(self, record: RequestRecord) -> dict[str, str]:
        window, f = self._window.get(record.model_or_deployment, ()), self.faults
        left = {"requests": None if f.rpm is None else f.rpm - len(window),
                "tokens": None if f.tpm is None else f.tpm - sum(t for _, t in window)}
        return {"x-request-id": f"req-{len(self.requests)}",
                **{f"x-ratelimit-remaining-{k}": str(max(0, v)) for k, v in left.items() if v is not None}}

    def _over_limits(self, key: str, now: float, cost: int) -> float | None:
        """Seconds until the window admits this request; None (and the request is counted) if it does now."""
        window, f = self._window[key], self.faults
        while window and window[0][0] <= now - f.window_s:
            window.popleft()
        used = sum(t for _, t in window)
        if (f.rpm is not None and len(window) >= f.rpm) or (f.tpm is not None and used + cost > f.tpm):
            return (window[0][0] + f.window_s - now) if window else f.window_s
        if f.rpm is not None or f.tpm is not None:
            window.append((now, cost))
        return None


async def _serve(port: int, api_key: str | None, faults: Faults, sampling: bool) -> None:
    async with FakeLLMServer(faults, api_key=api_key, port=port, sampling=sampling) as server:
        print(f"fake LLM server: {server.openai_url} (Azure endpoint {server.azure_endpoint})", flush=True)
        await asyncio.Event().wait()  # serve until Ctrl-C


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI + Azure chat-completions server.")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--api-key", default=None, help="require this key (default: accept any)")
    parser.add_argument("--fault", action="append", default=[], metavar="NAME=VALUE",
                        help=f"a Faults field: {', '.join(f.name for f in fields(Faults))}")
    parser.add_argument("--sampling", action="store_true",
                        help="word each answer anew, as a sampling model does (unseeded, temperature > 0)")
    args = parser.parse_args(argv)
    kinds = {f.name: (int if f.name in ("seed", "rpm", "tpm") else float) for f in fields(Faults)}
    faults = Faults(**{k: kinds[k](v) for k, v in (item.split("=", 1) for item in args.fault)})
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve(args.port, args.api_key, faults, args.sampling))


if __name__ == "__main__":
    main()
