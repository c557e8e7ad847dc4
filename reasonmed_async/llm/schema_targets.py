"""Each judge schema in the form its target takes.

- ``strict``: OpenAI's and Azure's structured outputs with ``strict: true``.  They accept a
  subset of JSON Schema: every object lists all its properties in ``required`` and has
  ``additionalProperties: false``; no string-length, pattern, format, item-count or number-range
  keywords.  Those constraints are dropped here (the parsers check ranges and lengths anyway);
  enums stay.
- ``grammar``: servers that compile the schema into a grammar (llama.cpp, vLLM's structured
  outputs) and honour the constraints: the schema as the agent wrote it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit

SchemaTarget = Literal["strict", "grammar"]
SCHEMA_TARGETS: tuple[str, ...] = ("strict", "grammar")

#: Keywords strict mode refuses (or did, for some models): dropped from a strict schema.
STRICT_UNSUPPORTED = frozenset({
    "minLength", "maxLength", "pattern", "format", "minItems", "maxItems", "uniqueItems", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf", "minProperties", "maxProperties",
    "patternProperties", "propertyNames", "unevaluatedProperties", "contains", "default",
})
_OPENAI_HOSTS = ("api.openai.com",)
_AZURE_SUFFIXES = (".openai.azure.com", ".cognitiveservices.azure.com")
_MAX_COMPLETION_PREFIXES = ("o1", "o3", "o4", "gpt-5")


def for_target(schema: Mapping[str, Any], target: SchemaTarget) -> dict[str, Any]:
    """``schema`` as ``target`` takes it (a new dict; the agent's schema is left as it is)."""
    if target == "grammar":
        return _copy(schema)
    if target == "strict":
        return _strict(schema)
    raise ValueError(f"schema target must be one of {', '.join(SCHEMA_TARGETS)}, got {target!r}")


_LEAVES = (str, int, float, type(None))  # a schema's leaves: tested first (``Mapping`` is a slow ABC check)


def _copy(value: Any) -> Any:
    if isinstance(value, _LEAVES):
        return value
    if isinstance(value, dict | Mapping):
        return {k: _copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_copy(v) for v in value]
    return value


def _strict(node: Any) -> Any:
    if isinstance(node, _LEAVES):
        return node
    if isinstance(node, list | tuple):
        return [_strict(v) for v in node]
    if not isinstance(node, Mapping):
        return node
    out = {k: _strict(v) for k, v in node.items() if k not in STRICT_UNSUPPORTED}
    if "properties" in out:  # properties: a mapping of names to schemas, not a schema itself
        out["properties"] = {name: _strict(sub) for name, sub in node["properties"].items()}
    if out.get("type") == "object" or "properties" in out:
        out["required"] = list(out.get("properties", {}))
        out["additionalProperties"] = False
    return out


def is_openai_service(base_url: str) -> bool:
    """True for OpenAI's own API (strict schemas, o-series token rules), false for any compatible server."""
    host = (urlsplit(base_url).hostname or "").lower()
    return host in _OPENAI_HOSTS


def is_azure_service(base_url: str) -> bool:
    host = (urlsplit(base_url).hostname or "").lower()
    return host.endswith(_AZURE_SUFFIXES)


def needs_max_completion_tokens(model: str) -> bool:
    """OpenAI's and Azure's o-series (and gpt-5) models take ``max_completion_tokens`` and refuse ``max_tokens``."""
    return model.lower().startswith(_MAX_COMPLETION_PREFIXES)
