"""What the method promises of one whole run, checked on its database and its exported files.

``run_flow`` drives real PubMedQA questions through the whole flow in process
(Pipeline.open -> start_run -> drive -> export, a real SQLite file); each
``check_*`` holds one promise of the method against the outcome: nothing lost,
tiers by Error count, rewriters fed Error reasons only, every rewrite
re-verified.  tests/app/test_e2e.py runs them on the default and the
malformed-judge configurations.
"""

from __future__ import annotations

import asyncio
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

from agents.calls import request
from agents.prompts import Templates, refiner_messages
from bus import (
    Message,
    Question,
    Ranked,
    Refined,
    Stage,
    StageFailed,
    TierAssigned,
    Verdict,
)
from e2e_support import cache_keys, messages, query, read_jsonl
from reasonmed_async.config import AppConfig
from reasonmed_async.reports.export import ExportSummary, export
from reasonmed_async.loaders.dispatch import load_questions
from reasonmed_async.pipeline import Pipeline, file_digest

LIMIT = 50
FIRST_PASS = tuple(s for s in Stage if s.per_path)


@dataclass
class Outcome:
    config: AppConfig
    db: Path
    out: Path
    questions: list[Question]
    run_id: str
    done: bool
    summary: ExportSummary
    msgs: list[Message]

    def of(self, kind: type[Message]) -> list:
        return [m for m in self.msgs if isinstance(m, kind)]

    @property
    def path_names(self) -> list[str]:
        return sorted(name for g in self.config.flow.generators for name, _ in g.paths())


def run_flow(config: AppConfig, input_path: Path, root: Path) -> Outcome:
    questions = load_questions(input_path, limit=LIMIT)
    db, out = root / "run.db", root / "export"

    async def go() -> tuple[str, bool, ExportSummary]:
        async with Pipeline.open(config, db) as pipeline:
            run_id = await pipeline.start_run(questions, str(input_path), file_digest(input_path), LIMIT)
            done = await pipeline.drive()
            summary = await export(pipeline.store, out, final_attempt=config.flow.refine_attempts)
        return run_id, done, summary

    run_id, done, summary = asyncio.run(go())
    return Outcome(config, db, out, questions, run_id, done, summary, messages(db))


# -- checks shared by both runs ------------------------------------------------------


