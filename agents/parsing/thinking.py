"""Reasoning models' thinking: ``<think>`` blocks (DeepSeek-R1 and its distills, QwQ) and
``## Thinking`` / ``## Final Response`` sections (HuatuoGPT-o1), moved aside and put back.

The CoT the method keeps for such a model is its whole reasoning: the thinking, then
the visible conclusion, with every tag removed (``compose_cot``, ``thinking = "keep"``).
"""

from __future__ import annotations

import re
from typing import Literal

ThinkingMode = Literal["keep", "drop"]
THINKING_MODES: tuple[str, ...] = ("keep", "drop")

_OPEN = re.compile(r"<(?:think|thinking)>", re.I)
_CLOSE = re.compile(r"</(?:think|thinking)>", re.I)
_ANY_TAG = re.compile(r"[ \t]*</?(?:think|thinking)>[ \t]*\n?", re.I)
_TAG = re.compile(r"</?(?:think|thinking)>", re.I)  # ``_ANY_TAG`` without its blanks: starts at a "<", so fast
_THINKING_HEADER = re.compile(r"\A\s*##[ \t]*thinking[ \t]*:?[ \t]*(?:\n|\Z)", re.I)
_NEXT_HEADER = re.compile(r"^##[ \t]", re.M)
_FINAL_RESPONSE_HEADER = re.compile(r"\A##[ \t]*final[ \t]+response[ \t]*:?[ \t]*\n?", re.I)


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
    thinking = "\n\n".join(strip_think_tags(t) for t in thoughts if strip_think_tags(t))
    return thinking, strip_think_tags(shown)


def strip_think_tags(text: str) -> str:
    """``text`` with every ``<think>`` / ``</think>`` tag removed (a nested or stray one included), stripped."""
    if "<" not in text or _TAG.search(text) is None:  # most texts have no tag: skip the slow substitution
        return text.strip()
    return _ANY_TAG.sub("\n", text).strip()


def compose_cot(thinking: str, visible: str, mode: ThinkingMode = "keep") -> str:
    """The CoT kept for a path: ``keep`` = the thinking, then the visible conclusion; ``drop`` = the visible part.

    With ``drop``, an answer that is all thinking (nothing after it) keeps the thinking: a CoT is never empty
    because a model put everything inside its tags."""
    if mode not in THINKING_MODES:
        raise ValueError(f"thinking must be one of {', '.join(THINKING_MODES)}, got {mode!r}")
    thinking, visible = strip_think_tags(thinking), strip_think_tags(visible)
    if mode == "drop" and visible:
        return visible
    return "\n\n".join(part for part in (thinking, visible) if part)
