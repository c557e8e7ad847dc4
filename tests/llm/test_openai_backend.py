"""The OpenAI-compatible backend against the fake server: the body it sends, what it parses, each fault's
LLMError, replicas (fast/slow, killed, ejected and re-admitted), Retry-After honoured; wire helpers by table."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from agents.llm import (BadRequest, BadResponse, ChatMessage, ChatRequest, ConnectionLost, LLMTimeout, RateLimited,
                        ServerError)
from agents.prompts import VERDICT_SCHEMA
from bus import Backoff
from fake_llm_server import FakeLLMServer, Faults
from reasonmed_async.config import BackendConfig, ConfigError
from reasonmed_async.llm.openai_http import OpenAICompatBackend, OpenAISettings, open_openai_backend
from reasonmed_async.llm.retry import RetryingClient, RetryPolicy
from reasonmed_async.llm.wire import error_for_status, parse_completion, retry_after_s

KEY = "test-key"


def question(i: int = 0, **kw: Any) -> ChatRequest:
    text = f"Question: case {i}: which drug?\n\nOptions:\nA) aspirin\nB) insulin\nC) metformin"
    return ChatRequest(model="med-7b", messages=(ChatMessage("user", text),), **kw)


@asynccontextmanager
async def backend(*urls: str, key: str = KEY, **options: Any) -> AsyncIterator[OpenAICompatBackend]:
    b = OpenAICompatBackend(OpenAISettings.from_options({"base_urls": list(urls), **options}), api_key=key)
    try:
        yield b
    finally:
        await b.aclose()


# --------------------------------------------------------------------------- what goes on the wire


async def test_body_headers_and_parsed_completion() -> None:
    async with FakeLLMServer() as server, backend(server.openai_url) as b:
        req = question(top_p=0.9, seed=7, max_tokens=300, json_schema=VERDICT_SCHEMA, meta={"task": "verify", "gold": "C"})
        done = await b.complete(req)
        record = server.requests[0]
        assert record.path == "/v1/chat/completions" and record.headers["Authorization"] == f"Bearer {KEY}"
        assert record.body == {
            "model": "med-7b", "messages": [{"role": "user", "content": req.messages[0].content}],
            "max_tokens": 300, "top_p": 0.9, "seed": 7,
            "response_format": {"type": "json_schema",
                                "json_schema": {"name": "answer", "schema": VERDICT_SCHEMA, "strict": True}},
        }  # no temperature (None), no meta, no n
        assert done.text.endswith("Final answer: " + done.text[-1]) and done.finish_reason == "stop"
        assert (done.prompt_tokens, done.completion_tokens) == (record.prompt_tokens, record.completion_tokens) > (0, 0)
        assert done.endpoint == server.openai_url and done.backend == "openai" and done.latency_s > 0
        assert done.reasoning_tokens == 0 and done.more == ()


async def test_no_structured_output_and_n_choices() -> None:
    async with FakeLLMServer() as server, backend(server.openai_url, structured_output="none") as b:
        done = await b.complete(question(temperature=0.7, n=3, json_schema=VERDICT_SCHEMA))
        body = server.requests[0].body
        assert "response_format" not in body and body["n"] == 3 and body["temperature"] == 0.7
        assert len(done.choices) == 3 and all(c.text.startswith("1. Restate") for c in done.choices)


async def test_length_cut_is_reported() -> None:
    async with FakeLLMServer(Faults(length_rate=1.0)) as server, backend(server.openai_url) as b:
        done = await b.complete(question())
        assert done.truncated and "Final answer" not in done.text


# --------------------------------------------------------------------------- faults → LLMError


@pytest.mark.parametrize(("faults", "options", "error", "check"), [
    pytest.param(Faults(rate_429=1.0, retry_after_s=2.5), {}, RateLimited, lambda e: e.retry_after_s == 2.5, id="429"),
    pytest.param(Faults(rate_500=1.0), {}, ServerError, lambda e: e.status == 500 and "had an error" in str(e), id="500"),
    pytest.param(Faults(rate_reset=1.0), {}, ConnectionLost, lambda e: True, id="reset"),
    pytest.param(Faults(slow_rate=1.0, slow_s=5.0), {"timeout_s": 0.2}, LLMTimeout, lambda e: True, id="slow"),
])
async def test_fault_maps_to_llm_error(faults: Faults, options: dict, error: type, check: Any) -> None:
    async with FakeLLMServer(faults) as server, backend(server.openai_url, **options) as b:
        with pytest.raises(error) as caught:
            await b.complete(question())
        assert check(caught.value), caught.value


async def test_wrong_key_is_bad_request_and_never_shown() -> None:
    secret = "sk-wrong-secret-0123456789"
    async with FakeLLMServer() as server, backend(server.openai_url, key=secret) as b:
        with pytest.raises(BadRequest) as caught:
            await b.complete(question())
        assert caught.value.status == 401 and not caught.value.retryable
        assert "Incorrect API key provided" in str(caught.value)  # the server echoed the key...
        assert secret in str(server.requests[0].headers) and secret not in str(caught.value)  # ...we scrubbed it
        assert secret not in repr(b)


async def test_options_and_open_from_config(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ValueError, match="bogus"):
        OpenAISettings.from_options({"base_url": "http://x/v1", "bogus": 1})
    for bad in ({}, {"base_url": "http://x", "base_urls": ["http://y"]}, {"base_url": "ftp://x"},
                {"base_url": "http://x", "structured_output": "xml"}, {"base_url": "http://x", "max_concurrency": 0}):
        with pytest.raises(ValueError):
            OpenAISettings.from_options(bad)
    config = BackendConfig("local", "openai", {"base_url": "http://127.0.0.1:9/v1", "api_key_env": "FAKE_LLM_KEY"})
    monkeypatch.delenv("FAKE_LLM_KEY", raising=False)
    with pytest.raises(ConfigError, match="FAKE_LLM_KEY"):
        await open_openai_backend(config)
    async with FakeLLMServer() as server:
        monkeypatch.setenv("FAKE_LLM_KEY", KEY)
        b = await open_openai_backend(BackendConfig("local", "openai", {**config.options, "base_url": server.openai_url}))
        try:
            assert (await b.complete(question())).text
        finally:
            await b.aclose()


# --------------------------------------------------------------------------- replicas


async def test_traffic_shifts_to_the_fast_replica() -> None:
    async with FakeLLMServer(Faults(latency_s=0.2)) as slow, FakeLLMServer() as fast:
        async with backend(slow.openai_url, fast.openai_url) as b:
            await asyncio.gather(*(b.complete(question(i)) for i in range(200)))
        assert len(slow.requests) + len(fast.requests) == 200
        assert len(fast.requests) >= 140, (len(fast.requests), len(slow.requests))


async def test_killed_replica_loses_nothing_and_is_ejected() -> None:
    async with FakeLLMServer(Faults(latency_s=0.02)) as doomed, FakeLLMServer(Faults(latency_s=0.02)) as survivor:
        async with backend(doomed.openai_url, survivor.openai_url, cooloff_s=60.0) as b:
            client = RetryingClient(b, Backoff(attempts=6, base_s=0.01, cap_s=0.1))
            halfway = asyncio.Event()
            done: list[str] = []

            async def one(i: int) -> None:
                done.append((await client.complete(question(i))).text)
                if len(done) == 50:
                    halfway.set()

            async with asyncio.TaskGroup() as tasks:
                for i in range(200):
                    tasks.create_task(one(i))
                await halfway.wait()
                served_before = len(doomed.requests)
                await doomed.kill()
            stats = {s["url"]: s for s in b.replica_stats()}
        assert len(done) == 200 and all("Final answer" in text for text in done)
        assert stats[doomed.openai_url]["ejected"] and stats[doomed.openai_url]["ejections"] == 1
        assert not stats[survivor.openai_url]["ejected"]
        assert 0 < served_before and len(survivor.requests) > 100


async def test_all_ejected_waits_for_the_probe_then_fails_or_recovers() -> None:
    server = await FakeLLMServer().start()
    port = server.port
    await server.kill()
    async with backend(f"http://127.0.0.1:{port}/v1", eject_after=1, cooloff_s=0.3, timeout_s=0.2,
                       eject_last=True) as b:
        with pytest.raises(ConnectionLost):
            await b.complete(question())  # refused: ejected for 0.3 s
        started = time.monotonic()
        with pytest.raises(ConnectionLost, match="ejected"):
            await b.complete(question())  # waits its 0.2 s timeout for a replica: none comes back
        assert time.monotonic() - started >= 0.19
        async with FakeLLMServer(port=port):  # the replica comes back on the same port
            assert (await b.complete(question())).text  # waits for the probe time, probes, is re-admitted
        assert b.replica_stats()[0]["ejected"] is False and b.replica_stats()[0]["ejections"] == 1


async def test_callers_wait_for_capacity_and_cancelled_ones_free_their_slot() -> None:
    async with FakeLLMServer(Faults(latency_s=0.05)) as server:
        async with backend(server.openai_url, max_concurrency=1, adaptive=False) as b:
            await asyncio.gather(*(b.complete(question(i)) for i in range(4)))
            arrivals = [r.t_monotonic for r in server.requests]
            assert all(later - earlier >= 0.045 for earlier, later in zip(arrivals, arrivals[1:]))  # one at a time
            stuck = asyncio.create_task(b.complete(question(9, max_tokens=7)))
            queued = asyncio.create_task(b.complete(question(10)))
            await asyncio.sleep(0.02)
            assert b.replica_stats()[0]["outstanding"] == 1
            stuck.cancel()
            with pytest.raises(asyncio.CancelledError):
                await stuck
            assert (await queued).text  # admitted once the cancelled one let go of the slot
            assert b.replica_stats()[0]["outstanding"] == 0


# --------------------------------------------------------------------------- Retry-After


async def test_retry_after_is_honoured_so_no_request_comes_early() -> None:
    async with FakeLLMServer(Faults(rate_429=0.2, retry_after_s=0.3)) as server:
        async with backend(server.openai_url, max_concurrency=8) as b:
            client = RetryingClient(b, Backoff(attempts=12, base_s=0.01, cap_s=0.05))
            done = await asyncio.gather(*(client.complete(question(i)) for i in range(100)))
        assert len(done) == 100 and sum(len(v) for v in server.rate_limits_sent.values()) >= 10
        assert server.early_requests == 0


async def test_retry_after_of_a_day_is_capped_at_max_wait_s() -> None:
    """``Retry-After: 86400``: the client waits ``[retry] max_wait_s`` (an injected sleep records it), the
    replica's own pause is capped the same, and the request then succeeds: a day is never waited."""
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        waits.append(seconds)
        await asyncio.sleep(min(seconds, 0.3))  # real time only as long as the capped pause

    def once_a_day(record, body, seen):
        return (429, "Rate limit exceeded.", {"Retry-After": "86400"}) if seen == 0 else None

    async with FakeLLMServer() as server:
        server.script = once_a_day
        async with backend(server.openai_url) as b:
            b.max_wait_s = 0.3
            client = RetryingClient(b, Backoff(attempts=3, base_s=0.01, cap_s=0.05),
                                    policy=RetryPolicy(attempts=3, base_s=0.01, cap_s=0.05, max_wait_s=0.3),
                                    sleep=sleep)
            assert (await client.complete(question())).text
    assert [r.status for r in server.requests] == [429, 200]
    assert waits == [0.3]


