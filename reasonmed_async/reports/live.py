"""What the driving process alone knows, written for ``status``: calls on the wire, waits, open circuits.

``publish`` writes a snapshot (``calls_out``: requests out on the wire, requests queued in a
backend, attempts waiting to be sent again; handlers busy) into ``meta`` key ``live`` whenever it
changes, at most once a ``every_s``; ``status`` shows it only while a process drives the
database.  An open circuit is recorded by ``FailedAttempts`` (``circuit_open:<model>``) and
stays open until a process drives the run again (``forget_open_circuits``: a new process
starts with every circuit closed).
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any

from reasonmed_async.llm.cache import OPEN_CIRCUIT_PREFIX
from reasonmed_async.pipeline import Pipeline
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore

LIVE_KEY = "live"


async def publish(pipeline: Pipeline, every_s: float = 1.0) -> None:
    """Until cancelled: the gauge's snapshot into the database each time it changes (rate-limited)."""
    gauge = pipeline.gauge
    while True:
        await gauge.changed.wait()
        gauge.changed.clear()
        snapshot = {**calls_out(pipeline), "handlers_busy": sum(s.in_flight for s in pipeline.bus.stats.values()),
                    "pid": os.getpid(), "at": time.time()}
        await pipeline.store.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                                     (LIVE_KEY, json.dumps(snapshot, sort_keys=True)))
        await asyncio.sleep(every_s)  # a rate limit on writes, not a poll: nothing is written without a change


def calls_out(pipeline: Pipeline) -> dict[str, int]:
    """``in_flight``: requests sent and not yet answered — a backend that counts its own (the OpenAI-compatible
    replicas' outstanding requests) is asked, for the others what the gauge saw handed to them; ``queued``:
    handed to a backend that has not sent them yet (waiting for a replica slot); ``backing_off``: waiting
    to be sent again."""
    gauge, wire, handed = pipeline.gauge, 0, 0
    for name, backend in pipeline.backends.items():
        models = [m for m, b in pipeline.config.model_backends.items() if b == name]
        given = sum(gauge.on_wire[m] for m in models)
        stats = getattr(backend, "replica_stats", None)
        wire += min(given, sum(int(r["outstanding"]) for r in stats())) if stats is not None else given
        handed += given
    return {"in_flight": wire, "queued": handed - wire, "backing_off": sum(gauge.backing_off.values())}


async def forget_open_circuits(store: CheckpointStore) -> None:
    """A process starts driving: its circuits are closed (and the last process's snapshot is stale)."""
    await store.execute("DELETE FROM meta WHERE substr(key, 1, ?) = ? OR key = ?",
                        (len(OPEN_CIRCUIT_PREFIX), OPEN_CIRCUIT_PREFIX, LIVE_KEY))


async def open_circuits(store: CheckpointStore) -> list[dict[str, Any]]:
    """[{model, endpoint, error}] of every circuit open now (the error's class, e.g. ``AuthError 401``)."""
    found = await queries.meta_values(store, OPEN_CIRCUIT_PREFIX)
    return [{"model": model, **{k: v for k, v in json.loads(text).items() if k in ("endpoint", "error")}}
            for model, text in found.items()]


async def live_snapshot(store: CheckpointStore) -> dict[str, Any] | None:
    text = await queries.meta_value(store, LIVE_KEY)
    return json.loads(text) if text else None
