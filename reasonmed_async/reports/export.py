"""Exports: the three SFT sets (ReasonMed, CoTMed, ResponseMed) and the rich records.

All four files are built from the same records in the same order (question
order of the input, then path name), so line *n* of each describes the same
(question, CoT, response) triple.  Nothing time-dependent is written: an
interrupted-and-resumed run exports byte-identical files.  Beside the JSONL
files go their Parquet copies (when pyarrow is installed) and a
``dataset_info.json`` that LLaMA-Factory reads as it is (``export_formats.py``).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import msgspec

from agents.scorer import reasonmed_output

from bus import (LETTERS, FailureKind, Judgement, Message, Question, Ranked, RecordReady, RewriteInput, Stage,
                 StageFailed, TierAssigned, Verdict, decode)

from reasonmed_async.reports.formats import PARQUET_MISSING, write_dataset_info, write_parquet
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore

SFT_FILES = ("reasonmed.jsonl", "cotmed.jsonl", "responsemed.jsonl")
_CONTEXT_TYPES = ("TierAssigned", "Ranked", "Verdict", "StageFailed", "RecordReady")


def instruction(q: Question) -> str:
    """The question in the form the ReasonMed release uses."""
    options = "\n".join(f"{LETTERS[i]}. {text}" for i, text in enumerate(q.options))
    return f"Please answer the following multiple-choice question:\n{q.stem}\n{options}"


def alpaca(q: Question, output: str) -> dict[str, str]:
    return {"instruction": instruction(q), "input": q.context, "output": output}


def _line(obj: Any) -> str:
    return json.dumps(obj, ensure_ascii=False, sort_keys=False) + "\n"


@dataclass
class ExportSummary:
    records: int = 0
    excluded: int = 0
    failures: int = 0
    rejected: int = 0
    questions: int = 0
    parquet: bool = False


def _builtins(value: Any) -> Any:
    return msgspec.to_builtins(value)


def _agrees(stated: str | None, gold: str, verdict: str | None) -> bool | None:
    """Does the verifier's verdict agree with the stated answer (Correct iff stated == gold)? None: no verdict."""
    return None if verdict is None else (stated == gold) == (verdict == "Correct")


def _truncated(m: Message) -> bool:
    return isinstance(m, StageFailed) and m.stage is Stage.GENERATE and m.kind is FailureKind.TRUNCATED


def record_row(rec: RecordReady, context: list[Message], *, final_attempt: int = 2) -> dict[str, Any]:
    """The rich record.  Each judged path (``verdicts``, ``reverification``) carries the answer its CoT
    states and ``answer_agrees``: whether the verdict is Correct exactly when that answer is the gold one.
    ``truncated_paths`` (generated paths cut at max_tokens) and ``rejected_rewrites`` (re-verification
    Errors; ``final`` when no retry followed) are the marks of the record's whole question."""
    tier = next((m for m in context if isinstance(m, TierAssigned)), None)
    ranked = next((m for m in context if isinstance(m, Ranked)), None)
    verdicts = [m for m in context if isinstance(m, Verdict)]
    first_pass = {v.path.name: v for v in verdicts if v.attempt == 0}
    reverified = [v for v in verdicts if v.attempt >= 1 and v.path.name == rec.path.name]
    q = rec.question
    gold = q.answer_letter

    def judged(j: Judgement) -> dict[str, Any]:
        row = _builtins(j)
        v = first_pass.get(j.path)
        if v is not None:  # a database written before judgements carried these: read them from the verdict
            made = v.path.provenance[0] if v.path.provenance else None
            row["model"] = j.model or (made.model if made else "")
            row["temperature"] = j.temperature if j.model else (made.temperature if made else None)
            row["stated_answer"] = v.path.stated_answer
            row["judge"] = _builtins(j.judge or v.judge)
        return {**row, "answer_agrees": _agrees(row["stated_answer"], gold, j.verdict)}

    return {
        "record_id": rec.record_id,
        "run_id": rec.run_id,
        "question_id": q.id,
        "question_ids": [q.id, *q.duplicate_ids],  # more than one: the same question under several ids, merged
        "source": q.source,
        "question": q.stem,
        "context": q.context,
        "options": list(q.options),
        "answer": gold,
        "answer_text": q.answer_text,
        "tier": rec.tier,
        "errors": tier.errors if tier else None,
        "path": rec.path.name,
        "origin": rec.path.origin,
        "stated_answer": rec.path.stated_answer,
        "cot": rec.path.cot,
        "thinking": rec.path.thinking,
        "response": rec.response,
        "verdicts": [judged(j) for j in tier.judgements] if tier else [],
        "ranker": {"chosen": [p.name for p in ranked.chosen], "reasons": ranked.reasons, "called": ranked.called,
                   "judge": _builtins(ranked.provenance)}
        if ranked else None,
        "rewrites": [_rewrite_row(r) for r in rec.path.rewrites],
        "reverification": [{"attempt": v.attempt, "verdict": v.verdict, "reason": v.reason,
                            "stated_answer": v.path.stated_answer,
                            "answer_agrees": _agrees(v.path.stated_answer, gold, v.verdict),
                            "judge": _builtins(v.judge)} for v in reverified],
        "steps": rec.steps,
        "warnings": list(rec.warnings),
        "truncated_paths": sorted({m.path for m in context if _truncated(m)}),  # type: ignore[attr-defined]
        "rejected_rewrites": [{"path": v.path.name, "attempt": v.attempt, "reason": v.reason,
                               "final": v.attempt >= final_attempt, "judge": _builtins(v.judge)}
                              for v in sorted((v for v in verdicts if v.attempt >= 1 and v.verdict == "Error"),
                                              key=lambda v: (v.path.name, v.attempt))],
        "provenance": _builtins(rec.path.provenance),
        "response_provenance": _builtins(rec.response_provenance),
    }


