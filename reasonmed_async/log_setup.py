"""Structured logging: JSON lines to a rotating file beside the database, short lines on the console.

Context: the bus binds ``run``, ``question`` and ``agent`` (structlog
contextvars) around the handling of each message, and the LLM layer binds
``model``, ``stage`` and ``attempt`` around each call, so every line logged
meanwhile (by agents, the retry layer, a backend) carries them.

Events of note (the file gets INFO and up): ``handler.done`` (agent, ok,
outputs, latency_s) per handled message; ``handler.error`` (attempt, error);
``llm.call`` (model, endpoint, backend, stage, latency_s, prompt_tokens,
completion_tokens, cached, finish_reason) per completed LLM call;
``llm.retry`` / ``llm.failed`` (model, stage, attempt, error).  Payloads,
prompts and completions are never logged, and tracebacks carry no locals.

Every event goes through a ``Redactor`` as the last step before it is
rendered — after its traceback is rendered to text — which replaces any
configured secret (the values of the environment variables a config names for
its keys) wherever it appears: in nested values, in keys, in exception
messages, in the ``repr`` of other objects.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import structlog
import structlog.tracebacks

REDACTED = "[REDACTED]"
# One line per LLM call or per handled message: in the file, not on the console (unless it shows DEBUG).
PER_CALL_EVENTS = frozenset({"llm.call", "handler.done"})
# Libraries that log every request at INFO: only their warnings are worth a line.
CHATTY_LOGGERS = ("httpx", "httpcore", "openai")
_PLAIN = (int, float, bool, type(None))
_SEQUENCES = (list, tuple, set, frozenset)


class Redactor:
    def __init__(self, secrets: Iterable[str]) -> None:
        self.secrets = sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True)

    def _str(self, value: str) -> str:
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
        return self.scrub(event) if self.secrets else event


class _QuietOnConsole(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.msg
        return not (isinstance(msg, dict) and msg.get("event") in PER_CALL_EVENTS)


def log_path_for(db: str | Path) -> Path:
    return Path(f"{db}.log")


def configure(*, log_file: Path | None, secret_envs: Iterable[str] = (), console_level: int = logging.INFO,
              max_bytes: int = 50_000_000, backups: int = 5, secrets: Iterable[str] = ()) -> None:
    redactor = Redactor([*(os.environ.get(name, "") for name in secret_envs), *secrets])
    shared = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        cache_logger_on_first_use=False,
    )
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    root.setLevel(logging.DEBUG)
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(console_level)
    if console_level > logging.DEBUG:
        console.addFilter(_QuietOnConsole())
    console.setFormatter(structlog.stdlib.ProcessorFormatter(
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
        handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=max_bytes, backupCount=backups,
                                                       encoding="utf-8")
        handler.setLevel(logging.INFO)
        handler.setFormatter(structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        # structured tracebacks without locals: they would hold prompts and keys
                        structlog.processors.ExceptionRenderer(
                            structlog.tracebacks.ExceptionDictTransformer(show_locals=False)),
                        redactor,
                        structlog.processors.JSONRenderer()],
            foreign_pre_chain=shared,
        ))
        root.addHandler(handler)


def shutdown() -> None:
    logging.shutdown()
