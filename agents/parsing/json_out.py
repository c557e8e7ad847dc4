"""The judge's JSON object, as real models write it.

Read from the visible part only (a draft inside ``<think>`` is not the answer); fenced
or bare, prefixed or followed by prose.  Strict JSON first; where none is valid,
``json_repair`` mends the usual slips (single quotes, trailing commas, a missing
closing brace, Python's ``True``).
"""

from __future__ import annotations

import json
import re
from typing import Any

from .errors import ParseError
from .thinking import split_thinking

_FENCE = re.compile(r"```[ \t]*(?:json|JSON|Json)?[ \t]*\n?(.*?)(?:```|\Z)", re.S)  # what ``_fenced`` finds
_FENCE_HEAD = re.compile(r"```[ \t]*(?:json|JSON|Json)?[ \t]*\n?")
_SPECIAL = re.compile(r'[{}"]')
_STRING = re.compile(r'"(?:\\.|[^"\\])*"?', re.S)  # a JSON string, maybe unclosed
_DECODER = json.JSONDecoder(strict=False)  # strict=False: raw newlines inside strings are fine


def _object_starts(text: str) -> list[int]:
    """Starts of balanced ``{...}`` spans, in order (so an object before the objects nested in it).

    One linear pass; inside an object, braces within JSON strings (escapes honoured) do not count.
    """
    pairs: list[int] = []
    stack: list[int] = []
    pos = 0
    while (m := _SPECIAL.search(text, pos)) is not None:
        pos = m.end()
        if m.group() == "{":
            stack.append(m.start())
        elif m.group() == "}":
            if stack:
                pairs.append(stack.pop())
        elif stack:
            pos = _STRING.match(text, m.start()).end()  # type: ignore[union-attr]
    return sorted(pairs)


def _strict(src: str) -> dict[str, Any] | None:
    # The usual answer: a valid object at the first "{".  It is then also the first balanced span
    # ``_object_starts`` would give (nothing before it opens one), so the result is the same.
    first = src.find("{")
    if first < 0:
        return None
    try:
        value, _ = _DECODER.raw_decode(src, first)
    except json.JSONDecodeError:
        pass
    else:
        if isinstance(value, dict):
            return value
    for start in _object_starts(src):
        try:
            value, _ = _DECODER.raw_decode(src, start)
        except json.JSONDecodeError:
            continue
        if isinstance(value, dict):
            return value
    return None


def _repaired(src: str) -> dict[str, Any] | None:
    start = src.find("{")
    if start < 0:
        return None
    end = src.rfind("}")
    candidate = src[start : end + 1] if end > start else src[start:]
    import json_repair  # here, not at the top: a run whose judges write valid JSON never imports it (~5 ms)

    value = json_repair.loads(candidate)
    if isinstance(value, list):  # "{...} {...}" comes back as a list: the first object is the answer
        value = next((v for v in value if isinstance(v, dict)), None)
    return value if isinstance(value, dict) and value else None


def _fenced(text: str) -> list[str]:
    """The bodies ``_FENCE.finditer(text)`` gives (``group(1)``), found with ``str.find``: the pattern's lazy
    body tried the closing fence at every character (~10 µs a judge's answer, the most of its parse)."""
    bodies: list[str] = []
    pos = 0
    while (start := text.find("```", pos)) >= 0:
        body = _FENCE_HEAD.match(text, start).end()  # type: ignore[union-attr]  # it starts with the "```" found
        end = text.find("```", body)
        if end < 0:  # unclosed: the body runs to the end
            bodies.append(text[body:])
            break
        bodies.append(text[body:end])
        pos = end + 3
    return bodies


def extract_json(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``: fenced (```json), bare, or embedded in prose; repaired if need be."""
    sources = [*_fenced(text), text]
    for parse in (_strict, _repaired):
        for src in sources:
            if (value := parse(src)) is not None:
                return value
    if "{" in text:
        raise ParseError("the output has no readable JSON object; reply with one complete JSON object only")
    raise ParseError("the output contains no JSON object; reply with one JSON object only")


def visible_json(text: str) -> dict[str, Any]:
    """The JSON object of the answer's visible part: thinking (``<think>``, ``## Thinking``) removed first."""
    thinking, visible = split_thinking(text)
    if not visible and thinking:
        raise ParseError("the output is all thinking, with no answer after it; after thinking, reply with "
                         "the JSON object")
    return extract_json(visible)
