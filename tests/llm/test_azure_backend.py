"""AzureBackend against a minimal Azure-shaped aiohttp server on 127.0.0.1 (defined here, no shared fixture)."""

from __future__ import annotations

import asyncio
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from clock_support import FakeClock
from agents.llm import (BadRequest, BadResponse, ChatMessage, ChatRequest, ConnectionLost, LLMTimeout, RateLimited,
                        ServerError)
from reasonmed_async.llm.azure_openai import AzureSettings, open_azure_backend
from reasonmed_async.config import BackendConfig, ConfigError
from reasonmed_async.llm.ratelimit import estimate_prompt_tokens

KEY = "az-SECRET-key-0123456789abcdef"
API_VERSION = "2024-10-21"


@dataclass
class Arrival:
    t: float
    deployment: str
    query: dict[str, str]
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Reply:
    """What the server answers to one request (default: a 200 completion)."""

    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: Any = None                    # None: a completion; a dict: that JSON; a str: that raw text
    reset: bool = False                 # drop the connection instead of answering
    delay_s: float = 0.0
    usage: tuple[int, int, int] = (11, 7, 3)   # prompt, completion, reasoning tokens


class MiniAzure:
    """``POST /openai/deployments/{deployment}/chat/completions?api-version=...`` with an ``api-key`` header."""

    def __init__(self) -> None:
        self.arrivals: list[Arrival] = []
        self.replies: deque[Reply] = deque()
        self.arrived = asyncio.Event()
        self.default = Reply()
        self._runner: web.AppRunner | None = None

    async def __aenter__(self) -> MiniAzure:
        app = web.Application()
        app.router.add_post("/openai/deployments/{deployment}/chat/completions", self._handle)
        self._runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.endpoint = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.arrivals.append(Arrival(time.monotonic(), request.match_info["deployment"], dict(request.query),
                                     dict(request.headers), body))
        self.arrived.set()
        reply = self.replies.popleft() if self.replies else self.default
        if request.headers.get("api-key") != KEY:
            return web.json_response({"error": {"code": "401", "message": "Access denied."}}, status=401)
        if reply.delay_s:
            await asyncio.sleep(reply.delay_s)
        if reply.reset:
            assert request.transport is not None
            request.transport.abort()
            return web.Response()
        if isinstance(reply.body, str):
            return web.Response(status=reply.status, text=reply.body, headers=reply.headers,
                                content_type="application/json")
        prompt, completion, reasoning = reply.usage
        text = f"answer from {request.match_info['deployment']}"
        payload = reply.body if reply.body is not None else {
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": body["model"],
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion,
                      "completion_tokens_details": {"reasoning_tokens": reasoning}}}
        return web.json_response(payload, status=reply.status, headers=reply.headers)


DEPLOYMENTS = {
    "gpt-4o": {"rpm": 6000, "tpm": 10_000_000},
    "o1-mini": {"rpm": 6000, "tpm": 10_000_000},
    "reasoner": {"rpm": 6000, "tpm": 10_000_000, "o1": True},
    "slow-rpm": {"rpm": 120, "tpm": 10_000_000, "burst_s": 0.5},       # capacity 1 request, 2 per second
}


@pytest.fixture
async def server():
    async with MiniAzure() as srv:
        yield srv


def options(srv: MiniAzure, **extra: Any) -> dict[str, Any]:
    return {"endpoint": srv.endpoint, "api_version": API_VERSION, "api_key_env": "AZ_TEST_KEY",
            "deployments": DEPLOYMENTS, **extra}


@pytest.fixture
async def backend(server):
    b = await open_azure_backend(BackendConfig("az", "azure", options(server)), env={"AZ_TEST_KEY": KEY})
    yield b
    await b.aclose()


def chat(model: str = "gpt-4o", **kw: Any) -> ChatRequest:
    kw.setdefault("messages", (ChatMessage("system", "You are a physician."), ChatMessage("user", "Question?")))
    return ChatRequest(model=model, **kw)


