"""Single-flight on the cache key: identical calls in flight at the same moment reach a real server once."""

from __future__ import annotations

import asyncio
import pytest

from agents.llm import BadRequest, ChatMessage, ChatRequest
from fake_llm_server import FakeLLMServer, Faults
from reasonmed_async.llm.cache import CachedClient
from reasonmed_async.llm.openai_http import OpenAICompatBackend, OpenAISettings
from reasonmed_async.store.checkpoint import CheckpointStore

KEY = "test-key"


def verify_request(case: int = 0, **kw) -> ChatRequest:
    text = (f"Question: case {case}: a 54-year-old with crushing chest pain; which drug first?\n\n"
            "Options:\nA) aspirin\nB) insulin\nC) metformin")
    return ChatRequest(model="med-7b", messages=(ChatMessage("user", text),), temperature=0.7,
                       meta={"task": "generate"}, **kw)


async def _open(server: FakeLLMServer, tmp_path, key: str = KEY):
    backend = OpenAICompatBackend(OpenAISettings.from_options({"base_urls": [server.openai_url]}), api_key=key)
    store = await CheckpointStore.open(tmp_path / "x.db")
    return backend, store


async def test_two_identical_concurrent_calls_reach_the_server_once(tmp_path):
    async with FakeLLMServer(Faults(latency_s=0.05)) as server:
        backend, store = await _open(server, tmp_path)
        try:
            client = CachedClient(backend, store)
            a, b = await asyncio.gather(client.complete(verify_request()), client.complete(verify_request()))
            assert len(server.requests) == 1
            assert a.text == b.text and a.text
            assert sorted([a.cached, b.cached]) == [False, True]  # one call made, one answer shared
            assert (client.misses, client.shared) == (1, 1)
            # different requests at the same moment are not merged
            c, d = await asyncio.gather(client.complete(verify_request(1)), client.complete(verify_request(1, sample=1)))
            assert len(server.requests) == 3 and not c.cached and not d.cached
            await store.settle()
            calls = await store.query("SELECT SUM(calls) FROM calls WHERE outcome='ok'")
            assert calls == [(3,)]
        finally:
            await store.close()
            await backend.aclose()


async def test_a_final_error_is_shared_and_nothing_is_cached(tmp_path):
    async with FakeLLMServer() as server:
        backend, store = await _open(server, tmp_path, key="sk-revoked-key")  # the server answers 401
        try:
            client = CachedClient(backend, store)
            bad = verify_request()
            results = await asyncio.gather(client.complete(bad), client.complete(bad), return_exceptions=True)
            assert len(server.requests) == 1
            assert all(isinstance(r, BadRequest) for r in results)
            assert await store.cache_get(bad.cache_key()) is None
        finally:
            await store.close()
            await backend.aclose()


async def test_a_cancelled_call_hands_over_to_the_waiting_one(tmp_path):
    async with FakeLLMServer(Faults(latency_s=0.3)) as server:
        backend, store = await _open(server, tmp_path)
        try:
            client = CachedClient(backend, store)
            leader = asyncio.create_task(client.complete(verify_request()))
            follower = asyncio.create_task(client.complete(verify_request()))
            while not server.requests:  # the leader's request has reached the server
                await asyncio.sleep(0.01)
            leader.cancel()
            with pytest.raises(asyncio.CancelledError):
                await leader
            done = await follower
            assert not done.cached and done.text  # the follower made the call itself
            assert len(server.requests) == 2 and client.misses == 2
        finally:
            await store.close()
            await backend.aclose()
