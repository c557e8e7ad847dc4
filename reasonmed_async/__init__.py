"""reasonmed-async: the application around the agents.

Rooms: ``config`` and ``pipeline`` (the wiring), ``cli`` (the command), ``store/``
(the SQLite checkpoint store), ``llm/`` (clients, retries, cache, backends),
``loaders/`` (question files), ``reports/`` (exports, status, scores),
``daemon/`` (the service) and ``logs/`` (structured logging).

The façade is lazy: ``import reasonmed_async`` loads nothing of the rooms until
a name is used, so a module that needs only the retry policy never loads
sqlite3, aiohttp or vLLM.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "AppConfig": "reasonmed_async.config",
    "ConfigError": "reasonmed_async.config",
    "load_config": "reasonmed_async.config",
    "parse_config": "reasonmed_async.config",
    "export": "reasonmed_async.reports.export",
    "InputError": "reasonmed_async.loaders.errors",
    "load_questions": "reasonmed_async.loaders.dispatch",
    "Pipeline": "reasonmed_async.pipeline",
    "RunConflict": "reasonmed_async.pipeline",
    "CheckpointStore": "reasonmed_async.store.checkpoint",
    "StoreError": "reasonmed_async.store.sql",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'reasonmed_async' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