async def test_url_key_and_body_for_a_chat_deployment(server, backend):
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}, "required": ["answer"],
              "additionalProperties": False}
    c = await backend.complete(chat(temperature=0.7, top_p=0.9, seed=5, max_tokens=321, json_schema=schema))
    (a,) = server.arrivals
    assert a.deployment == "gpt-4o" and a.query == {"api-version": API_VERSION}
    assert a.headers["api-key"] == KEY and "Authorization" not in a.headers
    assert a.body["messages"] == [{"role": "system", "content": "You are a physician."},
                                  {"role": "user", "content": "Question?"}]
    assert (a.body["temperature"], a.body["top_p"], a.body["seed"], a.body["max_tokens"]) == (0.7, 0.9, 5, 321)
    assert "max_completion_tokens" not in a.body
    assert a.body["response_format"] == {"type": "json_schema",
                                         "json_schema": {"name": "answer", "schema": schema, "strict": True}}
    assert (c.text, c.finish_reason, c.prompt_tokens, c.completion_tokens, c.reasoning_tokens) == (
        "answer from gpt-4o", "stop", 11, 7, 3)
    assert (c.endpoint, c.backend) == ("azure:gpt-4o", "azure") and c.latency_s > 0


async def test_unset_sampling_is_not_sent(server, backend):
    await backend.complete(chat())
    body = server.arrivals[0].body
    assert not {"temperature", "top_p", "seed", "response_format"} & set(body)


@pytest.mark.parametrize("deployment", ["o1-mini", "reasoner"])       # by name prefix, by the o1 flag
async def test_o1_class_body(server, backend, deployment):
    messages = (ChatMessage("system", "Be brief."), ChatMessage("user", "Q1"), ChatMessage("assistant", "A1"),
                ChatMessage("user", "Fix it."))
    await backend.complete(chat(deployment, messages=messages, temperature=1.0, top_p=0.9, max_tokens=999))
    body = server.arrivals[0].body
    assert not {"temperature", "top_p", "max_tokens"} & set(body) and body["max_completion_tokens"] == 999
    assert body["messages"] == [{"role": "user", "content": "Be brief.\n\nQ1"},
                                {"role": "assistant", "content": "A1"}, {"role": "user", "content": "Fix it."}]


@pytest.mark.parametrize("headers, expected", [
    ({"Retry-After": "1"}, 1.0),
    ({"retry-after-ms": "250", "Retry-After": "1"}, 0.25),
    ({}, None),
])
async def test_429_raises_rate_limited_with_retry_after(server, backend, headers, expected):
    server.replies.append(Reply(429, headers, {"error": {"code": "429", "message": "Rate limit is exceeded."}}))
    with pytest.raises(RateLimited) as info:
        await backend.complete(chat())
    assert info.value.retry_after_s == expected and info.value.retryable
    assert len(server.arrivals) == 1                                   # the SDK did not retry
    assert backend.limiter("gpt-4o").cooldown.seconds_left(time.monotonic()) > 0


async def test_a_429_holds_back_every_task_on_the_deployment(server, backend):
    server.replies.append(Reply(429, {"retry-after-ms": "600"}, {"error": {"code": "429", "message": "slow down"}}))
    with pytest.raises(RateLimited):
        await backend.complete(chat())
    first = server.arrivals[0].t
    results = await asyncio.gather(*(backend.complete(chat()) for _ in range(6)))
    assert len(results) == 6
    assert min(a.t for a in server.arrivals[1:]) >= first + 0.6
    await backend.complete(chat("o1-mini"))                            # other deployments are not held back


def assert_spaced(times: list[float], gap_s: float) -> None:
    """Arrivals ``gap_s`` apart; the first one may be late by the SDK's connection set-up (unlimited: milliseconds)."""
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert gaps[0] >= gap_s * 0.6 and all(g >= gap_s * 0.9 for g in gaps[1:]), gaps
    assert times[-1] - times[1] >= (len(times) - 2) * gap_s - 0.05, gaps


async def test_request_bucket_spaces_arrivals(server, backend):
    await asyncio.gather(*(backend.complete(chat("slow-rpm")) for _ in range(5)))
    assert_spaced([a.t for a in server.arrivals], 0.5)                 # burst of 1, then 2 a second


