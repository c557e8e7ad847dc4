"""Every read of the checkpoint schema outside the journal, in one place.

The journal (``checkpoint.py`` and ``sql.py``) reads what the bus needs to
deliver; everything else that looks into the database — status, progress,
jobs, export, scoring, the pipeline's run bookkeeping, the CLI — asks one of
these functions, so a schema change is made (and migrated) in one room.
Each function is one question about the database, answered from the store's
reader connection; none writes.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from bus import Message, StageFailed, decode
from bus.vocabulary import Stage

from reasonmed_async.store.checkpoint import CheckpointStore

PAGE = 512
# failures of these stages lose one path, not the question (the tierer decides what follows);
# "verifier" is the name the bus gives a failure of the verifier's subscription
_PATH_STAGES = (*(s.value for s in Stage if s.per_path), "verifier")
_NOT_PATH_STAGE = f"label NOT IN ({','.join('?' * len(_PATH_STAGES))})"


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


# -- deliveries -----------------------------------------------------------------
async def delivery_counts(store: CheckpointStore) -> list[tuple[str, str, int]]:
    """(consumer, state, count) in the order consumers first appeared."""
    rows = await store.query(
        "SELECT consumer, state, COUNT(*) FROM deliveries GROUP BY consumer, state ORDER BY MIN(seq)")
    return [(r[0], r[1], r[2]) for r in rows]


async def unsettled_questions(store: CheckpointStore, run_id: str | None = None) -> int:
    """Questions with something still pending (in one run, or in all)."""
    where, params = ("AND m.run_id=?", (run_id,)) if run_id else ("", ())
    ((n,),) = await store.query(
        "SELECT COUNT(*) FROM (SELECT DISTINCT m.run_id, m.question_id FROM deliveries d"
        f" JOIN messages m ON m.id = d.message_id WHERE d.state='pending' {where})", params)
    return int(n)


async def pending_deliveries(store: CheckpointStore, run_id: str) -> int:
    ((n,),) = await store.query(
        "SELECT COUNT(*) FROM deliveries d JOIN messages m ON m.id = d.message_id"
        " WHERE d.state='pending' AND m.run_id=?", (run_id,))
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
    parents = [r[0] for r in await store.query("SELECT DISTINCT parent_id FROM messages WHERE type='StageFailed'")]
    counts: dict[str, int] = {}
    for start in range(0, len(parents), PAGE):
        chunk = parents[start : start + PAGE]
        rows = await store.query(
            f"SELECT consumer, COUNT(*) FROM deliveries WHERE message_id IN ({','.join('?' * len(chunk))})"
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
    where, params = ("WHERE run_id=?", (run_id,)) if run_id else ("", ())
    ((n,),) = await store.query(f"SELECT COUNT(*) FROM records {where}", params)
    return int(n)


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


async def meta_values(store: CheckpointStore, prefix: str) -> dict[str, str]:
    """Every ``meta`` value whose key starts with ``prefix`` (the open circuits: ``circuit_open:<model>``)."""
    rows = await store.query("SELECT key, value FROM meta WHERE substr(key, 1, ?) = ? ORDER BY key",
                             (len(prefix), prefix))
    return {r[0][len(prefix):]: r[1] for r in rows}


# -- messages -------------------------------------------------------------------
async def questions_in_order(store: CheckpointStore, run_id: str | None = None) -> list[tuple[str, str]]:
    """(run id, question id) of every run's questions (or one run's): runs oldest first, then input order."""
    where, params = ("WHERE q.run_id=?", (run_id,)) if run_id else ("", ())
    rows = await store.query(
        f"SELECT q.run_id, q.id FROM questions q JOIN runs r ON r.id = q.run_id {where}"
        " ORDER BY r.created_at, q.ordinal", params)
    return [(r[0], r[1]) for r in rows]


async def unsettled_pairs(store: CheckpointStore) -> set[tuple[str, str]]:
    """(run id, question id) of the questions that still have something pending."""
    rows = await store.query(
        "SELECT DISTINCT m.run_id, m.question_id FROM deliveries d JOIN messages m ON m.id = d.message_id"
        " WHERE d.state='pending'")
    return {(r[0], r[1]) for r in rows}


async def export_plan(store: CheckpointStore, run_id: str | None = None) -> list[tuple[str, str]]:
    """Which run's record set each question is exported from: each question once.

    The rule: a question's record set comes from the latest run that settled it
    (nothing of it pending there); while no run has settled it, from the latest
    run that holds it.  So a later run of the same input supersedes the earlier
    one question by question — its records and its failures replace the earlier
    ones — and extends it with the questions the earlier one did not have.
    Order: where each question first appeared (runs oldest first, input order).
    With ``run_id``: that run's questions only, from that run."""
    pairs = await questions_in_order(store, run_id)
    if run_id is not None:
        return pairs
    unsettled = await unsettled_pairs(store)
    chosen: dict[str, str] = {}
    for run, qid in pairs:  # oldest run first: a later settled run replaces, an unsettled one only fills a gap
        if qid not in chosen or (run, qid) not in unsettled or (chosen[qid], qid) in unsettled:
            chosen[qid] = run
    return [(run, qid) for qid, run in chosen.items()]


async def question_messages(store: CheckpointStore, run_id: str, question_id: str,
                            types: Sequence[str]) -> list[Message]:
    """The messages of these types about one question of one run, in journal order."""
    marks = ",".join("?" * len(types))
    rows = await store.query(
        f"SELECT id, payload, checksum FROM messages WHERE run_id=? AND question_id=? AND type IN ({marks})"
        " ORDER BY seq", (run_id, question_id, *types))
    return [decode(store.verified("messages", mid, payload, checksum, question_id)) for mid, payload, checksum in rows]


