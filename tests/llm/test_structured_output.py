"""Structured output that negotiates, against a real HTTP server on 127.0.0.1.

The server here answers the way llama-cpp-python's ``llama_cpp.server`` does: ``response_format``
``json_schema`` refused (its request model takes only ``text`` and ``json_object``), ``json_object``
with a ``schema`` field taken.  ``auto`` must fall back once per endpoint and model, send the
request again without counting a failure, and keep to ``max_tokens``.
"""

from __future__ import annotations

import json
from contextlib import asynccontextmanager
from typing import Any

import pytest
from aiohttp import web

from agents.llm import BadRequest, ChatMessage, ChatRequest, ServerError
from agents.schemas import VERDICT_SCHEMA, ranking_schema
from reasonmed_async.llm.openai_http import OpenAICompatBackend, OpenAISettings
from reasonmed_async.llm.wire import build_body, refuses_format

LLAMA_CPP_422 = {"detail": [{"type": "literal_error", "loc": ["body", "response_format", "type"],
                             "msg": "Input should be 'text' or 'json_object'", "input": "json_schema"}]}


class FormatServer:
    """Accepts the response_format types in ``accepts``; answers others with ``status`` and ``error``."""

    def __init__(self, accepts: tuple[str, ...], status: int = 422, error: Any = LLAMA_CPP_422) -> None:
        self.accepts, self.status, self.error = accepts, status, error
        self.bodies: list[dict[str, Any]] = []

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        self.bodies.append(body)
        kind = body.get("response_format", {}).get("type", "text")
        if kind not in self.accepts:
            return web.json_response(self.error, status=self.status)
        text = json.dumps({"verdict": "Correct", "reason": "The reasoning reaches the gold answer soundly."})
        return web.json_response({"choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                               "finish_reason": "stop"}],
                                  "usage": {"prompt_tokens": 10, "completion_tokens": 12}})


@asynccontextmanager
async def serving(server: FormatServer, options: dict[str, Any] | None = None):
    app = web.Application()
    app.router.add_post("/v1/chat/completions", server.handle)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    settings = OpenAISettings.from_options({"base_url": f"http://127.0.0.1:{port}/v1", **(options or {})})
    backend = OpenAICompatBackend(settings)
    try:
        yield backend
    finally:
        await backend.aclose()
        await runner.cleanup()


def judge(schema: dict[str, Any] | None = VERDICT_SCHEMA, model: str = "smollm2") -> ChatRequest:
    return ChatRequest(model=model, messages=(ChatMessage("user", "Judge this."),), max_tokens=200, json_schema=schema)


async def test_auto_falls_back_to_json_object_with_the_schema_once_per_endpoint() -> None:
    server = FormatServer(accepts=("text", "json_object"))
    async with serving(server) as backend:
        first = await backend.complete(judge())
        second = await backend.complete(judge())
    assert json.loads(first.text)["verdict"] == "Correct" and second.text == first.text
    kinds = [b.get("response_format", {}).get("type") for b in server.bodies]
    assert kinds == ["json_schema", "json_object", "json_object"]  # refused once, then settled
    assert server.bodies[1]["response_format"]["schema"] == VERDICT_SCHEMA
    assert all(b["max_tokens"] == 200 and "max_completion_tokens" not in b for b in server.bodies)
    assert list(backend.structured_output_modes().values()) == ["json_object"]
    assert backend.replica_stats()[0]["ejections"] == 0


async def test_auto_falls_back_to_none_where_json_object_is_refused_too() -> None:
    server = FormatServer(accepts=("text",), status=500,
                          error={"error": {"message": "response_format is not supported by this server"}})
    async with serving(server) as backend:
        done = await backend.complete(judge())
        await backend.complete(judge())
    kinds = [b.get("response_format", {}).get("type") for b in server.bodies]
    assert kinds == ["json_schema", "json_object", None, None]
    assert done.text and list(backend.structured_output_modes().values()) == ["none"]


