"""The context every log line carries — run, question, agent (the bus), model, stage, attempt (the LLM
layer) — held in one ``ContextVar``.

structlog's ``bind_contextvars`` keeps a ``ContextVar`` per key, so binding three keys around an LLM
attempt set three and resetting them three more, and its ``merge_contextvars`` walks every variable of
the context on every line: ~4 µs an LLM call in all, for lines that are mostly never written.  Here the
bound keys are one dict (never changed in place: a bind sets a new one, so a task's copy of the context
keeps its own), a bind is one dict merge and one ``set``, a reset one ``reset``, and a line's merge one
``get``.  ``merge_context`` is the logging chain's processor in place of structlog's: these keys, then any
bound through structlog's own API (``bound_contextvars``: tests, a library), so both kinds still reach
every line, in that order, the event's own keys first.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextvars import ContextVar, Token
from types import MappingProxyType
from typing import Any

import structlog.contextvars

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_BOUND: ContextVar[Mapping[str, Any]] = ContextVar("reasonmed_log_context", default=_EMPTY)
# The variables structlog's API has made (one per key ever bound through it: none in a run, where only
# this module binds).  A private name of structlog's, read only to skip its walk of the context while it
# is empty; if a structlog release drops it, its walk is always made (the lines stay the same).
_STRUCTLOG_VARS: Mapping[str, Any] | None = getattr(structlog.contextvars, "_CONTEXT_VARS", None)
_merge_structlog = structlog.contextvars.merge_contextvars


def bind_context(**keys: Any) -> Token[Mapping[str, Any]]:
    """Bind ``keys`` for every line logged in this context from now on; ``reset_context`` undoes it."""
    return _BOUND.set({**_BOUND.get(), **keys})


def reset_context(token: Token[Mapping[str, Any]]) -> None:
    """The context as it was before the ``bind_context`` that returned ``token``."""
    _BOUND.reset(token)


def bound_context() -> Mapping[str, Any]:
    """The keys bound here (through ``bind_context``), as a line would carry them."""
    return _BOUND.get()


def merge_context(logger: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
    """The structlog processor: the bound keys added to ``event`` where it has no such key of its own."""
    for key, value in _BOUND.get().items():
        if key not in event:
            event[key] = value
    if _STRUCTLOG_VARS is None or _STRUCTLOG_VARS:
        _merge_structlog(logger, method, event)
    return event
