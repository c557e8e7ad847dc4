"""Queries of the run report (reports/report/): through any reader, a read-only connection included."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from typing import Any, Protocol

from bus import Message

from reasonmed_async.store.reading import MESSAGE_COLUMNS
from reasonmed_async.store.queries.journal import PAGE


class Reader(Protocol):
    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    async def load(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[tuple[Any, ...], Message]]: ...


async def schema_version(db: Reader) -> int | None:
    rows = await db.query("SELECT value FROM meta WHERE key='schema_version'")
    return int(rows[0][0]) if rows else None


async def table_names(db: Reader) -> set[str]:
    return {r[0] for r in await db.query("SELECT name FROM sqlite_master WHERE type='table'")}


async def runs_in_full(db: Reader) -> list[tuple[Any, ...]]:
    """(id, status, questions, input, config digest, config text, started, finished) of every run, oldest first."""
    return await db.query("SELECT id, status, questions, input_path, config_digest, config_json, created_at,"
                          " finished_at FROM runs ORDER BY created_at")


async def question_count(db: Reader) -> int:
    ((n,),) = await db.query("SELECT COUNT(*) FROM questions")
    return int(n)


async def messages_of_types(db: Reader, types: Sequence[str]) -> AsyncIterator[Message]:
    """Every stored message of these types, in commit order, a page at a time."""
    marks, after = ",".join("?" * len(types)), 0
    # ``+type``: walk the journal in seq order and stop at a page; the type index would gather and sort every
    # later row of these types for each page
    while rows := await db.load(f"SELECT {MESSAGE_COLUMNS}, seq FROM messages WHERE +type IN ({marks}) AND seq>? "
                                "ORDER BY seq LIMIT ?", (*types, after, PAGE)):
        after = rows[-1][0][0]
        for _, message in rows:
            yield message


async def paid_call_times(db: Reader, bins: int) -> tuple[float | None, float, list[int]]:
    """(first stamp, bin width in s, calls per bin) of the response cache's entries: one per paid call."""
    ((lo, hi, n),) = await db.query("SELECT MIN(created_ms) / 1000.0, MAX(created_ms) / 1000.0, COUNT(*) FROM llm_cache")
    if not n:
        return None, 0.0, []
    width = max(hi - lo, 1e-6) / bins
    counts = [0] * bins
    for i, k in await db.query("SELECT MIN(CAST((created_ms / 1000.0 - ?) / ? AS INTEGER), ?), COUNT(*) FROM llm_cache"
                               " GROUP BY 1", (lo, width, bins - 1)):
        counts[int(i)] += k
    return lo, width, counts


async def all_scores(db: Reader) -> list[tuple[str, str, str, int]]:
    """(label, target id, scorer model, score) of every stored score."""
    return [(r[0], r[1], r[2], r[3]) for r in await db.query("SELECT label, target_id, model, score FROM scores")]


DECONTAM_META = "decontam"  # meta key: what the last ``reasonmed decontam`` compared against, as JSON


async def contamination_counts(db: Reader) -> dict[str, Any] | None:
    """What ``reasonmed decontam`` flagged: questions, and pairs per method; None if it never ran."""
    checked = await db.query("SELECT value FROM meta WHERE key=?", (DECONTAM_META,))
    if not checked:
        return None
    rows = await db.query("SELECT method, COUNT(*), COUNT(DISTINCT question_id) FROM contamination GROUP BY method"
                          " ORDER BY method")
    ((flagged,),) = await db.query("SELECT COUNT(DISTINCT question_id) FROM contamination")
    return {"flagged_questions": flagged, "checked": json.loads(checked[0][0]),
            "by_method": [{"method": m, "pairs": n, "questions": q} for m, n, q in rows]}


async def contaminated_questions(db: Reader) -> set[str]:
    """Question ids ``reasonmed decontam`` flagged (an empty set where it never ran)."""
    if "contamination" not in await table_names(db):
        return set()
    return {r[0] for r in await db.query("SELECT DISTINCT question_id FROM contamination")}
