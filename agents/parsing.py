"""Output parsing: pure functions from a model's text to what a stage needs.

Every failure is a ``ParseError`` whose message says precisely what is wrong,
in words fit to be sent back to the model in a correction retry.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from typing import Any, Literal

from bus.messages import LETTERS


class ParseError(ValueError):
    """A model output that does not have the shape the stage asked for."""


_FENCE = re.compile(r"```[ \t]*(?:json|JSON|Json)?[ \t]*\n?(.*?)```", re.S)
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


def extract_json(text: str) -> dict[str, Any]:
    """The first JSON object in ``text``: fenced (```json), bare, or embedded in prose."""
    sources = [m.group(1) for m in _FENCE.finditer(text)] + [text]
    first_error: str | None = None
    for src in sources:
        for start in _object_starts(src):
            try:
                value, _ = _DECODER.raw_decode(src, start)
            except json.JSONDecodeError as exc:
                first_error = first_error or f"{exc.msg} at line {exc.lineno} column {exc.colno}"
                continue
            if isinstance(value, dict):
                return value
    if first_error:
        raise ParseError(f"the output contains no valid JSON object ({first_error}); reply with one JSON object only")
    if "{" in text:
        raise ParseError("the JSON object in the output is never closed (missing '}'); reply with one complete JSON object")
    raise ParseError("the output contains no JSON object; reply with one JSON object only")


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


def _required_string(fields: dict[str, Any], key: str, shape: str) -> str:
    value = _get(fields, key, shape)
    if not isinstance(value, str) or not value.strip():
        raise ParseError(f'"{key}" must be a non-empty string, got {json.dumps(value)}; expected {shape}')
    return value.strip()


_VERDICT_SHAPE = '{"verdict": "Correct" or "Error", "reason": "..."}'


def parse_verdict(text: str) -> tuple[Literal["Correct", "Error"], str]:
    fields = _fields(extract_json(text))
    raw = _get(fields, "verdict", _VERDICT_SHAPE)
    if not isinstance(raw, str):
        raise ParseError(f'"verdict" must be the string "Correct" or "Error", got {json.dumps(raw)}')
    word = re.sub(r"[^a-z]", "", raw.lower())
    if word not in ("correct", "error"):
        raise ParseError(f'"verdict" must be "Correct" or "Error", got {json.dumps(raw)}')
    reason = _required_string(fields, "reason", _VERDICT_SHAPE)
    return ("Correct" if word == "correct" else "Error"), reason


def _resolve(raw: str, names: Sequence[str]) -> str | None:
    """``raw`` as one of ``names``: exact, or after stripping brackets/quotes/space, or case-insensitively."""
    if raw in names:
        return raw
    bare = raw.strip().strip("[]`'\"").strip()
    if bare in names:
        return bare
    folded = [n for n in names if n.casefold() == bare.casefold()]
    return folded[0] if len(folded) == 1 else None


def parse_ranking(text: str, names: Sequence[str]) -> tuple[tuple[str, str], dict[str, str]]:
    fields = _fields(extract_json(text))
    valid = ", ".join(names)
    top = _get(fields, "top2", '{"top2": [name, name], "reasons": {name: reason, ...}}')
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
    reasons_raw = fields.get("reasons") or {}
    if not isinstance(reasons_raw, dict):
        raise ParseError(f'"reasons" must be an object mapping path names to one sentence, got {json.dumps(reasons_raw)}')
    reasons: dict[str, str] = {}
    for key, value in reasons_raw.items():
        name = _resolve(str(key), names)
        if name is not None and isinstance(value, str) and value.strip():
            reasons.setdefault(name, value.strip())
    return (chosen[0], chosen[1]), reasons


_SCORE_SHAPE = '{"score": <integer 1 to 10>, "justification": "..."}'
_SCORE_TEXT = re.compile(r"(\d+)(?:\.0*)?(?:\s*/\s*10)?")


def parse_score(text: str) -> tuple[int, str]:
    fields = _fields(extract_json(text))
    raw = _get(fields, "score", _SCORE_SHAPE)
    value: int | None = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        value = raw
    elif isinstance(raw, float) and raw.is_integer():
        value = int(raw)
    elif isinstance(raw, str) and (m := _SCORE_TEXT.fullmatch(raw.strip())):
        value = int(m.group(1))
    if value is None:
        raise ParseError(f'"score" must be a whole number from 1 to 10, got {json.dumps(raw)}')
    if not 1 <= value <= 10:
        raise ParseError(f'"score" must be from 1 to 10, got {value}')
    return value, _required_string(fields, "justification", _SCORE_SHAPE)


_OPEN, _CLOSE = re.compile(r"<think>", re.I), re.compile(r"</think>", re.I)
_THINKING_HEADER = re.compile(r"\A\s*##[ \t]*thinking[ \t]*\n?", re.I)
_NEXT_HEADER = re.compile(r"^##[ \t]", re.M)
_FINAL_RESPONSE_HEADER = re.compile(r"\A##[ \t]*final[ \t]+response[ \t]*\n?", re.I)


def split_thinking(text: str) -> tuple[str, str]:
    """``(thinking, visible)``: ``<think>`` blocks and a leading ``## Thinking`` section moved aside.

    A ``</think>`` with no ``<think>`` before it (the opening tag was in the
    prompt) closes a block starting at the top; a ``<think>`` never closed runs
    to the end.  A ``## Thinking`` section ends at the next ``## `` header; a
    ``## Final Response`` header there is dropped, any other header is kept.
    """
    thoughts: list[str] = []
    close, opened = _CLOSE.search(text), _OPEN.search(text)
    if close and (opened is None or close.start() < opened.start()):
        thoughts.append(text[: close.start()])
        text = text[close.end() :]
    shown = ""
    while (opened := _OPEN.search(text)) is not None:
        shown += text[: opened.start()]
        close = _CLOSE.search(text, opened.end())
        thoughts.append(text[opened.end() : close.start() if close else len(text)])
        text = text[close.end() :] if close else ""
    shown += text
    if header := _THINKING_HEADER.match(shown):
        body = shown[header.end() :]
        nxt = _NEXT_HEADER.search(body)
        thoughts.append(body[: nxt.start()] if nxt else body)
        shown = body[nxt.start() :] if nxt else ""
        shown = _FINAL_RESPONSE_HEADER.sub("", shown, count=1)
    thinking = "\n\n".join(t.strip() for t in thoughts if t.strip())
    return thinking, shown.strip()


_ANSWER_HEAD = re.compile(
    r"(?P<final>\bfinal\s+)?\banswer\b(?:[ \t*_]*(?:(?:is|would\s+be)\b|:|=|-|–|—))+[ \t*_]*", re.I
)
_LEADING_NOISE = re.compile(r"^(?:[\s*_`(\[]|\boption\b|\bchoice\b|\bletter\b)+", re.I)
_TRAILING_NOISE = re.compile(r"[\s*_`.!;,)\]]+$")


def _answer_token(rest: str, options: Sequence[str]) -> str | None:
    """An option's letter by its exact text, else a letter (A-J, not yet checked against the option count)."""
    body = _LEADING_NOISE.sub("", rest)
    said = _TRAILING_NOISE.sub("", body).strip().casefold()
    for i, opt in enumerate(options):
        if said and said == opt.strip().rstrip(".").casefold():
            return LETTERS[i]
    m = re.match(r"([A-Ja-j])(?![A-Za-z0-9])(.*)", body)
    if m:
        letter, after = m.group(1), m.group(2)
        # A bare lower-case letter is only a letter if nothing but markup follows ("answer is a rare...").
        if letter.isupper() or after.startswith(")") or not re.sub(r"[\s*_`.!)\]]", "", after):
            return letter.upper()
    return None


def stated_answer(text: str, options: Sequence[str]) -> str | None:
    """The letter the CoT finally commits to, or None.

    The last ``Final answer ...`` statement decides; without one, the last
    ``Answer: ...`` / ``the answer is ...``.  A letter beyond the options gives None.
    """
    found: dict[bool, str] = {}
    for m in _ANSWER_HEAD.finditer(text):
        line_end = text.find("\n", m.end())
        rest = text[m.end() : line_end if line_end >= 0 else len(text)]
        if not rest.strip(" \t*_`") and line_end >= 0:  # "Final answer:" then the answer on the next line
            nxt = re.match(r"\s*([^\n]*)", text[line_end:])
            rest = nxt.group(1) if nxt else ""
        token = _answer_token(rest, options)
        if token is not None:
            found[m.group("final") is not None] = token
    letter = found.get(True) or found.get(False)
    if letter is None or LETTERS.index(letter) >= len(options):
        return None
    return letter
