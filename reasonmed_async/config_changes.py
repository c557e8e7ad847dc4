"""Which configuration keys may change under a run, and which would change its data: one table.

``resume --config FILE`` may correct how the run reaches its models (endpoint
URLs, the names of the environment variables holding keys, concurrency, rate
limits, retry settings, timeouts) and how it is run (store, logging, budget
caps, prices); every other key — models, sampling, templates, tiers, flow,
gates, input limits, a backend's type — decides what the data *is*, and a change
to one is refused.  The same table decides the run's identity: ``identity`` is
a configuration without its safe keys, which ``AppConfig.digest`` hashes, so a
run started with a wrong URL and one started with the right URL are the same run
(the same run id, the same export).

Pure: the callers pass the parsed TOML (``tomllib``) or the typed file as builtins.
Rules are dotted key paths, ``*`` standing for one name (a backend, a model, a
deployment); the first rule that matches a key decides; a key no rule names is
data-changing (a new key is refused until someone decides otherwise here).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any


class Kind(Enum):
    SAFE = "safe"    # may change under a run: how it reaches its models, how it is run
    DATA = "data"    # changes what the run produces: refused on resume, part of the run's identity


_ENDPOINT = ("base_url", "base_urls", "endpoint", "api_version", "api_key_env", "api_key_file", "auth", "entra_scope")
_LIMITS = ("timeout_s", "max_concurrency", "max_num_seqs", "replicas", "adaptive", "initial_concurrency",
           "eject_after", "cooloff_s", "eject_last")

#: (dotted pattern, kind), first match wins; unmatched keys are ``Kind.DATA``
RULES: tuple[tuple[str, Kind], ...] = (
    *((f"backends.*.{key}", Kind.SAFE) for key in (*_ENDPOINT, *_LIMITS)),
    *((f"backends.*.deployments.*.{key}", Kind.SAFE) for key in ("rpm", "tpm", "burst_s", "window_s")),
    ("backends.*.latency_ms", Kind.SAFE),  # sim: the mean latency it simulates
    ("backends.*.call_log", Kind.SAFE),    # sim: where it logs its calls
    ("concurrency.*", Kind.SAFE),
    ("retry.*", Kind.SAFE),
    ("store.*", Kind.SAFE),
    ("logging.*", Kind.SAFE),
    ("budget.*", Kind.SAFE),
    ("models.*.price_in", Kind.SAFE),
    ("models.*.price_out", Kind.SAFE),
)

SAFE_SUMMARY = ("endpoint URLs, api_key_env / api_key_file / auth, api_version, timeouts, concurrency, rate limits (rpm/tpm), [retry],"
                " [store], [logging], [budget] and prices")


def kind_of(key: str) -> Kind:
    """The kind of one dotted key (``backends.local.base_urls``, ``generation.temperatures``)."""
    parts = key.split(".")
    for pattern, kind in RULES:
        wanted = pattern.split(".")
        if len(wanted) == len(parts) and all(w in ("*", p) for w, p in zip(wanted, parts)):
            return kind
        if wanted[-1] == "*" and len(parts) >= len(wanted) and all(
                w in ("*", p) for w, p in zip(wanted, parts)):
            return kind  # a trailing ``*`` covers a whole section, however deep
    return Kind.DATA


def flatten(table: Mapping[str, Any], prefix: str = "") -> Iterator[tuple[str, Any]]:
    """(dotted key, value) of every leaf; a list is one leaf (its order is part of the value); an empty
    table is no leaf (``[retry]`` with nothing under it says nothing)."""
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            yield from flatten(value, key + ".")
        else:
            yield key, value


_ABSENT = object()


@dataclass(frozen=True)
class KeyChange:
    key: str
    before: Any
    after: Any
    kind: Kind

    def describe(self) -> str:
        return f"{self.key} ({_show(self.before)} -> {_show(self.after)})"


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[KeyChange]:
    """Every leaf that differs between two configurations (added and removed keys included), in key order."""
    old, new = dict(flatten(before)), dict(flatten(after))
    return [KeyChange(key, old.get(key, _ABSENT), new.get(key, _ABSENT), kind_of(key))
            for key in sorted(old.keys() | new.keys()) if old.get(key, _ABSENT) != new.get(key, _ABSENT)]


def data_changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[KeyChange]:
    return [c for c in changes(before, after) if c.kind is Kind.DATA]


def identity(table: Mapping[str, Any]) -> dict[str, Any]:
    """``table`` without its safe keys (and without tables left empty): what a run's data depends on."""
    return _strip(table, "")


def _strip(table: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    kept: dict[str, Any] = {}
    for name, value in table.items():
        key = f"{prefix}{name}"
        if isinstance(value, Mapping):
            inner = _strip(value, key + ".")
            if inner:
                kept[name] = inner
        elif kind_of(key) is Kind.DATA:
            kept[name] = value
    return kept


def _show(value: Any) -> str:
    if value is _ABSENT:
        return "absent"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