async def test_the_fake_counts_early_requests() -> None:
    """A client that retries a 429 at once is caught; the Azure URL shape and its key header work too."""
    async with FakeLLMServer(Faults(rate_429=1.0, retry_after_s=1.0, rpm=5)) as server, aiohttp.ClientSession() as s:
        url = f"{server.azure_endpoint}/openai/deployments/gpt-4o/chat/completions"
        body = {"messages": [{"role": "user", "content": "Question: hi?\nA) x\nB) y"}]}
        async with s.post(url, json=body, headers={"api-key": KEY}) as r:
            assert r.status == 400  # no api-version
        remaining = []
        for _ in range(3):  # at once, on the same keep-alive connection: early however soon
            async with s.post(url, params={"api-version": "2024-10-21"}, json=body, headers={"api-key": KEY}) as r:
                assert r.status == 429 and r.headers["retry-after-ms"] == "1000" and r.headers["Retry-After"] == "1"
                remaining.append(r.headers["x-ratelimit-remaining-requests"])
        assert remaining == ["4", "3", "2"]
        assert server.early_by_key == {"gpt-4o": 2}
        assert [r.model_or_deployment for r in server.requests] == ["gpt-4o"] * 4
        server.early_grace_s = 60.0  # each on a new connection, at once: only a retry of the refused body is early
        for sent in ({"messages": [{"role": "user", "content": "Question: another?\nA) x\nB) y"}]}, body):
            async with aiohttp.ClientSession() as other, other.post(
                    url, params={"api-version": "2024-10-21"}, json=sent, headers={"api-key": KEY}) as r:
                assert r.status == 429
        assert server.early_by_key == {"gpt-4o": 3}


