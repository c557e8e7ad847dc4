"""What ``reasonmed score`` scores: targets of a run's stages, or the rows of an Alpaca dataset.

- ``pre-refine``: the chosen CoTs of medium-tier questions, before refinement;
- ``post-refine``: the refined CoT of the *same* sampled targets (the last attempt, whether re-verification
  kept it or rejected it; a rejected one is scored too and marked), so the two stages pair by target id
  (``<question>/<path>``);
- ``final``: what a model is trained on, the ReasonMed output of each record (``<think>CoT</think>response``);
- ``final-response``: the response (summary) of each record alone.

Samples are deterministic: the sorted ids, then ``random.Random(seed).sample`` (the public code scores a
random sample of 3,000 records).  The scorer is shown the gold answer only with ``[stages.scorer] show_answer``.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from agents.llm import ChatMessage
from agents.prompts import Templates, render_messages, score_fields, scorer_messages
from agents.scorer import reasonmed_output
from bus import LETTERS, Message, Question, Ranked, RecordReady, Refined, Verdict

from reasonmed_async.reports.formats import read_alpaca, split_instruction
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore

STAGES = ("pre-refine", "post-refine", "final", "final-response")


@dataclass(frozen=True)
class Target:
    """One thing to score: its id, the scorer prompt built for it, and a mark (``rejected`` …) or ""."""

    id: str
    question_id: str
    messages: tuple[ChatMessage, ...]
    mark: str = ""


def sample_ids(ids: list[str], n: int | None, seed: int) -> list[str]:
    """``n`` ids drawn with ``random.Random(seed)`` from the sorted ids (all when ``n`` is None), sorted."""
    ordered = sorted(set(ids))
    if n is None or n >= len(ordered):
        return ordered
    return sorted(random.Random(seed).sample(ordered, n))


def _entries(stage: str, m: Message) -> list[tuple[str, Question, str]]:
    """(target id, question, text to score) of one stored message of a stage's universe."""
    if isinstance(m, Ranked) and stage in ("pre-refine", "post-refine") and m.tier == "medium":
        return [(f"{m.question_id}/{p.name}", m.question, p.cot) for p in m.chosen]
    if isinstance(m, RecordReady) and stage == "final":
        return [(m.record_id, m.question, reasonmed_output(m.path.cot, m.response))]
    if isinstance(m, RecordReady) and stage == "final-response":
        return [(m.record_id, m.question, m.response)]
    return []


def _last_refinements(messages: list[Message]) -> dict[str, tuple[Question, str, str]]:
    """Per target id, the last refined CoT and its mark: ``kept`` / ``rejected`` by re-verification, or ""."""
    last: dict[str, Refined] = {}
    verdicts: dict[tuple[str, int], str] = {}
    for m in messages:
        if isinstance(m, Refined) and m.path.origin == "refined":
            tid = f"{m.question_id}/{m.source_path}"
            if tid not in last or m.attempt > last[tid].attempt:
                last[tid] = m
        elif isinstance(m, Verdict) and m.attempt >= 1:
            verdicts[(f"{m.question_id}/{m.path.name}", m.attempt)] = m.verdict
    marks = {"Correct": "kept", "Error": "rejected"}
    return {tid: (r.question, r.path.cot, marks.get(verdicts.get((tid, r.attempt), ""), ""))
            for tid, r in last.items()}


async def stage_targets(store: CheckpointStore, stage: str, templates: Templates, n: int | None, seed: int,
                        *, show_answer: bool = False) -> tuple[list[Target], int]:
    """The sampled targets of a stage, and how many its universe has.  Ids first (the first message naming
    one wins), then only the sample's messages are read."""
    kind = "Ranked" if stage in ("pre-refine", "post-refine") else "RecordReady"
    first: dict[str, int] = {}
    async for seq, message in queries.messages_by_label(store, kind, "%"):
        for tid, _, _ in _entries(stage, message):
            first.setdefault(tid, seq)
    chosen = sample_ids(list(first), n, seed)
    texts: dict[str, tuple[Question, str, str]] = {}
    for seq, m in sorted(await queries.messages_at(store, sorted({first[tid] for tid in chosen})), key=lambda x: x[0]):
        for tid, q, text in _entries(stage, m):
            if first.get(tid) == seq and tid in chosen:
                texts.setdefault(tid, (q, text, ""))
    if stage == "post-refine":
        texts = _last_refinements(await queries.rewrites_of(store, sorted({texts[t][0].id for t in texts})))
    return [Target(tid, texts[tid][0].id, scorer_messages(templates, texts[tid][0], texts[tid][1],
                                                           show_answer=show_answer), texts[tid][2])
            for tid in chosen if tid in texts], len(first)


def file_messages(templates: Templates, row: dict[str, str], *, show_answer: bool = False) -> tuple[ChatMessage, ...]:
    """The scorer prompt for an Alpaca row: the question from its instruction, ``input`` as context;
    the gold answer only with ``show_answer`` and where the row has an ``answer`` (letter or option text)."""
    stem, options = split_instruction(row["instruction"])
    gold = str(row.get("answer") or "").strip()
    index = next((i for i, o in enumerate(options) if gold in (LETTERS[i], o)), None)
    ctx = str(row.get("input") or "").strip()
    answer = f"{LETTERS[index]}) {options[index]}" if index is not None and show_answer else None
    fields = {
        "stem": stem,
        "options": "\n".join(f"{LETTERS[i]}) {o}" for i, o in enumerate(options)),
        "context": f"Context:\n{ctx}\n\n" if ctx else "",
        **score_fields(row["output"], answer),
    }
    return render_messages(templates.text("score"), fields)


def file_targets(path: Path, templates: Templates, n: int | None, seed: int,
                 *, show_answer: bool = False) -> tuple[list[Target], int]:
    rows = read_alpaca(path)
    ids = {f"row-{i:07d}": row for i, row in enumerate(rows)}
    return [Target(tid, tid, file_messages(templates, ids[tid], show_answer=show_answer))
            for tid in sample_ids(list(ids), n, seed)], len(rows)