async def test_the_mode_is_decided_per_model() -> None:
    server = FormatServer(accepts=("text", "json_object"))
    async with serving(server, {"structured_output_models": {"qwen": "none"}}) as backend:
        await backend.complete(judge(model="qwen"))
        await backend.complete(judge(model="smollm2"))
    assert [b["model"] for b in server.bodies] == ["qwen", "smollm2", "smollm2"]
    assert "response_format" not in server.bodies[0]


async def test_an_explicit_mode_is_never_changed() -> None:
    server = FormatServer(accepts=("text", "json_object"))
    async with serving(server, {"structured_output": "json_schema"}) as backend:
        with pytest.raises(BadRequest, match="response_format"):
            await backend.complete(judge())
    assert len(server.bodies) == 1


async def test_an_error_not_about_the_format_is_not_a_fallback() -> None:
    server = FormatServer(accepts=(), status=500, error={"error": {"message": "CUDA out of memory"}})
    async with serving(server) as backend:
        with pytest.raises(ServerError, match="out of memory"):
            await backend.complete(judge())
    assert len(server.bodies) == 1 and backend.structured_output_modes() == {
        next(iter(backend.structured_output_modes())): "json_schema"}


async def test_a_request_without_schema_sends_no_response_format() -> None:
    server = FormatServer(accepts=("text",))
    async with serving(server) as backend:
        await backend.complete(judge(schema=None))
    assert "response_format" not in server.bodies[0] and server.bodies[0]["max_tokens"] == 200


@pytest.mark.parametrize("status, message, expected", [
    (422, json.dumps(LLAMA_CPP_422), True),
    (500, "Internal Server Error: response_format type json_schema not supported", True),
    (400, "Invalid schema for response_format 'answer': 'maxLength' is not permitted.", True),
    (400, "'messages' must contain the word 'json' in some form, to use 'response_format' of type 'json_object'.", True),
    (400, "This model's maximum context length is 2048 tokens", False),
    (503, "response_format busy", False),
    (500, "Internal error", False),
])
def test_what_counts_as_a_refused_format(status: int, message: str, expected: bool) -> None:
    assert refuses_format(status, message) is expected


def test_token_field_and_schema_forms_in_the_body() -> None:
    req = judge(ranking_schema(["qwen_1", "qwen_2", "qwen_3"]))
    body = build_body(req, model="o1-mini", token_field="max_completion_tokens", schema_target="strict")
    assert body["max_completion_tokens"] == 200 and "max_tokens" not in body
    strict = body["response_format"]["json_schema"]["schema"]
    assert "minItems" not in strict["properties"]["top2"]
    grammar = build_body(req, model="m", structured_output="json_object")["response_format"]
    assert grammar == {"type": "json_object", "schema": req.json_schema}
    assert build_body(req, model="m", structured_output="none").get("response_format") is None
    with pytest.raises(ValueError, match="structured_output"):
        build_body(req, model="m", structured_output="auto")


def test_a_schema_is_put_in_its_form_once_and_again_when_it_changes() -> None:
    schema = ranking_schema(["qwen_1", "qwen_2", "qwen_3"])
    req = judge(schema)
    first = build_body(req, model="m", schema_target="strict")["response_format"]["json_schema"]["schema"]
    again = build_body(req, model="m", schema_target="strict")["response_format"]["json_schema"]["schema"]
    assert again is first and "minItems" not in first["properties"]["top2"]  # made once for this schema object
    assert build_body(req, model="m")["response_format"]["json_schema"]["schema"] == schema  # each target its own
    schema["properties"]["note"] = {"type": "string", "maxLength": 40}  # changed in place: made again
    changed = build_body(req, model="m", schema_target="strict")["response_format"]["json_schema"]["schema"]
    assert changed["properties"]["note"] == {"type": "string"} and "note" in changed["required"]
    assert "note" not in first["properties"]  # the earlier form was not touched