async def test_token_bucket_spaces_arrivals_and_usage_settles(server):
    request = chat("tok", max_tokens=100)
    cost = estimate_prompt_tokens(request.messages) + 100
    deployments = {"tok": {"rpm": 6000, "tpm": cost * 120, "burst_s": 0.5}}     # one request's worth, ~2 per s
    server.default = Reply(usage=(cost - 100, 100, 0))                 # used all it reserved
    clock = FakeClock()
    admitted: list[float] = []
    b = await open_azure_backend(BackendConfig("az", "azure", options(server, deployments=deployments)),
                                 env={"AZ_TEST_KEY": KEY}, clock=clock, sleep=clock.sleep)
    limiter = b.limiter("tok")
    acquire = limiter.acquire

    async def admit(tokens: int):  # the moment (on the test's clock) each request is let go to the server
        reservation = await acquire(tokens)
        admitted.append(clock())
        return reservation

    limiter.acquire = admit  # type: ignore[method-assign]
    try:
        await asyncio.gather(*(b.complete(request) for _ in range(3)))
        assert len(admitted) == 3
        assert all(later - earlier >= 0.49 for earlier, later in zip(admitted, admitted[1:])), admitted
        server.default = Reply(usage=(1, 1, 0))                        # uses almost nothing: credited back
        clock.now += 0.5
        started = clock()
        for _ in range(3):
            await b.complete(request)
        assert clock() - started < 0.8                                 # uncredited: 3 requests need >= 1 s
    finally:
        await b.aclose()


async def test_remaining_headers_lower_the_buckets(server):
    deployments = {"metered": {"rpm": 600, "tpm": 60_000}}           # 10 requests, 1000 tokens a second
    server.replies.append(Reply(headers={"x-ratelimit-remaining-requests": "0",
                                         "x-ratelimit-remaining-tokens": "0"}))
    b = await open_azure_backend(BackendConfig("az", "azure", options(server, deployments=deployments)),
                                 env={"AZ_TEST_KEY": KEY})
    try:
        await b.complete(chat("metered", max_tokens=50))
        limiter, now = b.limiter("metered"), time.monotonic()
        assert limiter.requests.level(now) < 1 and limiter.tokens.level(now) < 100   # not the 100 / 10000 saved
        await b.complete(chat("metered", max_tokens=50))             # waits 0.1 s for a request unit
        assert server.arrivals[1].t - server.arrivals[0].t >= 0.09
    finally:
        await b.aclose()


def _walk(exc: BaseException | None):
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


@pytest.mark.parametrize("reply, error, status", [
    (Reply(500, body={"error": {"code": "InternalServerError", "message": "oops"}}), ServerError, 500),
    (Reply(503, body={"error": {"code": "ServiceUnavailable", "message": "busy"}}), ServerError, 503),
    (Reply(400, body={"error": {"code": "content_filter", "message": "The response was filtered",
                                "innererror": {"code": "ResponsibleAIPolicyViolation"}}}), BadRequest, 400),
    (Reply(404, body={"error": {"code": "DeploymentNotFound", "message": "no such deployment"}}), BadRequest, 404),
    (Reply(reset=True), ConnectionLost, None),
    (Reply(body={"id": "x", "object": "chat.completion", "created": 0, "model": "m",
                 "choices": [{"index": 0, "finish_reason": "content_filter",
                              "message": {"role": "assistant", "content": None}}]}), BadResponse, None),
    (Reply(body={"id": "x", "object": "chat.completion", "created": 0, "model": "m", "choices": []}),
     BadResponse, None),
    (Reply(body="{not json"), BadResponse, None),
])
async def test_error_mapping_and_no_key_anywhere(server, backend, reply, error, status):
    server.replies.append(reply)
    with pytest.raises(error) as info:
        await backend.complete(chat())
    assert len(server.arrivals) == 1
    if status is not None:
        assert info.value.status == status
    assert info.value.retryable == (error is not BadRequest)
    for exc in _walk(info.value):
        assert KEY not in str(exc) and KEY not in repr(exc)
    assert KEY not in repr(backend)


