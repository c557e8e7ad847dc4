"""The LLM response cache (``CachedClient``) over a real SQLite store: hits, misses, what is never cached,
and its accounting under retries."""

from __future__ import annotations

import pytest
from msgspec.structs import replace

from agents.llm import ChatMessage, Choice, Completion, RateLimited, ServerError
from bus import Backoff
from inner_llm_support import NO_WAIT, FakeLLM, request
from reasonmed_async.llm.cache import CachedClient, FailedAttempts
from reasonmed_async.llm.retry import RetryingClient
from reasonmed_async.store.checkpoint import CheckpointStore


async def test_cached_client_second_identical_request_is_a_hit(tmp_path):
    path = tmp_path / "x.db"
    inner = FakeLLM()
    async with await CheckpointStore.open(path) as store:
        client = CachedClient(inner, store)
        first = await client.complete(request())
        assert first.cached is False
        # its cache entry is a write-behind: until committed, an identical request is answered from the flight
        shared = await client.complete(request())
        await store.settle()
        second = await client.complete(request())
        assert shared.cached is second.cached is True
        assert replace(second, cached=False) == first == replace(shared, cached=False)
        assert len(inner.calls) == 1
        assert (client.hits, client.misses, client.shared) == (1, 1, 1)
        # meta is not part of the key
        third = await client.complete(replace(request(), meta={"task": "generate", "gold": "B"}))
        assert third.cached and len(inner.calls) == 1
        await store.settle()
        calls = await store.query("SELECT stage, model, endpoint, outcome, calls, prompt_tokens, completion_tokens"
                                  " FROM calls ORDER BY outcome")
        # the hits are counted (status: cache hits), never as tokens paid
        assert calls == [("generate", "m-1", "http://fake", "cached", 2, 0, 0),
                         ("generate", "m-1", "http://fake", "ok", 1, 12, 5)]
    # the cache is durable: a fresh client over the reopened store pays nothing
    async with await CheckpointStore.open(path) as store:
        client = CachedClient(inner, store)
        again = await client.complete(request())
        assert again.cached and again.text == first.text
        assert len(inner.calls) == 1


MISSES = [
    pytest.param({"sample": 1}, id="sample-index"),
    pytest.param({"temperature": 0.9}, id="temperature"),
    pytest.param({"top_p": 0.5}, id="top_p"),
    pytest.param({"max_tokens": 2048}, id="max_tokens"),
    pytest.param({"seed": 42}, id="seed"),
    pytest.param({"model": "m-2"}, id="model"),
    pytest.param({"messages": (ChatMessage("system", "be brief"), ChatMessage("user", "What makes insulin?"))},
                 id="messages"),
    pytest.param({"json_schema": {"type": "object"}}, id="json-schema"),
    pytest.param({"n": 2}, id="n"),
]


@pytest.mark.parametrize("change", MISSES)
async def test_cached_client_different_request_is_a_miss(tmp_path, change):
    inner = FakeLLM()
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        client = CachedClient(inner, store)
        base = request()
        other = replace(base, **change)
        assert other.cache_key() != base.cache_key()
        a = await client.complete(base)
        b = await client.complete(other)
        assert not a.cached and not b.cached
        assert a.text != b.text
        assert len(inner.calls) == 2
        assert (await client.complete(other)).cached
        assert len(inner.calls) == 2


async def test_cached_client_round_trips_every_completion_field(tmp_path):
    full = Completion(text="A", finish_reason="length", prompt_tokens=3, completion_tokens=4, reasoning_tokens=2,
                      latency_s=0.5, endpoint="e", backend="b", more=(Choice("B", "stop"), Choice("C", "length")))
    inner = FakeLLM(default=full)
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        client = CachedClient(inner, store)
        assert await client.complete(request(n=3)) == full
        await store.settle()  # committed: the next identical request is answered from the database
        hit = await client.complete(request(n=3))
        assert hit == replace(full, cached=True)
        assert [c.text for c in hit.choices] == ["A", "B", "C"]
        assert hit.truncated


async def test_cached_client_does_not_cache_errors(tmp_path):
    inner = FakeLLM(ServerError("500"))
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        client = CachedClient(inner, store)
        with pytest.raises(ServerError):
            await client.complete(request())
        assert await store.cache_get(request().cache_key()) is None
        assert not (await client.complete(request())).cached
        assert len(inner.calls) == 2


async def test_cache_over_retries_with_failed_attempt_accounting(tmp_path):
    inner = FakeLLM(ServerError("500"), RateLimited("429"))
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        retrying = RetryingClient(inner, Backoff(attempts=3, **NO_WAIT), observer=FailedAttempts(store))
        client = CachedClient(retrying, store)
        first = await client.complete(request())
        await store.settle()
        assert (await client.complete(request())).cached
        assert len(inner.calls) == 3
        await store.settle()
        calls = await store.query("SELECT outcome, calls FROM calls ORDER BY outcome")
        # two failed attempts, both sent again; the second request a cache hit
        assert calls == [("cached", 1), ("error:RateLimited", 1), ("error:ServerError", 1), ("ok", 1), ("retried", 2)]
        assert first.text.endswith("#3")