def _rewrite_row(r: RewriteInput) -> dict[str, Any]:
    """What a rewrite was given: the CoT before (empty from scratch) and the reasons, path by path."""
    return {"attempt": r.attempt, "origin": r.origin, "source_path": r.source_path, "cot_before": r.cot_before,
            "reasons_given": [{"path": j.path, "reason": j.reason} for j in r.reasons],
            "sent_back_for": r.resent or None}


def failure_rows(question_id: str, context: list[Message], final_attempt: int) -> Iterable[dict[str, Any]]:
    for m in context:
        if isinstance(m, StageFailed) and (m.gate is not None or not m.stage.per_path):
            yield {"question_id": question_id, "kind": m.kind.value, "stage": m.stage.value,
                   "gate": None if m.gate is None else str(m.gate), "path": m.path, "reason": m.reason,
                   "error_class": m.error_class, "message": m.message, "raw": m.raw, "attempts": m.attempts}
        elif isinstance(m, Verdict) and m.attempt == final_attempt and m.verdict == "Error":
            yield {"question_id": question_id, "kind": FailureKind.REJECTED.value, "stage": Stage.REVERIFY.value,
                   "gate": None, "path": m.path.name, "reason": m.reason, "error_class": "", "message": m.reason,
                   "raw": "", "attempts": m.attempt}


async def export(store: CheckpointStore, out: Path, *, final_attempt: int = 2, parquet: bool = True,
                 run_id: str | None = None, exclude: frozenset[str] = frozenset()) -> ExportSummary:
    """Write the SFT files, ``records.jsonl`` and ``failures.jsonl`` (each question once, from the run
    ``queries.export_plan`` picks; only ``run_id``'s questions if given), their Parquet copies (if
    pyarrow is importable and ``parquet``) and ``dataset_info.json``.  Questions whose id is in
    ``exclude`` (``reasonmed decontam``'s flags) are left out and counted."""
    out.mkdir(parents=True, exist_ok=True)
    summary = ExportSummary()
    handles: dict[str, TextIO] = {}
    try:
        for name in (*SFT_FILES, "records.jsonl", "failures.jsonl"):
            handles[name] = (out / name).open("w", encoding="utf-8")
        for run, qid in await queries.export_plan(store, run_id):
            if qid in exclude:
                summary.excluded += 1
                continue
            summary.questions += 1
            context = await queries.question_messages(store, run, qid, _CONTEXT_TYPES)
            records = sorted((m for m in context if isinstance(m, RecordReady)), key=lambda r: r.path.name)
            for rec in records:
                cot, response = rec.path.cot, rec.response
                handles["reasonmed.jsonl"].write(_line(alpaca(rec.question, reasonmed_output(cot, response))))
                handles["cotmed.jsonl"].write(_line(alpaca(rec.question, cot)))
                handles["responsemed.jsonl"].write(_line(alpaca(rec.question, response)))
                handles["records.jsonl"].write(_line(record_row(rec, context, final_attempt=final_attempt)))
                summary.records += 1
            for row in sorted(failure_rows(qid, context, final_attempt),
                              key=lambda r: (r["stage"], r["path"], r["kind"], r["reason"])):
                handles["failures.jsonl"].write(_line({"run_id": run, **row}))
                summary.failures += row["kind"] != FailureKind.REJECTED
                summary.rejected += row["kind"] == FailureKind.REJECTED
    finally:
        for handle in handles.values():
            handle.close()
    summary.parquet = write_parquet(out, enabled=parquet)
    if parquet and not summary.parquet:
        print(PARQUET_MISSING, file=sys.stderr)
    write_dataset_info(out)
    return summary
