"""A real ``vllm serve`` (the tiny model, on 127.0.0.1) reached through the OpenAI-compatible backend."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from tiny_model import SERVED, SERVER_KEY

from agents.llm import BadRequest, ChatMessage, ChatRequest
from agents.prompts import VERDICT_SCHEMA
from reasonmed_async.config import BackendConfig
from reasonmed_async.llm.openai_http import OpenAICompatBackend, open_openai_backend

pytestmark = pytest.mark.asyncio(loop_scope="session")
KEY_ENV = "REASONMED_TEST_VLLM_KEY"


def ask(**kw: object) -> ChatRequest:
    messages = (ChatMessage("user", "Which drug treats anaphylaxis first?\nA. adrenaline\nB. aspirin"),)
    return ChatRequest(model=SERVED, messages=messages, **kw)  # type: ignore[arg-type]


@pytest_asyncio.fixture(loop_scope="session")
async def served(vllm_server: str, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[OpenAICompatBackend]:
    monkeypatch.setenv(KEY_ENV, SERVER_KEY)
    backend = await open_openai_backend(BackendConfig("served", "openai", {"base_url": vllm_server,
                                                                          "api_key_env": KEY_ENV}))
    try:
        yield backend
    finally:
        await backend.aclose()


async def test_served_completion_with_n_and_seed(served: OpenAICompatBackend, vllm_server: str) -> None:
    done = await served.complete(ask(max_tokens=9, temperature=1.0, seed=4, n=2))
    assert done.backend == "openai" and done.endpoint == vllm_server
    assert len(done.choices) == 2 and all(c.finish_reason == "length" for c in done.choices)
    assert done.completion_tokens == 18 and done.prompt_tokens > 5
    again = await served.complete(ask(max_tokens=9, temperature=1.0, seed=4, n=2))
    assert [c.text for c in again.choices] == [c.text for c in done.choices]


async def test_served_json_schema(served: OpenAICompatBackend) -> None:
    done = await served.complete(ask(max_tokens=1024, temperature=1.0, seed=8, json_schema=VERDICT_SCHEMA))
    assert done.finish_reason == "stop"
    verdict = json.loads(done.text)
    assert set(verdict) == {"verdict", "reason"} and verdict["verdict"] in ("Correct", "Error")


async def test_served_wrong_key_is_a_bad_request(vllm_server: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, "not-the-key")
    backend = await open_openai_backend(BackendConfig("served", "openai", {"base_url": vllm_server,
                                                                          "api_key_env": KEY_ENV}))
    try:
        with pytest.raises(BadRequest) as caught:
            await backend.complete(ask(max_tokens=4))
    finally:
        await backend.aclose()
    assert caught.value.status == 401 and "not-the-key" not in str(caught.value)