async def messages_by_label(store: CheckpointStore, type_: str, label_like: str) -> AsyncIterator[tuple[int, Message]]:
    """(seq, message) of one type whose label matches ``label_like`` (SQL LIKE), in journal order, paged."""
    after = 0
    while rows := await store.query(
        "SELECT seq, id, payload, checksum, question_id FROM messages WHERE type=? AND label LIKE ? AND seq>?"
        " ORDER BY seq LIMIT ?",
        (type_, label_like, after, PAGE),
    ):
        after = rows[-1][0]
        for seq, mid, payload, checksum, question in rows:
            yield seq, decode(store.verified("messages", mid, payload, checksum, question))


async def messages_at(store: CheckpointStore, seqs: Sequence[int]) -> list[tuple[int, Message]]:
    """(seq, message) of the given journal positions."""
    found: list[tuple[int, Message]] = []
    for start in range(0, len(seqs), PAGE):
        chunk = list(seqs[start : start + PAGE])
        rows = await store.query("SELECT seq, id, payload, checksum, question_id FROM messages"
                                 f" WHERE seq IN ({','.join('?' * len(chunk))})", chunk)
        found.extend((seq, decode(store.verified("messages", mid, payload, checksum, question)))
                     for seq, mid, payload, checksum, question in rows)
    return found


async def rewrites_of(store: CheckpointStore, question_ids: Sequence[str]) -> list[Message]:
    """The rewritten CoTs (Refined) and re-verification verdicts of these questions, in journal order."""
    out: list[Message] = []
    for start in range(0, len(question_ids), PAGE):
        chunk = list(question_ids[start : start + PAGE])
        rows = await store.query(
            "SELECT payload FROM messages WHERE type IN ('Refined', 'Verdict') AND label NOT LIKE '%:0'"
            f" AND question_id IN ({','.join('?' * len(chunk))}) ORDER BY seq", chunk)
        out.extend(decode(p) for (p,) in rows)
    return out


async def stage_failures(store: CheckpointStore, run_id: str | None = None) -> list[StageFailed]:
    where, params = ("AND run_id=?", (run_id,)) if run_id else ("", ())
    rows = await store.query(
        f"SELECT id, payload, checksum, question_id FROM messages WHERE type='StageFailed' {where} ORDER BY seq", params)
    return [m for m in (decode(store.verified("messages", *row)) for row in rows) if isinstance(m, StageFailed)]


async def reissue_rounds(store: CheckpointStore) -> dict[tuple[str, str, str], tuple[int, int]]:
    """(question id, task, path) -> (retry round, max_tokens or 0) of the calls ``reasonmed retry`` re-issues."""
    rows = await store.query("SELECT question_id, task, path, round, max_tokens FROM reissues")
    return {(r[0], r[1], r[2]): (r[3], r[4]) for r in rows}


async def failure_count(store: CheckpointStore) -> int:
    ((n,),) = await store.query("SELECT COUNT(*) FROM messages WHERE type='StageFailed'")
    return int(n)


# -- scores ---------------------------------------------------------------------
async def stored_scores(store: CheckpointStore, label: str, model: str, template: str | None = None) -> dict[str, int]:
    """Scores of a label by a model; with ``template``, only those made with that prompt."""
    where, params = (" AND template=?", (template,)) if template is not None else ("", ())
    rows = await store.query(f"SELECT target_id, score FROM scores WHERE label=? AND model=?{where}",
                             (label, model, *params))
    return {r[0]: r[1] for r in rows}


# -- meta -----------------------------------------------------------------------
async def meta_value(store: CheckpointStore, key: str) -> str | None:
    """One value of the ``meta`` table (a shard's fingerprint lives under ``shard:<run id>``)."""
    rows = await store.query("SELECT value FROM meta WHERE key=?", (key,))
    return rows[0][0] if rows else None


async def config_override(store: CheckpointStore, prefix: str) -> tuple[str, str] | None:
    """(run id, text) of the corrected config ``resume --config`` stored (meta ``<prefix><run id>``) for the
    latest unfinished run, if it has one."""
    rows = await store.query("SELECT r.id, m.value FROM runs r JOIN meta m ON m.key = ? || r.id"
                             " WHERE r.status='running' ORDER BY r.created_at DESC LIMIT 1", (prefix,))
    return (rows[0][0], rows[0][1]) if rows else None


# -- the run report (reports/report/): through any reader, a read-only connection included ----
class Reader(Protocol):
    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...


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
    while rows := await db.query(f"SELECT seq, payload FROM messages WHERE type IN ({marks}) AND seq>? "
                                 "ORDER BY seq LIMIT ?", (*types, after, PAGE)):
        after = rows[-1][0]
        for _, payload in rows:
            yield decode(payload)


async def paid_call_times(db: Reader, bins: int) -> tuple[float | None, float, list[int]]:
    """(first stamp, bin width in s, calls per bin) of the response cache's entries: one per paid call."""
    ((lo, hi, n),) = await db.query("SELECT MIN(created_at), MAX(created_at), COUNT(*) FROM llm_cache")
    if not n:
        return None, 0.0, []
    width = max(hi - lo, 1e-6) / bins
    counts = [0] * bins
    for i, k in await db.query("SELECT MIN(CAST((created_at - ?) / ? AS INTEGER), ?), COUNT(*) FROM llm_cache"
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
