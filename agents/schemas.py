"""The JSON schemas the judges are asked to answer in: one logical schema per judge.

They carry every constraint a grammar-constrained server (llama.cpp, vLLM's structured
outputs) can honour: enums, length limits, item counts, number ranges.  The ranker's is
built per request, its ``top2`` items an ``enum`` of the names it was given, so a
constrained decoder cannot answer a name that does not exist.  A backend sends each in
its target's form (``reasonmed_async.llm.schema_targets``): OpenAI's and Azure's strict
mode take a subset.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

REASON_MAX = 600

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "verdict": {"type": "string", "enum": ["Correct", "Error"]},
        "reason": {"type": "string", "minLength": 10, "maxLength": REASON_MAX},
    },
    "required": ["verdict", "reason"],
    "additionalProperties": False,
}
SCORE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "score": {"type": "integer", "minimum": 1, "maximum": 10},
        "justification": {"type": "string", "minLength": 10, "maxLength": REASON_MAX},
    },
    "required": ["score", "justification"],
    "additionalProperties": False,
}


def ranking_schema(names: Sequence[str] = ()) -> dict[str, Any]:
    """The ranker's schema: ``top2`` two of ``names`` (any strings where none are given), and
    ``reasons`` a list of ``{"path", "reason"}`` objects, one per path not chosen."""
    name: dict[str, Any] = {"type": "string", "enum": list(names)} if names else {"type": "string"}
    return {
        "type": "object",
        "properties": {
            "top2": {"type": "array", "items": name, "minItems": 2, "maxItems": 2},
            "reasons": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"path": name, "reason": {"type": "string", "maxLength": REASON_MAX // 2}},
                    "required": ["path", "reason"],
                    "additionalProperties": False,
                },
                "maxItems": max(len(names) - 2, 0) if names else 16,
            },
        },
        "required": ["top2", "reasons"],
        "additionalProperties": False,
    }


RANKING_SCHEMA: dict[str, Any] = ranking_schema()
