"""The three judges' answers: a verdict, a ranking, a score, each from the visible JSON object.

A value that merely echoes the prompt's description of a field (``<one or two
sentences>``, ``"your reason here"``) is unparseable, never accepted as content.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Sequence
from typing import Any, Literal

from .errors import ParseError
from .json_out import visible_json

_VERDICT_WORDS: dict[str, Literal["Correct", "Error"]] = {
    "correct": "Correct", "right": "Correct", "valid": "Correct",
    "error": "Error", "incorrect": "Error", "wrong": "Error", "invalid": "Error",
}
_ANGLE = re.compile(r"<[^<>\n]{0,120}>")
_DESCRIPTOR = re.compile(
    r"^(?:(?:your|the|a|an|short|brief)\s+)*(?:reason|reasons|reasoning|explanation|justification|string|text|"
    r"sentence|sentences|here|(?:one|two|three|a\s+few|few|1|2|3|1-2|2-3|several)"
    r"(?:\s+(?:or|to)\s+(?:two|three|2|3))?\s+sentences?)"
    r"(?:\s+(?:in|your|own|words|that|explains?|explaining|justifying|why|the|a|this|verdict|score|ranking|choice|"
    r"decision|for|of|it|here|goes|mistake|specific|name|naming|saying|what|is|wrong))*",
    re.I,
)


_NON_WORD = re.compile(r"[^\w\s-]")
_NON_LOWER = re.compile(r"[^a-z]")
_THREE_LETTERS = re.compile(r"[A-Za-z][^A-Za-z]*[A-Za-z][^A-Za-z]*[A-Za-z]")  # found iff it has 3 or more


def _words(text: str) -> str:
    return " ".join(_NON_WORD.sub(" ", text).lower().split())


@functools.lru_cache(maxsize=64)
def _instruction_words(instructions: str) -> str:
    """A template's text as padded words: the same few templates on every call, so worked out once each."""
    return f" {_words(instructions)} "


def is_placeholder(text: str, instructions: str = "") -> bool:
    """True where ``text`` is a template's description of a field echoed back, not content.

    That is: a ``<...>`` placeholder, a bare descriptor ("one or two sentences", "your reason here"),
    or four or more words, all copied from ``instructions`` (the template's own text)."""
    bare = _ANGLE.sub(" ", text) if "<" in text else text  # most reasons hold no "<": no substitution for them
    if _THREE_LETTERS.search(bare) is None:
        return True
    words = _words(text)
    if _DESCRIPTOR.fullmatch(words) is not None:
        return True
    return len(words.split()) >= 4 and f" {words} " in _instruction_words(instructions)


def _fields(data: dict[str, Any]) -> dict[str, Any]:
    """Keys lower-cased and stripped (first occurrence wins)."""
    out: dict[str, Any] = {}
    for k, v in data.items():
        out.setdefault(str(k).strip().lower(), v)
    return out


def _get(fields: dict[str, Any], key: str, shape: str) -> Any:
    if key not in fields:
        raise ParseError(f'the JSON object has no "{key}" key; expected {shape}')
    return fields[key]


def _content(fields: dict[str, Any], key: str, shape: str, instructions: str) -> str:
    value = _get(fields, key, shape)
    if not isinstance(value, str) or not value.strip():
        raise ParseError(f'"{key}" must be a non-empty string, got {json.dumps(value)}; expected {shape}')
    if is_placeholder(value, instructions):
        raise ParseError(f'"{key}" repeats the instructions ({json.dumps(value.strip())}) instead of saying '
                         f"something about this case; write it in your own words")
    return value.strip()


_VERDICT_SHAPE = 'an object with "verdict" (Correct or Error) and "reason" (your explanation)'


def parse_verdict(text: str, instructions: str = "") -> tuple[Literal["Correct", "Error"], str]:
    """``(verdict, reason)``; ``instructions`` (the template's text) tells an echoed description from a reason."""
    fields = _fields(visible_json(text))
    raw = _get(fields, "verdict", _VERDICT_SHAPE)
    if not isinstance(raw, str):
        raise ParseError(f'"verdict" must be the string "Correct" or "Error", got {json.dumps(raw)}')
    label = _VERDICT_WORDS.get(_NON_LOWER.sub("", raw.lower()))
    if label is None:
        raise ParseError(f'"verdict" must be "Correct" or "Error", got {json.dumps(raw)}')
    return label, _content(fields, "reason", _VERDICT_SHAPE, instructions)


