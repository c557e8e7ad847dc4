"""Queries about runs, their bookkeeping and the ``meta`` table."""

from __future__ import annotations

from dataclasses import dataclass

from reasonmed_async.store.checkpoint import CheckpointStore


@dataclass(frozen=True)
class RunInfo:
    id: str
    status: str
    input_path: str
    questions: int


# -- runs -----------------------------------------------------------------------
async def runs(store: CheckpointStore) -> list[RunInfo]:
    """Every run of the database, oldest first."""
    rows = await store.query("SELECT id, status, input_path, questions FROM runs ORDER BY created_at")
    return [RunInfo(*row) for row in rows]


async def run_info(store: CheckpointStore, run_id: str) -> RunInfo | None:
    rows = await store.query("SELECT id, status, input_path, questions FROM runs WHERE id=?", (run_id,))
    return RunInfo(*rows[0]) if rows else None


async def latest_config_text(store: CheckpointStore, *, unfinished: bool) -> str | None:
    """The TOML a run was started with: the latest unfinished run's (or, with ``unfinished=False``, the latest's)."""
    where = "WHERE status='running'" if unfinished else ""
    rows = await store.query(f"SELECT config_json FROM runs {where} ORDER BY created_at DESC LIMIT 1")
    return rows[0][0] if rows else None


async def unfinished_run_digests(store: CheckpointStore) -> list[tuple[str, str]]:
    """(run id, config digest) of every unfinished run."""
    return [(r[0], r[1]) for r in await store.query("SELECT id, config_digest FROM runs WHERE status='running'")]


async def run_span(store: CheckpointStore) -> tuple[float | None, float | None, bool]:
    """(first start, last finish, whether every run is finished) over all runs."""
    ((started, unfinished, last),) = await store.query(
        "SELECT MIN(created_at), SUM(status != 'finished'), MAX(finished_at) FROM runs")
    return started, last, not unfinished


async def last_activity(store: CheckpointStore) -> float | None:
    """When the journal last took a message (the newest one's time)."""
    rows = await store.query("SELECT created_at FROM messages ORDER BY seq DESC LIMIT 1")
    return float(rows[0][0]) if rows else None


# -- meta -----------------------------------------------------------------------
async def meta_value(store: CheckpointStore, key: str) -> str | None:
    """One value of the ``meta`` table (a shard's fingerprint lives under ``shard:<run id>``)."""
    rows = await store.query("SELECT value FROM meta WHERE key=?", (key,))
    return rows[0][0] if rows else None




async def meta_values(store: CheckpointStore, prefix: str) -> dict[str, str]:
    """Every ``meta`` value whose key starts with ``prefix`` (the open circuits: ``circuit_open:<model>``)."""
    rows = await store.query("SELECT key, value FROM meta WHERE substr(key, 1, ?) = ? ORDER BY key",
                             (len(prefix), prefix))
    return {r[0][len(prefix):]: r[1] for r in rows}


async def config_override(store: CheckpointStore, prefix: str) -> tuple[str, str] | None:
    """(run id, text) of the corrected config ``resume --config`` stored (meta ``<prefix><run id>``) for the
    latest unfinished run, if it has one."""
    rows = await store.query("SELECT r.id, m.value FROM runs r JOIN meta m ON m.key = ? || r.id"
                             " WHERE r.status='running' ORDER BY r.created_at DESC LIMIT 1", (prefix,))
    return (rows[0][0], rows[0][1]) if rows else None
