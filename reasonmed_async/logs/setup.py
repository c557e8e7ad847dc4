"""Structured logging: JSON lines to a rotating file beside the database, short lines on the console.

Context: the bus binds ``run``, ``question`` and ``agent`` (structlog
contextvars) around the handling of each message, and the LLM layer binds
``model``, ``stage`` and ``attempt`` around each call, so every line logged
meanwhile (by agents, the retry layer, a backend) carries them.

Events of note: ``llm.call`` (info: model, endpoint, backend, stage,
latency_s, prompt_tokens, completion_tokens, cached, finish_reason) per
completed LLM call; ``llm.retry`` / ``llm.failed`` (info: model, stage,
attempt, error); ``handler.error`` (warning: attempt, error);
``handler.done`` (debug: ok, outputs, latency_s) per handled message.  The
file gets INFO and up, or ``$REASONMED_LOG_LEVEL`` (``debug`` adds
``handler.done``; below the lowest level a call costs next to nothing, and the
per-call events are not even built below the level of the handlers that would
write them: ``per_call_enabled``).  The file is written in batches, each line
at most ``FLUSH_INTERVAL_S`` (0.1 s) after it was logged, and at shutdown.
Per-call events stay off the console.  Payloads, prompts and completions are
never logged, and tracebacks carry no locals.

Every event goes through a ``Redactor`` as the last step before it is
rendered — after its traceback is rendered to text — which replaces any
configured secret (the values of the environment variables a config names for
its keys, and every key file's or token provider's value read during the run:
``register_secret``) wherever it appears: in nested values, in keys, in exception
messages, in the ``repr`` of other objects.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import msgspec
import structlog
import structlog.tracebacks

from bus.logcontext import merge_context

from reasonmed_async.logs.direct import DirectLines, stamp_iso_utc
from reasonmed_async.logs.filewriter import FLUSH_INTERVAL_S, BatchedJSONLinesFile, LineSink

REDACTED = "[REDACTED]"
# user:password@ (or token@) in a URL: the credentials go, scheme and host stay
URL_CREDENTIALS = re.compile(r"([a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s\"']+@")
LEVEL_ENV = "REASONMED_LOG_LEVEL"
# One line per LLM call or per handled message: in the file, not on the console (unless it shows DEBUG).
PER_CALL_EVENTS = frozenset({"llm.call", "handler.done"})
# Libraries that log every request at INFO: only their warnings are worth a line.
CHATTY_LOGGERS = ("httpx", "httpcore", "openai", "azure")
_PLAIN = (int, float, bool, type(None))
_SEQUENCES = (list, tuple, set, frozenset)


_encode_json = msgspec.json.Encoder(enc_hook=repr).encode  # other objects as their repr, like json's default


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets: list[str] = []
        self._needles: tuple[str, ...] = ()
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """More secrets to mask (a key read from a file, a token fetched during the run)."""
        self.secrets = sorted({*self.secrets, *(s for s in secrets if s and len(s) >= 4)}, key=len, reverse=True)
        # a secret as it reads inside a JSON string: what the quick check looks for
        self._needles = tuple({n for s in self.secrets for n in (s, _encode_json(s).decode()[1:-1])})

    def found_in(self, text: str) -> bool:
        """Whether ``text`` (an encoded line) holds a secret as a JSON string would spell it: the quick check."""
        for needle in self._needles:  # a loop, not ``any`` over a generator: this runs once per log line
            if needle in text:
                return True
        return False

    def _str(self, value: str) -> str:
        if "@" in value and "://" in value:
            value = URL_CREDENTIALS.sub(r"\1[REDACTED]@", value)
        for secret in self.secrets:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value

    def scrub(self, value: Any) -> Any:
        if isinstance(value, str):
            return self._str(value)
        if isinstance(value, _PLAIN):
            return value
        if isinstance(value, dict):
            return {self.scrub(k): self.scrub(v) for k, v in value.items()}
        if isinstance(value, _SEQUENCES):
            items = [self.scrub(v) for v in value]
            return type(value)(items) if type(value) in _SEQUENCES else items  # a namedtuple becomes a list
        text = repr(value)  # what the JSON renderer would write for it (an exception, say)
        scrubbed = self._str(text)
        return value if scrubbed == text else scrubbed

    def __call__(self, _logger: Any, _name: str, event: dict[str, Any]) -> dict[str, Any]:
        if not self.secrets:  # URLs with credentials are refused when the config loads; this is a second net
            return event
        try:  # the quick check: one encoding of the whole event, searched; most events hold no secret
            text = _encode_json(event).decode()
        except Exception:  # noqa: BLE001 - what it cannot encode, it scrubs the slow way
            return self.scrub(event)
        if "@" in text and URL_CREDENTIALS.search(text):
            return self.scrub(event)
        return self.scrub(event) if self.found_in(text) else event


class _QuietOnConsole(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        return not (isinstance(msg, dict) and msg.get("event") in PER_CALL_EVENTS)


class _Formatter(structlog.stdlib.ProcessorFormatter):
    """A structlog event is rendered straight from its dict: none of the base class's copy of the
    record and %-formatting, which cost more than the rendering itself.  Other records as before."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        meta = structlog.stdlib.ProcessorFormatter.remove_processors_meta  # the keys only the slow path adds
        self._direct = [p for p in self.processors if p is not meta]

    def format(self, record: logging.LogRecord) -> str:
        logger, name = getattr(record, "_logger", None), getattr(record, "_name", None)
        if logger is None or name is None or not isinstance(record.msg, dict):
            return super().format(record)
        event: Any = dict(record.msg)  # a copy: other handlers get the same record
        for processor in self._direct:
            event = processor(logger, name, event)
        return event


