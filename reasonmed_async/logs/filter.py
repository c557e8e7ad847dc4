"""Choosing and rendering the structured log's events: pure functions, no I/O.

An event is one JSON object of the log (``timestamp``, ``level``, ``event``,
``logger`` and whatever context it carries: run, question, agent, stage,
model, endpoint, attempt, latency_s, tokens, ...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

LEVELS = {"debug": 10, "info": 20, "warn": 30, "warning": 30, "error": 40, "exception": 40,
          "critical": 50, "fatal": 50}
DEFAULT_LEVEL = LEVELS["info"]  # an event without a (known) level
# Shown first, in this order; the rest follow sorted by name.
CONTEXT_ORDER = ("run", "question", "agent", "stage", "model", "endpoint", "attempt", "latency_s",
                 "prompt_tokens", "completion_tokens", "cached")
_NOT_CONTEXT = frozenset({"timestamp", "level", "event", "logger", "exception"})
MAX_VALUE_CHARS = 200


def parse_level(name: str) -> int:
    """A level name (``info``, ``WARNING``, ...) as a number; ValueError for an unknown one."""
    try:
        return LEVELS[name.strip().lower()]
    except KeyError:
        raise ValueError(f"unknown level {name!r} (one of debug, info, warning, error, critical)") from None


@dataclass(frozen=True)
class Filter:
    """Which events to show: ``agent`` and ``question`` exact; ``min_level`` a minimum;
    ``event`` exact, or a prefix when it ends with ``*`` (``llm.*``)."""

    agent: str | None = None
    question: str | None = None
    min_level: int = 0
    event: str | None = None

    @property
    def empty(self) -> bool:
        return self.agent is None and self.question is None and self.min_level <= 0 and self.event is None

    def __call__(self, event: dict[str, Any]) -> bool:
        if self.agent is not None and event.get("agent") != self.agent:
            return False
        if self.question is not None and event.get("question") != self.question:
            return False
        if self.min_level > 0 and level_of(event) < self.min_level:
            return False
        if self.event is not None:
            name = str(event.get("event", ""))
            if self.event.endswith("*"):
                return name.startswith(self.event[:-1])
            return name == self.event
        return True


def level_of(event: dict[str, Any]) -> int:
    level = event.get("level")
    return LEVELS.get(level.lower(), DEFAULT_LEVEL) if isinstance(level, str) else DEFAULT_LEVEL


def parse_line(line: str) -> dict[str, Any] | None:
    """The event on one line, or None when the line is not a JSON object."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _value(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        text = json.dumps(value)
    elif isinstance(value, (int, float)):
        text = repr(value)
    elif isinstance(value, str):
        plain = value and not any(c.isspace() or c in '="\'' for c in value)
        text = value if plain else json.dumps(value, ensure_ascii=False)
    else:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)
    return text if len(text) <= MAX_VALUE_CHARS else text[: MAX_VALUE_CHARS - 1] + "…"


def _exception(value: Any) -> str:
    """The last exception of a ``dict_tracebacks`` list as ``Type: message``; other forms as they are."""
    if isinstance(value, list) and value and isinstance(value[-1], dict):
        last = value[-1]
        return f"{last.get('exc_type', '?')}: {last.get('exc_value', '')}"
    return str(value).strip().splitlines()[-1] if str(value).strip() else ""


def pretty(event: dict[str, Any]) -> str:
    """One compact line: time, level, event, then key=value of the context."""
    ts = str(event.get("timestamp", ""))
    if len(ts) >= 19 and ts[10:11] == "T":
        ts = ts[:10] + " " + ts[11:23]  # date and time to the millisecond
    level = str(event.get("level", "")).lower()
    head = f"{ts} {level:<7} {event.get('event', '')!s:<18}"
    keys = [k for k in CONTEXT_ORDER if k in event]
    keys += sorted(k for k in event if k not in _NOT_CONTEXT and k not in CONTEXT_ORDER)
    parts = [head, *(f"{k}={_value(event[k])}" for k in keys)]
    if "exception" in event:
        parts.append(f"exception={_value(_exception(event['exception']))}")
    return " ".join(parts).strip()
