"""Every schema the project sends, checked against its target's rules.

OpenAI's and Azure's strict structured outputs take a subset of JSON Schema: each object lists every
property in ``required`` and has ``additionalProperties: false``; no length, pattern, format,
item-count or range keywords.  The checker below is written from those rules, apart from the code
that converts the schemas.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from agents.llm import ChatMessage, ChatRequest
from agents.schemas import RANKING_SCHEMA, SCORE_SCHEMA, VERDICT_SCHEMA, ranking_schema
from reasonmed_async.llm.azure_openai import request_kwargs
from reasonmed_async.llm.openai_http import OpenAICompatBackend, OpenAISettings
from reasonmed_async.llm.schema_targets import for_target

REFUSED_BY_STRICT = {"minLength", "maxLength", "pattern", "format", "minItems", "maxItems", "minimum", "maximum",
                     "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "patternProperties", "uniqueItems"}
NAMES = [["qwen_1", "qwen_2", "qwen_3"], ["qwen_1", "qwen_2", "qwen_3", "deepseek_1", "deepseek_2", "deepseek_3",
                                          "huatuo_1", "huatuo_2", "huatuo_3"]]
SENT = [("verdict", VERDICT_SCHEMA), ("score", SCORE_SCHEMA), ("ranking-any", RANKING_SCHEMA)] + [
    (f"ranking-{len(n)}", ranking_schema(n)) for n in NAMES]


def strict_violations(node: Any, where: str = "$") -> list[str]:
    out: list[str] = []
    if isinstance(node, list):
        for i, item in enumerate(node):
            out += strict_violations(item, f"{where}[{i}]")
        return out
    if not isinstance(node, dict):
        return out
    out += [f"{where}: {k} is refused in strict mode" for k in REFUSED_BY_STRICT & set(node)]
    if node.get("type") == "object":
        props = node.get("properties")
        if not isinstance(props, dict):
            out.append(f"{where}: an object without properties (a free-form mapping)")
            props = {}
        if sorted(node.get("required", [])) != sorted(props):
            out.append(f"{where}: required must list every property")
        if node.get("additionalProperties") is not False:
            out.append(f"{where}: additionalProperties must be false")
        for name, sub in props.items():
            out += strict_violations(sub, f"{where}.{name}")
    for key in ("items", "anyOf"):
        if key in node:
            out += strict_violations(node[key], f"{where}.{key}")
    if "enum" in node and not node["enum"]:
        out.append(f"{where}: an empty enum")
    return out


@pytest.mark.parametrize("name, schema", SENT, ids=[s[0] for s in SENT])
def test_strict_form_of_every_schema_is_strict_valid(name: str, schema: dict[str, Any]) -> None:
    strict = for_target(schema, "strict")
    assert strict_violations(strict) == []
    json.dumps(strict)  # sent as JSON


@pytest.mark.parametrize("name, schema", SENT, ids=[s[0] for s in SENT])
def test_grammar_form_keeps_every_constraint(name: str, schema: dict[str, Any]) -> None:
    assert for_target(schema, "grammar") == schema and for_target(schema, "grammar") is not schema


def test_the_checker_catches_what_strict_mode_refuses() -> None:
    assert sorted(strict_violations(VERDICT_SCHEMA)) == ["$.reason: maxLength is refused in strict mode",
                                                         "$.reason: minLength is refused in strict mode"]
    assert "$.reasons: an object without properties (a free-form mapping)" in strict_violations(
        {"type": "object", "properties": {"reasons": {"type": "object", "additionalProperties": {"type": "string"}}},
         "required": ["reasons"], "additionalProperties": False})


def test_ranking_names_are_an_enum_built_per_request() -> None:
    strict = for_target(ranking_schema(NAMES[0]), "strict")
    assert strict["properties"]["top2"]["items"]["enum"] == NAMES[0]
    assert strict["properties"]["reasons"]["items"]["properties"]["path"]["enum"] == NAMES[0]


def _request(schema: dict[str, Any]) -> ChatRequest:
    return ChatRequest(model="gpt-4o-mini", messages=(ChatMessage("user", "x"),), json_schema=schema)


@pytest.mark.parametrize("name, schema", SENT, ids=[s[0] for s in SENT])
def test_azure_and_openai_send_the_strict_form(name: str, schema: dict[str, Any]) -> None:
    sent = request_kwargs(_request(schema), o1=False)["response_format"]["json_schema"]
    assert sent["strict"] is True and strict_violations(sent["schema"]) == []
    backend = OpenAICompatBackend.__new__(OpenAICompatBackend)  # _body only reads the settings
    backend._settings = OpenAISettings.from_options({"base_url": "https://api.openai.com/v1"})
    backend._modes = {}
    body, mode = backend._body(_request(schema), "https://api.openai.com/v1")
    assert mode == "json_schema" and strict_violations(body["response_format"]["json_schema"]["schema"]) == []
    local, _ = backend._body(_request(schema), "http://127.0.0.1:8080/v1")
    assert local["response_format"]["json_schema"]["schema"] == schema  # a grammar server keeps the limits


def test_o_series_on_openai_take_max_completion_tokens_and_compatible_servers_max_tokens() -> None:
    backend = OpenAICompatBackend.__new__(OpenAICompatBackend)
    backend._settings = OpenAISettings.from_options({"base_url": "https://api.openai.com/v1"})
    backend._modes = {}
    o1 = ChatRequest(model="o1-mini", messages=(ChatMessage("user", "x"),), max_tokens=99)
    assert backend._body(o1, "https://api.openai.com/v1")[0]["max_completion_tokens"] == 99
    assert backend._body(o1, "http://127.0.0.1:8080/v1")[0]["max_tokens"] == 99
    four = ChatRequest(model="gpt-4o-mini", messages=(ChatMessage("user", "x"),), max_tokens=99)
    assert "max_completion_tokens" not in backend._body(four, "https://api.openai.com/v1")[0]
    assert request_kwargs(o1, o1=True)["max_completion_tokens"] == 99
    assert request_kwargs(four, o1=False)["max_tokens"] == 99