def check_no_question_lost(o: Outcome) -> None:
    """Every question ends as final records or as failures with their reasons, path by path."""
    assert o.done, "drive() did not reach the end"
    (status,) = query(o.db, "SELECT status FROM runs WHERE id=?", (o.run_id,))[0]
    assert status == "finished"
    assert query(o.db, "SELECT COUNT(*) FROM deliveries WHERE state='pending'") == [(0,)]
    assert o.summary.questions == len(o.questions) == LIMIT

    records = read_jsonl(o.out / "records.jsonl")
    failures = read_jsonl(o.out / "failures.jsonl")
    table = {rid for (rid,) in query(o.db, "SELECT record_id FROM records")}
    assert table == {r["record_id"] for r in records}, "records table and records.jsonl disagree"
    assert len(table) == len(records), "a record is exported twice"

    rec_paths: dict[str, list[str]] = defaultdict(list)
    for r in records:
        rec_paths[r["question_id"]].append(r["path"])
    fail_rows: dict[str, list[dict]] = defaultdict(list)
    for row in failures:
        assert row["reason"].strip(), f"failure without a reason: {row}"
        assert row["stage"] not in FIRST_PASS, f"a first-pass path failure is exported as a question failure: {row}"
        fail_rows[row["question_id"]].append(row)

    tiers = {m.question_id: m for m in o.of(TierAssigned)}
    ranked = {m.question_id: m for m in o.of(Ranked)}
    failed: dict[str, list[StageFailed]] = defaultdict(list)
    for f in o.of(StageFailed):
        failed[f.question_id].append(f)
    first_pass: dict[str, list[str]] = defaultdict(list)
    for v in o.of(Verdict):
        if v.attempt == 0:
            first_pass[v.question_id].append(v.path.name)
    for f in o.of(StageFailed):
        if f.stage in FIRST_PASS:
            first_pass[f.question_id].append(f.path)
    assert len(tiers) == len(o.of(TierAssigned)), "a question was tiered twice"

    for q in o.questions:
        qid = q.id
        assert sorted(first_pass[qid]) == o.path_names, f"{qid}: not every path has one first-pass outcome"
        where = f"{qid}: records {sorted(rec_paths[qid])}, failures {fail_rows[qid]}"
        assert rec_paths[qid] or fail_rows[qid], f"{qid} vanished: no record and no failure"
        if qid not in tiers:
            assert any(f.stage is Stage.TIER for f in failed[qid]), f"{qid}: neither tiered nor failed at the tier"
            assert any(r["stage"] == Stage.TIER for r in fail_rows[qid]) and not rec_paths[qid], where
            continue
        t = tiers[qid]
        if t.tier == "difficult" and len(t.correct) == 1:  # the one correct path is optimized
            expected = [t.correct[0].name]
        elif t.tier == "difficult":
            expected = [f"regen_{k}" for k in range(1, o.config.flow.regenerations + 1)]
        elif qid in ranked:
            expected = [p.name for p in ranked[qid].chosen]
            assert expected and set(expected) <= {p.name for p in t.correct}, f"{qid}: ranker chose {expected}"
        else:
            assert any(r["stage"] == Stage.RANK for r in fail_rows[qid]), f"{qid}: {t.tier} question never ranked"
            assert not rec_paths[qid], where
            continue
        assert set(rec_paths[qid]) <= set(expected), where
        if t.tier == "easy":  # each chosen path is exported, or rejected by a quality gate
            gated = {r["path"] for r in fail_rows[qid] if r["gate"]}
            assert set(rec_paths[qid]) | gated == set(expected) and not set(rec_paths[qid]) & gated, where
        for name in expected:
            assert name in rec_paths[qid] or any(r["path"] == name for r in fail_rows[qid]), \
                f"{qid}: path {name} neither exported nor failed ({where})"
        for r in records:
            if r["question_id"] == qid:
                assert r["tier"] == t.tier and r["errors"] == t.errors
                origin = {"easy": "generated", "medium": "refined", "difficult": "regenerated"}[t.tier]
                assert r["origin"] == ("optimized" if t.tier == "difficult" and len(t.correct) == 1 else origin)


def check_tiers_match_verdicts(o: Outcome) -> None:
    policy = o.config.flow.tiers
    verdicts: dict[str, list[Verdict]] = defaultdict(list)
    for v in o.of(Verdict):
        if v.attempt == 0:
            verdicts[v.question_id].append(v)
    unusable: dict[str, set[str]] = defaultdict(set)
    for f in o.of(StageFailed):
        if f.stage in FIRST_PASS:
            unusable[f.question_id].add(f.path)
    assigned = o.of(TierAssigned)
    assert assigned
    for t in assigned:
        vs = verdicts[t.question_id]
        errors = sum(v.verdict == "Error" for v in vs)
        correct = sorted(v.path.name for v in vs if v.verdict == "Correct")
        assert t.errors == errors, f"{t.question_id}: TierAssigned.errors {t.errors} but {errors} Error verdicts"
        assert sorted(p.name for p in t.correct) == correct
        assert t.errors + len(t.correct) + len(unusable[t.question_id]) == len(o.path_names)
        assert len(vs) >= policy.min_usable
        if not correct:
            want = "difficult"
        elif errors <= policy.easy_max:
            want = "easy"
        elif errors <= policy.medium_max:
            want = "medium"
        else:
            want = "difficult"
        assert t.tier == want, f"{t.question_id}: {errors} errors, {len(correct)} correct, tier {t.tier}"
        by_path = {j.path: j for j in t.judgements}
        assert sorted(by_path) == o.path_names
        for v in vs:
            assert by_path[v.path.name].verdict == v.verdict and by_path[v.path.name].reason == v.reason
        for name in unusable[t.question_id]:
            assert by_path[name].verdict is None, f"{t.question_id}/{name}: an unusable path got a verdict"
    # the paper's default thresholds: 0-4 easy, 5-7 medium, 8-9 difficult
    assert (policy.easy_max, policy.medium_max) == (4, 7)
    counts = Counter(t.tier for t in assigned)
    assert dict(query(o.db, "SELECT label, COUNT(*) FROM messages WHERE type='TierAssigned' GROUP BY label")) \
        == dict(counts)