# --------------------------------------------------------------------------- wire helpers (pure)

NOW = 1_700_000_000.0


@pytest.mark.parametrize(("headers", "expected"), [
    ({"retry-after-ms": "1500", "retry-after": "9"}, 1.5),
    ({"retry-after": "3"}, 3.0),
    ({"retry-after": "Tue, 14 Nov 2023 22:13:40 GMT"}, 20.0),
    ({"retry-after": "soon"}, None),
    ({}, None),
])
def test_retry_after(headers: dict[str, str], expected: float | None) -> None:
    assert retry_after_s(headers, now=NOW) == expected


@pytest.mark.parametrize(("status", "body", "error", "text"), [
    (429, b'{"error": {"message": "slow down", "code": "429"}}', RateLimited, "slow down (code 429)"),
    (503, b'{"object": "error", "message": "engine overloaded", "code": 503}', ServerError, "engine overloaded"),
    (400, b'{"error": {"message": "filtered", "code": "content_filter"}}', BadRequest, "content_filter"),
    (404, b"<html>not found</html>", BadRequest, "<html>not found</html>"),
    (401, b'{"error": {"message": "Incorrect API key provided: sk-abc"}}', BadRequest, "provided: ***"),
    (408, b"request timeout", LLMTimeout, "request timeout"),
    (500, b"x" * 295 + b"sk-abc" * 3, ServerError, "HTTP 500: xxx"),  # the key masked before the message is clipped
])
def test_error_for_status(status: int, body: bytes, error: type, text: str) -> None:
    got = error_for_status(status, {"x-request-id": "r1"}, body, where="http://h/v1", secrets=["sk-abc"])
    assert type(got) is error and text in str(got) and "[request r1]" in str(got)
    assert "sk-abc" not in str(got) and "sk-a" not in str(got)


@pytest.mark.parametrize("data", [
    [], {}, {"choices": []}, {"choices": [{"message": None}]}, {"choices": [{"message": {"content": None}}]},
    {"choices": [{"message": {"content": None, "refusal": "no"}, "finish_reason": "content_filter"}]},
])
def test_unusable_answers_are_bad_responses(data: Any) -> None:
    with pytest.raises(BadResponse):
        parse_completion(data, latency_s=0.1, endpoint="http://h/v1", backend="openai")


def test_choices_come_in_index_order_without_usage() -> None:
    data = {"choices": [{"index": 1, "message": {"content": "b"}, "finish_reason": "length"},
                        {"index": 0, "message": {"content": "a"}}]}
    done = parse_completion(data, latency_s=0.1, endpoint="e", backend="openai")
    assert [(c.text, c.finish_reason) for c in done.choices] == [("a", "stop"), ("b", "length")]
    assert (done.prompt_tokens, done.completion_tokens, done.reasoning_tokens) == (0, 0, 0)
