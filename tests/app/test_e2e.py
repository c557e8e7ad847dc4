"""End to end, in process: 50 real PubMedQA questions through the whole flow on the sim backend.

Pipeline.open → start_run → drive → export, against a real SQLite file; then
the database and the exported files are checked against each other and against
the method (the checks are in flow_invariants.py: tiers by Error count, refiner
fed Error reasons only, every rewrite re-verified, nothing lost).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bus import CoTGenerated, FailureKind, Stage, StageFailed, TierAssigned, Verdict
from e2e_support import INSTRUCTION_PREFIX, read_jsonl, sim_config
from flow_invariants import (FIRST_PASS, Outcome, check_no_question_lost, check_rewrites_reverified,
                             check_rewriters_fed_error_reasons_only, check_tiers_match_verdicts, run_flow)
from reasonmed_async.config import load_config, parse_config


@pytest.fixture(scope="module")
def default_run(pubmedqa, tmp_path_factory) -> Outcome:
    return run_flow(load_config(Path(__file__).resolve().parents[2] / "examples" / "sim.toml"), pubmedqa,
                tmp_path_factory.mktemp("e2e-default"))


@pytest.fixture(scope="module")
def malformed_run(pubmedqa, tmp_path_factory) -> Outcome:
    config = parse_config(sim_config(malformed_rate="0.3"), source="sim-malformed.toml")
    return run_flow(config, pubmedqa, tmp_path_factory.mktemp("e2e-malformed"))


# -- the default sim configuration ------------------------------------------------------


def test_every_question_ends_as_records_or_failures(default_run):
    check_no_question_lost(default_run)
    assert default_run.summary.records > 0


def test_tier_counts_agree_with_verdicts(default_run):
    check_tiers_match_verdicts(default_run)
    tiers = Counter(t.tier for t in default_run.of(TierAssigned))
    assert set(tiers) == {"easy", "medium", "difficult"}, f"50 questions should reach every tier: {tiers}"


def test_sft_files_line_up(default_run):
    out = default_run.out
    reasonmed, cotmed, responsemed = (read_jsonl(out / f) for f in ("reasonmed.jsonl", "cotmed.jsonl",
                                                                        "responsemed.jsonl"))
    records = read_jsonl(out / "records.jsonl")
    assert len(reasonmed) == len(cotmed) == len(responsemed) == len(records) == default_run.summary.records > 0
    for r, c, s, rec in zip(reasonmed, cotmed, responsemed, records, strict=True):
        assert set(r) == set(c) == set(s) == {"instruction", "input", "output"}
        assert r["output"] == f"<think>{c['output']}</think>{s['output']}"
        assert r["instruction"] == c["instruction"] == s["instruction"]
        assert r["input"] == c["input"] == s["input"] == rec["context"] != ""
        assert r["instruction"].startswith(INSTRUCTION_PREFIX)
        assert r["instruction"] == INSTRUCTION_PREFIX + rec["question"] + "\nA. yes\nB. no\nC. maybe"
        assert c["output"] == rec["cot"] and s["output"] == rec["response"]
        assert "<think>" not in c["output"] and c["output"].rstrip().endswith(f"Final answer: {rec['stated_answer']}")
    # line order: input order of the questions, then path name
    order = {q.id: q.ordinal for q in default_run.questions}
    keys = [(order[rec["question_id"]], rec["path"]) for rec in records]
    assert keys == sorted(keys)


def test_records_provenance_says_sim(default_run):
    records = read_jsonl(default_run.out / "records.jsonl")
    assert records
    for rec in records:
        assert rec["provenance"], rec["record_id"]
        for p in [*rec["provenance"], rec["response_provenance"]]:
            assert p["backend"] == "sim", rec["record_id"]
            assert p["model"] and p["template"]
        assert rec["answer"] in "ABC" and rec["options"] == ["yes", "no", "maybe"]


def test_every_record_lists_its_nine_paths_with_their_generators(default_run):
    """Whatever the tier, and with truncated or unjudged paths among them (the default sim has both)."""
    samplings = {name: s for g in default_run.config.flow.generators for name, s in g.paths()}
    records = read_jsonl(default_run.out / "records.jsonl")
    assert {r["tier"] for r in records} >= {"easy", "medium"}
    for r in records:
        paths = {p["path"]: p for p in r["verdicts"]}
        assert sorted(paths) == default_run.path_names, r["record_id"]
        for name, p in paths.items():
            assert (p["model"], p["temperature"]) == (samplings[name].model, samplings[name].temperature)
            if p["verdict"] is not None:
                assert p["judge"]["model"] == default_run.config.flow.verifier.model and p["reason"]


def test_refiner_fed_only_error_reasons(default_run):
    check_rewriters_fed_error_reasons_only(default_run)


def test_rewrites_are_reverified(default_run):
    check_rewrites_reverified(default_run)


# -- judges that often answer malformed JSON -----------------------------------------------


def test_malformed_judges_lose_no_question(malformed_run):
    check_no_question_lost(malformed_run)
    check_tiers_match_verdicts(malformed_run)
    check_rewriters_fed_error_reasons_only(malformed_run)
    check_rewrites_reverified(malformed_run)


def test_unparseable_verdicts_are_failures_not_errors(malformed_run):
    o = malformed_run
    corrections = o.config.flow.judge_corrections
    unparsed = [f for f in o.of(StageFailed) if f.stage is Stage.VERIFY]
    assert unparsed, "malformed_rate=0.3 should leave some paths without a verdict"
    tiers = {t.question_id: t for t in o.of(TierAssigned)}
    generated = {m.id: m for m in o.of(CoTGenerated)}
    first = {(v.question_id, v.path.name) for v in o.of(Verdict) if v.attempt == 0}
    for f in unparsed:
        assert f.path and f.failed_type == "CoTGenerated" and f.parent_id in generated
        assert f.kind is FailureKind.UNPARSEABLE and f.error_class == "JudgeFailed" and f.raw, f
        assert f.attempts == corrections + 1, f.reason
        assert (f.question_id, f.path) not in first, f"{f.question_id}/{f.path} has a verdict and a failure"
        t = tiers.get(f.question_id)
        if t is None:
            continue  # the question failed at the tier (too few usable verdicts), checked above
        (j,) = [j for j in t.judgements if j.path == f.path]
        assert j.verdict is None and j.stage is Stage.VERIFY and j.kind is FailureKind.UNPARSEABLE
        assert j.reason == f.reason
        assert j not in t.error_reasons
    # the exported verdicts keep them as "no verdict", never as Error
    for rec in read_jsonl(o.out / "records.jsonl"):
        for j in rec["verdicts"]:
            assert j["verdict"] in ("Correct", "Error", None)
            if j["verdict"] is None:
                assert j["stage"] in FIRST_PASS