async def test_timeout_maps_to_llm_timeout(server):
    server.replies.append(Reply(delay_s=0.6))
    b = await open_azure_backend(BackendConfig("az", "azure", options(server, timeout_s=0.2)),
                                 env={"AZ_TEST_KEY": KEY})
    try:
        with pytest.raises(LLMTimeout) as info:
            await b.complete(chat())
        assert KEY not in str(info.value)
    finally:
        await b.aclose()


async def test_wrong_key_is_bad_request_401_and_an_echoed_key_is_redacted(server):
    b = await open_azure_backend(BackendConfig("az", "azure", options(server)), env={"AZ_TEST_KEY": "wrong-key"})
    try:
        with pytest.raises(BadRequest) as info:
            await b.complete(chat())
        assert info.value.status == 401 and "wrong-key" not in str(info.value)
    finally:
        await b.aclose()
    server.replies.append(Reply(400, body={"error": {"code": "bad", "message": f"key {KEY} rejected"}}))
    b = await open_azure_backend(BackendConfig("az", "azure", options(server)), env={"AZ_TEST_KEY": KEY})
    try:
        with pytest.raises(BadRequest) as info:
            await b.complete(chat())
        assert KEY not in str(info.value) and KEY not in repr(info.value) and "***" in str(info.value)
    finally:
        await b.aclose()


async def test_unknown_deployment_is_refused_without_a_request(server, backend):
    with pytest.raises(BadRequest, match="not-there"):
        await backend.complete(chat("not-there"))
    assert server.arrivals == []


async def test_cancel_while_held_back_propagates_and_sends_nothing(server, backend):
    backend.limiter("gpt-4o").on_429(30.0)
    task = asyncio.create_task(backend.complete(chat()))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert server.arrivals == []


async def test_cancel_in_flight_propagates(server, backend):
    server.replies.append(Reply(delay_s=0.3))
    task = asyncio.create_task(backend.complete(chat()))
    await asyncio.wait_for(server.arrived.wait(), 5.0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("opts, env, message", [
    ({"bogus": 1}, {"AZ_TEST_KEY": KEY}, "bogus"),
    ({"api_key_env": "AZ_MISSING"}, {}, "AZ_MISSING"),
    ({"api_key_env": "AZ_EMPTY"}, {"AZ_EMPTY": ""}, "AZ_EMPTY"),
    ({"deployments": {"d": {"rpm": 1, "tpm": 1, "max": 3}}}, {"AZ_TEST_KEY": KEY}, "max"),
    ({"deployments": {"d": {"rpm": 0, "tpm": 1}}}, {"AZ_TEST_KEY": KEY}, "rpm"),
    ({"deployments": {"d": {"rpm": 1, "tpm": 1, "o1": "yes"}}}, {"AZ_TEST_KEY": KEY}, "o1"),
    ({"deployments": {}}, {"AZ_TEST_KEY": KEY}, "deployments"),
    ({"timeout_s": -1}, {"AZ_TEST_KEY": KEY}, "timeout_s"),
    ({"api_version": None}, {"AZ_TEST_KEY": KEY}, "api_version"),
])
async def test_bad_options_are_config_errors_naming_the_key(opts, env, message):
    base = {"endpoint": "http://127.0.0.1:9", "api_version": API_VERSION, "api_key_env": "AZ_TEST_KEY",
            "deployments": DEPLOYMENTS}
    with pytest.raises(ConfigError, match=message) as info:
        await open_azure_backend(BackendConfig("az", "azure", {**base, **opts}), env=env)
    assert isinstance(info.value, ValueError) and KEY not in str(info.value) and "[backends.az]" in str(info.value)


def test_settings_defaults_and_o1_detection():
    s = AzureSettings.from_options({"endpoint": "e", "api_version": "v", "api_key_env": "K", "deployments": {
        "o3-mini": {"rpm": 1, "tpm": 2}, "O4-x": {"rpm": 1, "tpm": 2}, "gpt": {"rpm": 1, "tpm": 2},
        "o1-but-not": {"rpm": 1, "tpm": 2, "o1": False}}})
    assert s.timeout_s == 600.0 and s.deployments["gpt"].burst_s == 1.0
    assert {n: d.o1 for n, d in s.deployments.items()} == {"o3-mini": True, "O4-x": True, "gpt": False,
                                                           "o1-but-not": False}
