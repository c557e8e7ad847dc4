"""Queries about what happened: deliveries, tiers, failures, gates, records, call accounting."""

from __future__ import annotations

from bus.vocabulary import Stage

from reasonmed_async.store.checkpoint import CheckpointStore
from reasonmed_async.store.queries.journal import PAGE, export_plan

# failures of these stages lose one path, not the question (the tierer decides what follows);
# "verifier" is the name the bus gives a failure of the verifier's subscription
_PATH_STAGES = (*(s.value for s in Stage if s.per_path), "verifier")
_NOT_PATH_STAGE = f"label NOT IN ({','.join('?' * len(_PATH_STAGES))})"

# -- deliveries -----------------------------------------------------------------
async def delivery_counts(store: CheckpointStore) -> list[tuple[str, str, int]]:
    """(consumer, state, count) in the order consumers first appeared."""
    rows = await store.query(
        "SELECT consumer, state, COUNT(*) FROM deliveries GROUP BY consumer, state ORDER BY MIN(message_seq)")
    return [(r[0], r[1], r[2]) for r in rows]


async def unsettled_questions(store: CheckpointStore, run_id: str | None = None) -> int:
    """Questions with something still pending (in one run, or in all)."""
    where, params = ("AND m.run_id=?", (run_id,)) if run_id else ("", ())
    ((n,),) = await store.query(
        "SELECT COUNT(*) FROM (SELECT DISTINCT m.run_id, m.question_id FROM delivery_rows d"
        f" JOIN messages m ON m.seq = d.message_seq WHERE d.state=0 {where})", params)  # (0: pending, v8's rows)
    return int(n)


async def pending_deliveries(store: CheckpointStore, run_id: str) -> int:
    ((n,),) = await store.query(
        "SELECT COUNT(*) FROM delivery_rows d JOIN messages m ON m.seq = d.message_seq"
        " WHERE d.state=0 AND m.run_id=?", (run_id,))
    return int(n)


# -- outcomes -------------------------------------------------------------------
async def tier_counts(store: CheckpointStore) -> dict[str, int]:
    """Questions per tier, a question that failed a stage after tiering counted in the failed row instead."""
    rows = await store.query(
        "SELECT label, COUNT(*) FROM messages WHERE type='TierAssigned' AND (run_id, question_id) NOT IN"
        f" (SELECT run_id, question_id FROM messages WHERE type='StageFailed' AND {_NOT_PATH_STAGE}"
        " AND label NOT LIKE 'gate:%')"  # a gate keeps a CoT out of the export; the question stays tiered
        " GROUP BY label", _PATH_STAGES)
    return {r[0]: r[1] for r in rows}


async def failed_deliveries(store: CheckpointStore) -> dict[str, int]:
    """Per consumer, the deliveries whose handling ended in a ``StageFailed`` — whether the bus made it
    (the delivery is marked failed) or the agent returned it (a lost path: the delivery is done)."""
    parents = [r[0] for r in await store.query(  # (on the rows: v8 names a parent by its seq, ``store/views.py``)
        "SELECT DISTINCT CASE typeof(f.parent) WHEN 'integer' THEN f.parent ELSE (SELECT p.seq FROM message_rows p"
        " WHERE p.id = f.parent) END FROM message_rows f WHERE f.type=(SELECT code FROM names WHERE name='StageFailed')")
        if r[0] is not None]
    counts: dict[str, int] = {}
    for start in range(0, len(parents), PAGE):
        chunk = parents[start : start + PAGE]
        rows = await store.query(
            f"SELECT consumer, COUNT(*) FROM deliveries WHERE message_seq IN ({','.join('?' * len(chunk))})"
            " AND state != 'pending' GROUP BY consumer", chunk)
        for consumer, n in rows:
            counts[consumer] = counts.get(consumer, 0) + n
    ((tier,),) = await store.query("SELECT COUNT(*) FROM messages WHERE type='StageFailed' AND label='tier'")
    if tier:  # the tierer's own failures (too few usable verdicts) answer the join, not one delivery
        counts["tierer"] = counts.get("tierer", 0) + tier
    return counts


async def ranker_fallbacks(store: CheckpointStore, run_id: str | None = None) -> int:
    """Questions whose ranker answers never parsed: they kept the first two correct paths (``Ranked.ranker``)."""
    where, params = ("AND run_id=?", (run_id,)) if run_id else ("", ())
    ((n,),) = await store.query(f"SELECT COUNT(*) FROM messages WHERE type='Ranked' AND label='fallback' {where}",
                                params)
    return int(n)


async def failed_questions(store: CheckpointStore, run_id: str | None = None) -> int:
    """Questions a stage failed for good (path-stage failures lose a path, not the question)."""
    where, params = ("AND run_id=?", (run_id,)) if run_id else ("", ())
    ((n,),) = await store.query(
        f"SELECT COUNT(DISTINCT question_id) FROM messages WHERE type='StageFailed' AND {_NOT_PATH_STAGE}"
        f" AND label NOT LIKE 'gate:%' {where}",
        (*_PATH_STAGES, *params))
    return int(n)


async def gate_counts(store: CheckpointStore) -> dict[str, int]:
    """CoTs each quality gate kept out of the export (``gate:<name>`` labels of StageFailed)."""
    rows = await store.query("SELECT label, COUNT(*) FROM messages WHERE type='StageFailed' AND label LIKE 'gate:%'"
                             " GROUP BY label ORDER BY label")
    return {r[0].removeprefix("gate:"): r[1] for r in rows}


async def record_count(store: CheckpointStore, run_id: str | None = None) -> int:
    """Records of one run; without ``run_id``, the records ``export`` writes (``export_plan``: each question
    from one run), so ``status`` and the export agree however many runs the database holds."""
    if run_id:
        ((n,),) = await store.query("SELECT COUNT(*) FROM records WHERE run_id=?", (run_id,))
        return int(n)
    per_pair = {(r[0], r[1]): r[2] for r in await store.query(
        "SELECT run_id, question_id, COUNT(*) FROM records GROUP BY run_id, question_id")}
    return sum(per_pair.get(pair, 0) for pair in await export_plan(store))


#: ``calls`` rows that count events rather than calls made (``llm/cache.py``: CACHED, RETRIED)
_EVENT_OUTCOMES = "('cached', 'retried')"


async def call_totals(store: CheckpointStore) -> list[tuple[str, str, str, int, int, int]]:
    """(stage, model, outcome, calls, prompt tokens, completion tokens) per stage, model and outcome."""
    rows = await store.query(
        "SELECT stage, model, outcome, SUM(calls), SUM(prompt_tokens), SUM(completion_tokens) FROM calls"
        f" WHERE outcome NOT IN {_EVENT_OUTCOMES} GROUP BY stage, model, outcome ORDER BY stage, model, outcome")
    return [(r[0], r[1], r[2], r[3], r[4], r[5]) for r in rows]


async def call_events(store: CheckpointStore) -> list[tuple[str, str, int]]:
    """(model, event, count): calls the cache answered (``cached``) and attempts sent again (``retried``)."""
    rows = await store.query(f"SELECT model, outcome, SUM(calls) FROM calls WHERE outcome IN {_EVENT_OUTCOMES}"
                             " GROUP BY model, outcome ORDER BY model, outcome")
    return [(r[0], r[1], int(r[2])) for r in rows]