def check_rewriters_fed_error_reasons_only(o: Outcome) -> None:
    """Every refined / regenerated CoT was prompted with Error reasons only, and the prompt really sent
    (rebuilt from the database) is in the LLM cache."""
    by_id = {m.id: m for m in o.msgs}
    tiers = {m.question_id: m for m in o.of(TierAssigned)}
    templates = Templates.load(o.config.templates_dir)
    cached = cache_keys(o.db)
    refined = o.of(Refined)
    medium = [r for r in refined if r.path.origin == "refined"]
    assert medium, "no medium-tier question was refined: the check is vacuous"
    for r in refined:
        assert r.error_reasons, f"{r.question_id}/{r.source_path}: rewritten without any reason"
        for j in r.error_reasons:
            assert j.verdict == "Error", f"{r.question_id}/{r.source_path}: the rewriter was fed {j}"
        t = tiers[r.question_id]
        if r.attempt == 1:
            others = tuple(j for j in t.error_reasons if j.path != r.source_path)
            assert r.error_reasons == others
    for r in medium:
        t = tiers[r.question_id]
        assert t.tier == "medium"
        parent = by_id[r.parent_id]
        if isinstance(parent, Ranked):
            (source,) = [p for p in parent.chosen if p.name == r.source_path]
        else:
            assert isinstance(parent, Verdict) and parent.verdict == "Error" and parent.attempt == r.attempt - 1
            source = parent.path
        msgs = refiner_messages(templates, r.question, source.cot, r.error_reasons)
        key = request(o.config.flow.refiner, msgs, sample=r.attempt).cache_key()
        assert key in cached, f"{r.question_id}/{r.source_path}: rebuilt refiner prompt was never sent"
        prompt = "\n".join(m.content for m in msgs)
        for j in t.judgements:
            if j.verdict == "Correct":
                assert j.reason not in prompt, f"{r.question_id}: a Correct verdict's reason reached the refiner"
        for j in r.error_reasons:
            assert " ".join(j.reason.split()) in prompt


def check_rewrites_reverified(o: Outcome) -> None:
    records = read_jsonl(o.out / "records.jsonl")
    rewritten = [r for r in records if r["origin"] in ("refined", "optimized", "regenerated")]
    assert rewritten
    for r in records:
        rv = r["reverification"]
        if r["origin"] == "generated":
            assert rv == []
            continue
        assert rv, f"{r['record_id']}: a rewritten CoT was exported without re-verification"
        assert [v["attempt"] for v in rv] == list(range(1, len(rv) + 1))
        assert rv[-1]["verdict"] == "Correct", f"{r['record_id']}: exported after a failed re-verification"
        assert all(v["verdict"] == "Error" for v in rv[:-1])
        assert len(rv) <= o.config.flow.refine_attempts
    # every rewritten CoT got a re-verification outcome: a verdict or a recorded failure
    outcomes = {m.parent_id for m in o.of(Verdict) if m.attempt >= 1}
    outcomes |= {m.parent_id for m in o.of(StageFailed) if m.stage is Stage.REVERIFY}
    for r in o.of(Refined):
        assert r.id in outcomes, f"{r.question_id}/{r.path.name} attempt {r.attempt} was never re-verified"
    # a CoT rejected at the last attempt is in failures.jsonl
    failures = read_jsonl(o.out / "failures.jsonl")
    rejected = {(f["question_id"], f["path"]) for f in failures if f["kind"] == "rejected"}
    for v in o.of(Verdict):
        if v.attempt == o.config.flow.refine_attempts and v.verdict == "Error":
            assert (v.question_id, v.path.name) in rejected