def _resolve(raw: str, names: Sequence[str]) -> str | None:
    """``raw`` as one of ``names``: exact, or without brackets/quotes/a "path" prefix, or case-insensitively."""
    if raw in names:
        return raw
    bare = re.sub(r"^\s*path\s*:?\s*", "", raw.strip().strip("[]`'\"*()").strip(), flags=re.I).strip("[]`'\"* ")
    if bare in names:
        return bare
    folded = [n for n in names if n.casefold() == bare.casefold()]
    return folded[0] if len(folded) == 1 else None


def _ranking_reasons(raw: Any, names: Sequence[str], instructions: str) -> dict[str, str]:
    """Reasons as the strict schema's ``[{"path", "reason"}]`` or the older ``{name: reason}``; echoes dropped."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, dict):
        pairs = list(raw.items())
    elif isinstance(raw, list):
        pairs = [(_fields(i).get("path"), _fields(i).get("reason")) for i in raw if isinstance(i, dict)]
    else:
        raise ParseError(f'"reasons" must be a list of {{"path", "reason"}} objects, got {json.dumps(raw)}')
    reasons: dict[str, str] = {}
    for key, value in pairs:
        name = _resolve(str(key), names) if key is not None else None
        if name is not None and isinstance(value, str) and value.strip() and not is_placeholder(value, instructions):
            reasons.setdefault(name, value.strip())
    return reasons


def parse_ranking(text: str, names: Sequence[str], instructions: str = "") -> tuple[tuple[str, str], dict[str, str]]:
    fields = _fields(visible_json(text))
    valid = ", ".join(names)
    top = _get(fields, "top2", '{"top2": [two path names], "reasons": [...]}')
    if not isinstance(top, list) or len(top) != 2:
        raise ParseError(f'"top2" must be a list of exactly 2 path names, got {json.dumps(top)}; valid names: {valid}')
    chosen: list[str] = []
    for raw in top:
        if not isinstance(raw, str):
            raise ParseError(f'"top2" must contain path names as strings, got {json.dumps(raw)}; valid names: {valid}')
        name = _resolve(raw, names)
        if name is None:
            raise ParseError(f'"top2" names {json.dumps(raw)}, which is not one of the paths given; valid names: {valid}')
        chosen.append(name)
    if chosen[0] == chosen[1]:
        raise ParseError(f'"top2" names {chosen[0]!r} twice; choose two different paths among: {valid}')
    return (chosen[0], chosen[1]), _ranking_reasons(fields.get("reasons"), names, instructions)


_SCORE_SHAPE = 'an object with "score" (a whole number from 1 to 10) and "justification" (your explanation)'
_SCORE_TEXT = re.compile(r"(\d+(?:\.\d+)?)\s*(?:(?:/|out\s+of)\s*10(?:\.0+)?)?", re.I)


def _score_number(raw: Any) -> float | None:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, int | float):
        return float(raw) if math.isfinite(raw) else None
    if isinstance(raw, str) and (m := _SCORE_TEXT.fullmatch(raw.strip().rstrip("."))):
        return float(m.group(1))
    return None


def parse_score(text: str, instructions: str = "") -> tuple[int, str]:
    """``(score, justification)``: 8, 8.0, "8", "8/10", "8 out of 10"; a half point rounds up (8.5 -> 9)."""
    fields = _fields(visible_json(text))
    raw = _get(fields, "score", _SCORE_SHAPE)
    number = _score_number(raw)
    if number is None:
        raise ParseError(f'"score" must be a whole number from 1 to 10, got {json.dumps(raw)}')
    if not 1 <= number <= 10:
        raise ParseError(f'"score" must be from 1 to 10, got {json.dumps(raw)}')
    return math.floor(number + 0.5), _content(fields, "justification", _SCORE_SHAPE, instructions)
