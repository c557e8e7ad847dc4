"""Per-call events straight into the log file: the line structlog's chain would write, for a third of its CPU.

One ``llm.call`` line per LLM call is the hottest log event (thousands a second over HTTP).
``DirectLines`` writes it as the file's structlog chain does — the event's keys in call order, then
``event``, the context-local keys (``bus.logcontext.merge_context``, the same function), ``level``, ``logger``
and ``timestamp``; one JSON encoding, the redactor's check on that line (``_RedactedJSON``) — into the
batched file writer, without structlog's bound-logger dispatch and its generic processors.  An event
carrying an exception goes through the structlog chain (``fallback``), which renders tracebacks.

``iso_utc_now`` is structlog's ``TimeStamper(fmt="iso", utc=True)`` text (``2026-12-02T07:14:25.586329Z``,
no fraction on a whole second, as ``datetime.isoformat`` writes it) with the date and time of day
formatted once a second instead of on every line; ``stamp_iso_utc`` is it as a processor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from bus.logcontext import merge_context

from reasonmed_async.logs.filewriter import LineSink

_second: tuple[int, str] = (-1, "")  # (unix second, its "YYYY-MM-DDTHH:MM:SS."): one tuple, swapped whole


def iso_utc_now() -> str:
    global _second
    micros = time.time_ns() // 1000
    seconds = micros // 1_000_000
    cached = _second
    if cached[0] != seconds:
        cached = _second = (seconds, time.strftime("%Y-%m-%dT%H:%M:%S.", time.gmtime(seconds)))
    micros -= seconds * 1_000_000
    if not micros:  # a whole second: no fraction, as isoformat writes it
        return cached[1][:-1] + "Z"
    return cached[1] + str(micros + 1_000_000)[1:] + "Z"  # the six digits, zero-padded, without a format spec


def stamp_iso_utc(_logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
    event["timestamp"] = iso_utc_now()
    return event


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR,
           "critical": logging.CRITICAL}


class DirectLines:
    """A logger for per-call events (``info`` / ``debug`` / ...) writing to ``sink`` at ``level`` and up."""

    def __init__(self, sink: LineSink, level: int, render: Callable[[Any, str, dict[str, Any]], str],
                 fallback: Any) -> None:
        self.sink, self.level, self.render, self.fallback = sink, level, render, fallback
        for name, number in _LEVELS.items():
            if number < level:
                setattr(self, name, _ignore)  # below the level a call costs next to nothing, as structlog's

    def _line(self, method: str, event: str, kw: dict[str, Any]) -> None:
        if "exc_info" in kw:  # a traceback to render: structlog's chain does it
            getattr(self.fallback, method)(event, **kw)
            return
        kw["event"] = event
        merge_context(None, method, kw)
        kw["level"] = method
        kw["logger"] = self.sink.name
        kw["timestamp"] = iso_utc_now()
        self.sink.msg(self.render(self.sink, method, kw))

    def debug(self, event: str, **kw: Any) -> None:
        self._line("debug", event, kw)

    def info(self, event: str, **kw: Any) -> None:
        self._line("info", event, kw)

    def warning(self, event: str, **kw: Any) -> None:
        self._line("warning", event, kw)

    def error(self, event: str, **kw: Any) -> None:
        self._line("error", event, kw)

    def critical(self, event: str, **kw: Any) -> None:
        self._line("critical", event, kw)


def _ignore(*_args: Any, **_kw: Any) -> None:
    return None
