"""Request identity on the wire (X-Request-ID from the cache key, X-Session-ID the question), a second answer
to a stored key counted as a duplicate and never stored twice, and concurrency sized from max_num_seqs."""

from __future__ import annotations

import asyncio

import pytest

from agents.llm import ChatMessage, ChatRequest
from bus import Backoff
from fake_llm_server import FakeLLMServer, Faults
from reasonmed_async.llm.cache import CachedClient
from reasonmed_async.llm.identity import default_concurrency, identity_headers, request_id
from reasonmed_async.llm.openai_http import OpenAICompatBackend, OpenAISettings
from reasonmed_async.llm.retry import RetryingClient
from reasonmed_async.store.checkpoint import CheckpointStore


def cot_request(question_id: str = "pubmedqa-21645374", sample: int = 0) -> ChatRequest:
    text = (f"Question ({question_id}): Do mitochondria play a role in remodelling lace plant leaves during"
            " programmed cell death?\n\nOptions:\nA) yes\nB) no\nC) maybe")
    return ChatRequest(model="med-7b", messages=(ChatMessage("user", text),), temperature=0.7, sample=sample,
                       meta={"task": "generate", "question_id": question_id})


def test_identity_headers_follow_the_cache_key_and_the_question() -> None:
    first, again, other = cot_request(), cot_request(), cot_request(sample=1)
    headers = identity_headers(first)
    assert headers == {"X-Request-ID": "rm-" + first.cache_key()[:32], "X-Session-ID": "pubmedqa-21645374"}
    assert identity_headers(again) == headers  # same logical request, same idempotency key
    assert identity_headers(other)["X-Request-ID"] != headers["X-Request-ID"]
    assert identity_headers(other)["X-Session-ID"] == headers["X-Session-ID"]  # same question: same replica
    assert request_id("ab" * 32) == "rm-" + "ab" * 16


@pytest.mark.parametrize(("question_id", "sent"), [
    ("medqa-US-0042", "medqa-US-0042"),
    ("q\u00e9 1\n2", "q__1_2"),  # a user's id with an accent, a space and a newline: never breaks the header
    ("", None),
])
def test_session_header_is_a_safe_value(question_id: str, sent: str | None) -> None:
    assert identity_headers(cot_request(question_id)).get("X-Session-ID") == sent


@pytest.mark.parametrize(("options", "cap"), [
    ({}, 64),
    ({"max_num_seqs": 256}, 256),  # one vLLM server per URL
    ({"max_num_seqs": 128, "replicas": 4}, 512),  # a router URL in front of 4 replicas
    ({"max_num_seqs": 128, "replicas": 4, "max_concurrency": 100}, 100),  # stated: wins
])
def test_concurrency_defaults_from_max_num_seqs_times_replicas(options: dict, cap: int) -> None:
    assert default_concurrency(options) == cap
    settings = OpenAISettings.from_options({"base_url": "http://127.0.0.1:30000/v1", "adaptive": False, **options})
    assert settings.policy.max_concurrency == cap


@pytest.mark.parametrize(("options", "message"), [
    ({"replicas": 4}, "replicas needs max_num_seqs"),
    ({"max_num_seqs": 0}, "max_num_seqs must be an integer >= 1"),
    ({"max_num_seqs": "256"}, "max_num_seqs must be an integer >= 1"),
])
def test_bad_sizing_options_name_the_key(options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        OpenAISettings.from_options({"base_url": "http://127.0.0.1:30000/v1", **options})


async def test_every_request_carries_its_identity_retries_included() -> None:
    async with FakeLLMServer(Faults(rate_500=0.5, seed=3)) as server:
        backend = OpenAICompatBackend(OpenAISettings.from_options({"base_url": server.openai_url}), api_key="test-key")
        client = RetryingClient(backend, Backoff(attempts=8, base_s=0.0, cap_s=0.0))
        try:
            requests = [cot_request(f"q{i}") for i in range(6)]
            await asyncio.gather(*(client.complete(r) for r in requests))
        finally:
            await backend.aclose()
    expected = {identity_headers(r)["X-Request-ID"]: f"q{i}" for i, r in enumerate(requests)}
    seen = [(rec.headers["X-Request-ID"], rec.headers["X-Session-ID"]) for rec in server.requests]
    assert len(seen) > len(requests)  # some were retried after a 500 ...
    assert {rid for rid, _ in seen} == set(expected)  # ... under the same idempotency key
    assert all(expected[rid] == session for rid, session in seen)


async def test_a_second_answer_to_a_stored_key_is_counted_never_stored_twice(tmp_path) -> None:
    """Two writers of one key race past the cache (both miss) and both reach the server: in one process the
    single-flight stops that, so here two clients share the store (as a live call and a batch import may).
    The first answer is kept, the second counted as a duplicate."""
    async with FakeLLMServer(Faults(latency_s=0.05)) as server, await CheckpointStore.open(tmp_path / "r.db") as store:
        backend = OpenAICompatBackend(OpenAISettings.from_options({"base_url": server.openai_url}), api_key="test-key")
        try:
            one, other = CachedClient(backend, store), CachedClient(backend, store)
            first, second = await asyncio.gather(one.complete(cot_request()), other.complete(cot_request()))
            await store.settle()  # both cache entries committed (write-behinds)
            third = await one.complete(cot_request())
        finally:
            await backend.aclose()
        assert len(server.requests) == 2 and third.cached  # the third is answered from the store
        assert len({r.headers["X-Request-ID"] for r in server.requests}) == 1  # the server saw one id twice
        assert first.text == second.text == third.text
        await store.settle()
        rows = await store.query("SELECT COUNT(*) FROM llm_cache")
        calls = await store.query("SELECT outcome, calls FROM calls ORDER BY outcome")
    assert rows == [(1,)]
    assert calls == [("cached", 1), ("duplicate", 1), ("ok", 1)]  # the third is a cache hit, counted as one
