"""``reasonmed decontam``: planted duplicates found (exact, reworded, near-duplicate), no false positive.

The generation run is 100 real PubMedQA questions; the benchmark file holds three planted copies of
three of them and 100 other real PubMedQA questions.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from e2e_support import query, read_jsonl, run_cli

from reasonmed_async.decontam.match import BenchmarkIndex, Item, Thresholds, question_text

EXACT, REWORDED, NEAR = 5, 10, 20


def _typos(text: str) -> str:
    """A near-duplicate: one letter changed in every third word (breaks most 8-grams, keeps the ratio high)."""
    words = text.split(" ")
    return " ".join(w[:-1] + ("x" if w[-1] != "x" else "y") if i % 3 == 1 and len(w) > 3 else w
                    for i, w in enumerate(words))


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory, pubmedqa: Path) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("decontam")
    raw = json.loads(pubmedqa.read_text(encoding="utf-8"))
    pmids = list(raw)
    generation = {k: raw[k] for k in pmids[:100]}
    (tmp / "gen.json").write_text(json.dumps(generation), encoding="utf-8")
    db = tmp / "run.db"
    done = run_cli("run", "--config", Path(__file__).parents[2] / "examples" / "sim.toml",
                   "--input", tmp / "gen.json", "--db", db, timeout=120)
    assert done.returncode in (0, 3), done.stderr  # 3: some questions failed (the sim's faults)

    def row(qid: str, stem: str) -> dict[str, Any]:
        return {"id": qid, "question": stem, "options": ["yes", "no", "maybe"], "answer": "A"}

    stem = {i: raw[pmids[i]]["QUESTION"] for i in (EXACT, REWORDED, NEAR)}
    bench = [row("bench-exact", "  " + stem[EXACT].upper().replace("?", " ?!") + " "),
             row("bench-reworded", "In a cohort of adults seen in clinic: " + stem[REWORDED]),
             row("bench-near", _typos(stem[NEAR]))]
    bench += [row(f"bench-other-{k}", raw[k]["QUESTION"]) for k in pmids[500:600]]
    (tmp / "bench.jsonl").write_text("".join(json.dumps(r) + "\n" for r in bench), encoding="utf-8")
    return {"tmp": tmp, "db": db, "pmids": pmids}


def test_planted_duplicates_are_found_and_nothing_else(setup: dict[str, Any]) -> None:
    done = run_cli("decontam", "--db", setup["db"], "--against", setup["tmp"] / "bench.jsonl")
    assert done.returncode == 0, done.stderr
    pairs = {(line.split("\t")[0], line.split("\t")[1], line.split("\t")[2]) for line in done.stdout.splitlines()}
    p = setup["pmids"]
    assert pairs == {(f"pubmedqa-{p[EXACT]}", "bench.jsonl:bench-exact", "exact"),
                     (f"pubmedqa-{p[REWORDED]}", "bench.jsonl:bench-reworded", "ngram"),
                     (f"pubmedqa-{p[NEAR]}", "bench.jsonl:bench-near", "fuzzy")}
    stored = query(setup["db"], "SELECT question_id, method, score FROM contamination ORDER BY method")
    assert [(q, m) for q, m, _ in stored] == [(f"pubmedqa-{p[EXACT]}", "exact"), (f"pubmedqa-{p[NEAR]}", "fuzzy"),
                                             (f"pubmedqa-{p[REWORDED]}", "ngram")]
    assert all(0 < s <= 100 for _, _, s in stored)
    assert "3 of 100 questions flagged" in done.stderr


def test_official_ids_export_exclusion_and_report(setup: dict[str, Any]) -> None:
    p, tmp = setup["pmids"], setup["tmp"]
    (tmp / "test_ids.json").write_text(json.dumps({p[30]: "yes", p[31]: "no", "99999999": "maybe"}))
    done = run_cli("decontam", "--db", setup["db"], "--against", tmp / "bench.jsonl",
                   "--exclude-ids", tmp / "test_ids.json")
    assert done.returncode == 0, done.stderr
    assert {line.split("\t")[0] for line in done.stdout.splitlines() if line.split("\t")[2] == "id"} == {
        f"pubmedqa-{p[30]}", f"pubmedqa-{p[31]}"}
    done = run_cli("export", "--db", setup["db"], "--out", tmp / "clean", "--exclude-contaminated")
    assert done.returncode == 0, done.stderr
    assert "left out 5 question(s)" in done.stderr
    kept = {r["question_id"] for r in read_jsonl(tmp / "clean" / "records.jsonl")}
    assert not kept & {f"pubmedqa-{p[i]}" for i in (EXACT, REWORDED, NEAR, 30, 31)} and len(kept) >= 80
    done = run_cli("report", "--db", setup["db"], "--out", tmp / "report")
    assert done.returncode == 0, done.stderr
    c = json.loads((tmp / "report" / "report.json").read_text())["contamination"]
    assert c["flagged_questions"] == 5
    assert c["checked"]["against"] == ["bench.jsonl"] and c["checked"]["listed_ids"] == 3
    assert {r["method"]: r["questions"] for r in c["by_method"]} == {"exact": 1, "ngram": 1, "fuzzy": 1, "id": 2}


def test_usage_errors_are_one_line(setup: dict[str, Any], tmp_path: Path) -> None:
    for args, expect in ((("--db", setup["db"]), "give --against"),
                         (("--db", tmp_path / "none.db", "--against", setup["tmp"] / "bench.jsonl"), "no such database"),
                         (("--db", setup["db"], "--against", tmp_path / "missing.jsonl"), "missing.jsonl")):
        done = run_cli("decontam", *args)
        assert done.returncode == 2 and expect in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("a,b,method", [
    ("Which drug is first-line for status epilepticus?", "which DRUG is first line for status epilepticus", "exact"),
    ("Is aspirin effective for the primary prevention of stroke in elderly women with diabetes?",
     "A trial asked: is aspirin effective for the primary prevention of stroke in elderly women with diabetes",
     "ngram"),
    ("Does preoperative anemia predict mortality after cardiac surgery in older patients?",
     "Does preoperative anaemia predict mortality after cardiac surgery in older patient?", "fuzzy"),
    ("Which of the following is the most likely diagnosis in this febrile child with a rash?",
     "Which of the following is the most likely diagnosis in this elderly man with chest pain?", None),
])
def test_matching_table(a: str, b: str, method: str | None) -> None:
    index = BenchmarkIndex([Item("bench", "b", question_text(b, ()))])
    found = index.matches(Item("db", "a", question_text(a, ())), Thresholds())
    assert [m.method for m in found] == ([method] if method else [])
