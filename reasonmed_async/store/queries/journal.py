"""Queries about the journal's messages: which questions, which run's record set, the messages themselves."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence

from bus import Message, StageFailed

from reasonmed_async.store.checkpoint import CheckpointStore
from reasonmed_async.store.reading import MESSAGE_COLUMNS

PAGE = 512


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
        "SELECT DISTINCT m.run_id, m.question_id FROM delivery_rows d JOIN messages m ON m.seq = d.message_seq"
        " WHERE d.state=0")  # (0: pending; v8's rows, so the pending index serves)
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
    rows = await store.load(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE run_id=? AND question_id=? AND type IN ({marks})"
        " ORDER BY seq", (run_id, question_id, *types))
    return [m for _, m in rows]


async def messages_by_label(store: CheckpointStore, type_: str, label_like: str) -> AsyncIterator[tuple[int, Message]]:
    """(seq, message) of one type whose label matches ``label_like`` (SQL LIKE), in journal order, paged."""
    after = 0
    while rows := await store.load(
        f"SELECT {MESSAGE_COLUMNS}, seq FROM messages WHERE type=? AND label LIKE ? AND seq>?"
        " ORDER BY seq LIMIT ?",
        (type_, label_like, after, PAGE),
    ):
        after = rows[-1][0][0]
        for (seq,), message in rows:
            yield seq, message


async def messages_at(store: CheckpointStore, seqs: Sequence[int]) -> list[tuple[int, Message]]:
    """(seq, message) of the given journal positions."""
    found: list[tuple[int, Message]] = []
    for start in range(0, len(seqs), PAGE):
        chunk = list(seqs[start : start + PAGE])
        rows = await store.load(f"SELECT {MESSAGE_COLUMNS}, seq FROM messages"
                                f" WHERE seq IN ({','.join('?' * len(chunk))})", chunk)
        found.extend((seq, message) for (seq,), message in rows)
    return found


async def rewrites_of(store: CheckpointStore, question_ids: Sequence[str]) -> list[Message]:
    """The rewritten CoTs (Refined) and re-verification verdicts of these questions, in journal order."""
    out: list[Message] = []
    for start in range(0, len(question_ids), PAGE):
        chunk = list(question_ids[start : start + PAGE])
        rows = await store.load(
            f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE type IN ('Refined', 'Verdict') AND label NOT LIKE '%:0'"
            f" AND question_id IN ({','.join('?' * len(chunk))}) ORDER BY seq", chunk)
        out.extend(m for _, m in rows)
    return out


async def stage_failures(store: CheckpointStore, run_id: str | None = None) -> list[StageFailed]:
    where, params = ("AND run_id=?", (run_id,)) if run_id else ("", ())
    rows = await store.load(
        f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE type='StageFailed' {where} ORDER BY seq", params)
    return [m for _, m in rows if isinstance(m, StageFailed)]


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