def _structured_exceptions() -> Any:
    """Tracebacks as structured data without locals: they would hold prompts and keys."""
    return structlog.processors.ExceptionRenderer(structlog.tracebacks.ExceptionDictTransformer(show_locals=False))


class _RedactedJSON:
    """The file's last step: the event as one JSON line, with the redactor's quick check done on that very
    line (one encoding per event, not two); an event holding a secret is scrubbed and encoded again."""

    def __init__(self, redactor: Redactor) -> None:
        self.redactor = redactor

    def __call__(self, logger: Any, name: str, event: dict[str, Any]) -> str:
        try:
            line = _encode_json(event).decode()
        except Exception:  # noqa: BLE001 - what it cannot encode, the redactor scrubs the slow way
            return _encode_json(self.redactor.scrub(event)).decode()
        if self.redactor.found_in(line):
            return _encode_json(self.redactor.scrub(event)).decode()
        return line


_per_call_level = logging.NOTSET  # below it no handler would write a per-call event; NOTSET until configured
_call_logger: Any = None  # the "llm" logger bound once per configure(): no lazy proxy resolved per call


def per_call_enabled(level: int = logging.INFO) -> bool:
    """Whether a per-call event (``PER_CALL_EVENTS``) at ``level`` would reach any handler: the caller
    checks it before building the event, so below the effective level a call costs one comparison."""
    return level >= _per_call_level


def per_call_logger(level: int = logging.INFO) -> Any:
    """The logger for per-call events, or None when one at ``level`` would reach no handler."""
    if level < _per_call_level:
        return None
    return _call_logger if _call_logger is not None else structlog.get_logger("llm")


_registered: set[str] = set()  # secrets read at run time (key files, tokens): every configuration masks them
_redactors: list[Redactor] = []  # the configuration in force


def register_secret(secret: str) -> None:
    """Mask ``secret`` in every log line from now on, in this configuration and any later one."""
    if secret and secret not in _registered:
        _registered.add(secret)
        for redactor in _redactors:
            redactor.add([secret])


def registered_secrets() -> list[str]:
    return sorted(_registered)


def log_path_for(db: str | Path) -> Path:
    return Path(f"{db}.log")


def _env_level() -> int:
    level = logging.getLevelName(os.environ.get(LEVEL_ENV, "info").strip().upper())
    return level if isinstance(level, int) else logging.INFO


def configure_for(config: Any, db: str | Path, *, secrets: Iterable[str] = ()) -> None:
    """Logging as a command sets it up: ``<db>.log`` with the config's ``[logging]`` table."""
    settings = getattr(config, "logging", {}) or {}
    level = settings.get("level")
    configure(log_file=log_path_for(db), secret_envs=config.secret_env_names(), secrets=secrets,
              max_bytes=int(settings.get("max_bytes", 50_000_000)), backups=int(settings.get("backups", 5)),
              file_level=None if level is None else logging.getLevelName(str(level).upper()))


def configure(*, log_file: Path | None, secret_envs: Iterable[str] = (), console_level: int = logging.INFO,
              max_bytes: int = 50_000_000, backups: int = 5, secrets: Iterable[str] = (),
              file_level: int | None = None) -> None:
    """``file_level`` defaults to ``$REASONMED_LOG_LEVEL`` (info); ``debug`` adds ``handler.done``."""
    global _per_call_level, _call_logger
    file_level = _env_level() if file_level is None else file_level
    redactor = Redactor([*(os.environ.get(name, "") for name in secret_envs), *secrets, *_registered])
    _redactors[:] = [redactor]
    shared = [
        merge_context,  # ``bus.logcontext``'s keys, then any bound through structlog's own API
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        stamp_iso_utc,  # TimeStamper(fmt="iso", utc=True)'s text, the date formatted once a second
    ]
    lowest = min(console_level, file_level) if log_file is not None else console_level
    # per-call events reach the console only when it shows DEBUG, the file at its own level
    console_calls = console_level if console_level <= logging.DEBUG else logging.CRITICAL + 1
    _per_call_level = min(console_calls, file_level) if log_file is not None else console_calls
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        wrapper_class=structlog.make_filtering_bound_logger(lowest),  # below it, a call costs next to nothing
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(lowest)  # below every handler's level a library's call stops at isEnabledFor
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(console_level)
    if console_level > logging.DEBUG:
        console.addFilter(_QuietOnConsole())
    console.setFormatter(_Formatter(
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,  # the traceback as text, so the redactor sees it
                    redactor,
                    structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(),
                                                  exception_formatter=structlog.dev.plain_traceback)],
        foreign_pre_chain=shared,
    ))
    root.addHandler(console)
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        handler = BatchedJSONLinesFile(log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        handler.setLevel(file_level)
        handler.setFormatter(_Formatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        _structured_exceptions(),
                        _RedactedJSON(redactor)],
            foreign_pre_chain=shared,
        ))
        root.addHandler(handler)
    _call_logger = structlog.get_logger("llm").bind()  # resolved now, against this configuration
    if log_file is not None and console_level > logging.DEBUG:  # per-call events reach the file alone: straight there
        sink, render = LineSink(handler, "llm"), _RedactedJSON(redactor)
        _call_logger = DirectLines(sink, file_level, render, fallback=structlog.wrap_logger(
            sink, wrapper_class=structlog.make_filtering_bound_logger(file_level),
            processors=[*shared, _structured_exceptions(), render]).bind())


def flush() -> None:
    """Write every buffered line now (the file handler batches them for up to ``FLUSH_INTERVAL_S``)."""
    for handler in logging.getLogger().handlers:
        handler.flush()
