"""A minimal Azure-shaped aiohttp server on 127.0.0.1, and the fixtures the Azure backend's tests share.

``MiniAzure`` answers ``POST /openai/deployments/{deployment}/chat/completions?api-version=...``
when the ``api-key`` header is right, records every arrival with its time, and
answers the queued ``Reply``s in order (then ``default``).  The ``server`` and
``backend`` fixtures are imported by the test modules that use them.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web

from agents.llm import ChatMessage, ChatRequest
from reasonmed_async.config import BackendConfig
from reasonmed_async.llm.azure_openai import open_azure_backend

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
