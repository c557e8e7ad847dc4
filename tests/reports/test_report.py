"""``reasonmed report``: its numbers recounted independently from records.jsonl and the sim's call log.

A sim run of 100 real PubMedQA questions with re-verification and the quality gates off, no malformed
judge output and no truncated CoT, so that every question ends with records and records.jsonl
describes all of the run.
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from itertools import combinations
from pathlib import Path
from typing import Any

import pytest

from e2e_support import query, read_jsonl, run_cli, sim_config

from reasonmed_async.reports.intervals import wilson

TEMPERATURES = (0.7, 0.9, 1.0)  # examples/sim.toml [generation]
GENERATORS = ("qwen", "deepseek", "huatuo")


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, pubmedqa: Path) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("report")
    log = tmp / "calls.tsv"
    text = sim_config(malformed_rate="0.0", truncation_rate="0.0", self_reference_rate="0.0",
                      require_answer_agreement="false", self_contained="false", call_log=json.dumps(str(log)))
    text = re.sub(r"(?m)^reverify = true", "reverify = false", text)
    (tmp / "sim.toml").write_text(text, encoding="utf-8")
    db = tmp / "run.db"
    for args in (("run", "--config", tmp / "sim.toml", "--input", pubmedqa, "--limit", 100, "--db", db),
                 ("export", "--db", db, "--out", tmp / "export"),
                 ("report", "--db", db, "--out", tmp / "report")):
        done = run_cli(*args, timeout=120)
        assert done.returncode == 0, done.stderr
    return {"db": db, "report": json.loads((tmp / "report" / "report.json").read_text()), "out": tmp / "report",
            "records": read_jsonl(tmp / "export" / "records.jsonl"), "log": log, "stdout": done.stdout}


def _per_question(records: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["question_id"]: r for r in records}  # verdicts, tier, ranker: the same on each record of a question


def _label(path: str) -> str:
    generator, index = path.rsplit("_", 1)
    return f"{generator} T={TEMPERATURES[int(index) - 1]:g}"


def test_tiers_equal_records(run: dict[str, Any]) -> None:
    questions = _per_question(run["records"])
    assert len(questions) == 100
    assert run["report"]["tiers"]["counts"] == dict(Counter(q["tier"] for q in questions.values())) | {
        t: 0 for t in ("easy", "medium", "difficult") if t not in {q["tier"] for q in questions.values()}}
    assert run["report"]["tiers"]["untiered"] == 0


def test_verdicts_and_pass_rates_equal_records(run: dict[str, Any]) -> None:
    counts: Counter[tuple[str, str]] = Counter()
    for q in _per_question(run["records"]).values():
        for v in q["verdicts"]:
            counts[_label(v["path"]), v["verdict"] or "none"] += 1
        for p in q["truncated_paths"]:
            counts[_label(p), "truncated"] += 1
    rows = {r["label"]: r for r in run["report"]["verdicts"]}
    assert len(rows) == 9
    for label, r in rows.items():
        assert (r["correct"], r["error"], r["not_generated"]) == (
            counts[label, "Correct"], counts[label, "Error"], counts[label, "truncated"]), label
        expect = wilson(r["correct"], r["correct"] + r["error"])
        assert r["pass_rate"]["ci95_low"] == pytest.approx(expect.low, abs=1e-6)
        assert r["pass_rate"]["ci95_low"] < r["pass_rate"]["rate"] < r["pass_rate"]["ci95_high"]


def test_ranker_picks_equal_records(run: dict[str, Any]) -> None:
    picks: Counter[tuple[str, str]] = Counter()
    for q in _per_question(run["records"]).values():
        if q["tier"] in ("easy", "medium"):
            for name in q["ranker"]["chosen"]:
                picks[q["tier"], _label(name)] += 1
    rows = run["report"]["ranker"]["picks"]
    assert {(t, r["label"]): r[t] for r in rows for t in ("easy", "medium") if r[t]} == dict(picks)
    assert sum(picks.values()) > 0


@pytest.mark.parametrize("rule", ["any", "all"])
def test_complementarity_equals_records(run: dict[str, Any], rule: str) -> None:
    decide = any if rule == "any" else all
    solved = []
    for q in _per_question(run["records"]).values():
        per: dict[str, list[bool]] = defaultdict(list)
        for v in q["verdicts"]:
            per[v["path"].rsplit("_", 1)[0]].append(v["verdict"] == "Correct")
        if all(per.get(g) for g in GENERATORS):
            solved.append({g: decide(per[g]) for g in GENERATORS})
    got = run["report"]["complementarity"][rule]
    assert got["questions"] == len(solved)
    for row in got["one_vs_one"]:
        a, b = row["a"], row["b"]
        assert (row["only_a"], row["only_b"]) == (sum(s[a] and not s[b] for s in solved),
                                                  sum(s[b] and not s[a] for s in solved))
    assert {r["generator"]: r["missed_only_by"] for r in got["one_vs_two"]} == {
        g: sum(not s[g] and all(s[o] for o in GENERATORS if o != g) for s in solved) for g in GENERATORS}
    assert {(r["a"], r["b"]) for r in got["one_vs_one"]} == set(combinations(GENERATORS, 2))


def test_records_by_tier_and_origin_equal_records(run: dict[str, Any]) -> None:
    expect = Counter((r["tier"], r["origin"]) for r in run["records"])
    assert {(r["tier"], r["origin"]): r["records"] for r in run["report"]["records"]} == dict(expect)


def test_calls_equal_the_sims_own_call_log(run: dict[str, Any]) -> None:
    logged = Counter(line.split("\t")[0] for line in run["log"].read_text().splitlines())
    ok = Counter()
    for r in run["report"]["calls"]["rows"]:
        if r["outcome"] == "ok":
            ok[r["stage"]] += r["calls"]
    assert dict(ok) == dict(logged)
    assert run["report"]["call_rate"]["calls"] == sum(logged.values())
    assert sum(b["calls"] for b in run["report"]["call_rate"]["bins"]) == sum(logged.values())
    (tokens,) = query(run["db"], "SELECT SUM(prompt_tokens) + SUM(completion_tokens) FROM calls")[0]
    totals = run["report"]["calls"]["totals"]
    assert totals["prompt_tokens"] + totals["completion_tokens"] == tokens
    assert totals["cost_usd"] > 0


def test_files_and_page(run: dict[str, Any]) -> None:
    out: Path = run["out"]
    names = {"fig4_verdicts", "fig5_ranker", "fig6_tiers", "pass_rate", "table5_complementarity", "call_rate"}
    for name in names:
        assert (out / f"{name}.png").read_bytes().startswith(b"\x89PNG")
        assert "<svg" in (out / f"{name}.svg").read_text()
    page = (out / "report.html").read_text()
    assert set(re.findall(r'data-figure="([^"]+)"', page)) == names
    assert not re.findall(r'(?:src|href)="(?!data:)', page)  # nothing to fetch
    assert "The paper's Tables 5 and 6 (194,925 questions)" in page
    assert "8,168" in page and "27,339" in page
    assert run["report"]["config_digests"] and run["report"]["templates"]["recorded"]
    assert str(out / "report.html") in run["stdout"]
    assert run["report"]["contamination"] is None and "Not checked" in page  # decontam never ran


def test_report_leaves_the_database_untouched(run: dict[str, Any], tmp_path: Path) -> None:
    before = run["db"].read_bytes()
    done = run_cli("report", "--db", run["db"], "--out", tmp_path / "again")
    assert done.returncode == 0, done.stderr
    assert run["db"].read_bytes() == before
    assert json.loads((tmp_path / "again" / "report.json").read_text()) == run["report"]


@pytest.mark.parametrize("make,expect", [
    (lambda p: None, "no such database"),
    (lambda p: p.write_text("not sqlite at all" * 100), "not a reasonmed checkpoint database"),
])
def test_bad_database_is_one_line_exit_2(tmp_path: Path, make: Any, expect: str) -> None:
    db = tmp_path / "x.db"
    make(db)
    done = run_cli("report", "--db", db, "--out", tmp_path / "out")
    assert done.returncode == 2
    assert expect in done.stderr and "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("k,n,low,high", [(0, 10, 0.0, 0.2775), (5, 10, 0.2366, 0.7634), (10, 10, 0.7225, 1.0),
                                          (1, 1, 0.2065, 1.0)])
def test_wilson_interval(k: int, n: int, low: float, high: float) -> None:
    p = wilson(k, n)
    assert (round(p.low, 4), round(p.high, 4)) == (low, high)


def test_scores_paired_before_and_after_refinement(run: dict[str, Any], tmp_path: Path) -> None:
    import shutil

    db = tmp_path / "scored.db"
    for suffix in ("", "-wal", "-shm"):
        if Path(f"{run['db']}{suffix}").exists():
            shutil.copy(f"{run['db']}{suffix}", f"{db}{suffix}")
    for stage in ("pre-refine", "post-refine"):
        done = run_cli("score", "--db", db, "--stage", stage)
        assert done.returncode == 0, done.stderr
    done = run_cli("report", "--db", db, "--out", tmp_path / "report")
    assert done.returncode == 0, done.stderr
    data = json.loads((tmp_path / "report" / "report.json").read_text())
    rows = query(db, "SELECT label, target_id, score FROM scores")
    by = {label: {t: s for lab, t, s in rows if lab == label} for label in ("pre-refine", "post-refine")}
    sets = {s["label"]: s for s in data["scores"]["sets"]}
    for label, scores in by.items():
        assert sets[label]["n"] == len(scores) > 0
        assert sets[label]["mean"] == pytest.approx(sum(scores.values()) / len(scores), abs=1e-4)
    common = set(by["pre-refine"]) & set(by["post-refine"])
    paired = data["scores"]["paired"]
    assert paired["difference"]["n"] == len(common) > 0
    assert paired["difference"]["mean"] == pytest.approx(
        sum(by["post-refine"][t] - by["pre-refine"][t] for t in common) / len(common), abs=1e-4)
    assert sets["pre-refine"]["paper"] == 7.37 and paired["paper"] == {"pre": 7.37, "post": 8.17}
    assert (tmp_path / "report" / "scores.png").is_file()
