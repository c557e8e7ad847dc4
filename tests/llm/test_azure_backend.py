"""AzureBackend against a minimal Azure-shaped server on 127.0.0.1 (tests/llm/mini_azure.py): the URL, key and
body it sends, how it maps each failure to one error, cancellation, and its settings.  The rate limits are in
test_azure_limits.py."""

from __future__ import annotations

import asyncio

import pytest

from agents.llm import BadRequest, BadResponse, ChatMessage, ConnectionLost, LLMTimeout, ServerError
from mini_azure import API_VERSION, DEPLOYMENTS, KEY, Reply, backend, chat, options, server  # noqa: F401
from reasonmed_async.config import BackendConfig, ConfigError
from reasonmed_async.llm.azure_openai import AzureSettings, open_azure_backend


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
