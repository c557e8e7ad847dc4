"""One question, one record set: across runs in one database, and across ids that hold the same question."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

from e2e_support import ROOT, SIM_TOML, query, read_jsonl, run_cli

QUESTIONS = ROOT / "examples" / "questions.jsonl"


def _export(db: Path, out: Path, *extra: str) -> dict[str, list[dict]]:
    r = run_cli("export", "--db", db, "--out", out, *extra)
    assert r.returncode == 0, r.stderr
    # a set without rows is not written (datasets cannot load an empty file): absent reads as no rows
    return {name: read_jsonl(out / f"{name}.jsonl") if (out / f"{name}.jsonl").exists() else []
            for name in ("records", "failures", "reasonmed")}


def test_a_limited_run_then_a_full_run_exports_each_question_once(tmp_path):
    db = tmp_path / "two.db"
    for extra in (("--limit", "10"), ()):
        r = run_cli("run", "--config", SIM_TOML, "--input", QUESTIONS, "--db", db, *extra)
        assert r.returncode in (0, 3), r.stderr
    question_ids = [json.loads(line)["id"] for line in QUESTIONS.read_text().splitlines()]
    both = _export(db, tmp_path / "both")
    clean = tmp_path / "clean.db"
    assert run_cli("run", "--config", SIM_TOML, "--input", QUESTIONS, "--db", clean).returncode in (0, 3)
    once = _export(clean, tmp_path / "once")

    records = both["records"]
    assert len({r["record_id"] for r in records}) == len(records), "a record is exported twice"
    from_runs: dict[str, set[str]] = defaultdict(set)
    for row in records + both["failures"]:
        from_runs[row["question_id"]].add(row["run_id"])
    assert all(len(r) == 1 for r in from_runs.values()), "a question is exported from two runs"
    assert {r["run_id"] for r in records} == {records[-1]["run_id"]}, "the later run supersedes the earlier"
    assert [r["record_id"] for r in records] == [r["record_id"] for r in once["records"]]
    assert both["reasonmed"] == once["reasonmed"]
    assert set(Counter(r["question_id"] for r in records)) <= set(question_ids)
    # each run keeps its records (the records table is keyed by run), and status counts what export writes
    per_run = dict(query(db, "SELECT run_id, COUNT(*) FROM records GROUP BY run_id"))
    assert len(per_run) == 2 and per_run[records[-1]["run_id"]] == len(records), per_run
    status = run_cli("status", "--db", db)
    assert status.returncode == 0, status.stderr
    assert f"final records: {len(records)}\n" in status.stdout, status.stdout
    # one run alone, on request
    first = _export(db, tmp_path / "first", "--run", records[-1]["run_id"])
    assert [r["record_id"] for r in first["records"]] == [r["record_id"] for r in records]
    assert run_cli("export", "--db", db, "--out", tmp_path / "x", "--run", "run-nope").returncode == 2


def _questions_with_a_copy(path: Path) -> list[dict]:
    rows = [json.loads(line) for line in QUESTIONS.read_text().splitlines()[:4]]
    copy = dict(rows[1], id="copy-of-" + rows[1]["id"], question="  " + rows[1]["question"].replace(" ", "  ") + " ")
    rows.append(copy)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return rows


def test_two_ids_with_the_same_question_get_one_record_set_naming_both(tmp_path):
    rows = _questions_with_a_copy(tmp_path / "dups.jsonl")
    original, copy = rows[1]["id"], rows[-1]["id"]
    db = tmp_path / "dups.db"
    r = run_cli("run", "--config", SIM_TOML, "--input", tmp_path / "dups.jsonl", "--db", db)
    assert r.returncode in (0, 3), r.stderr
    assert f"1 duplicate question(s) merged into 1: {copy} -> {original}" in r.stderr
    exported = _export(db, tmp_path / "out")
    ids = {row["question_id"] for row in exported["records"] + exported["failures"]}
    assert copy not in ids and original in ids
    assert all(row["question_ids"] == [original, copy]
               for row in exported["records"] if row["question_id"] == original)
    assert all(row["question_ids"] == [row["question_id"]]
               for row in exported["records"] if row["question_id"] != original)

    kept = tmp_path / "kept.db"
    r = run_cli("run", "--config", SIM_TOML, "--input", tmp_path / "dups.jsonl", "--db", kept, "--keep-duplicates")
    assert r.returncode in (0, 3) and "merged" not in r.stderr, r.stderr
    exported = _export(kept, tmp_path / "kept")
    assert {original, copy} <= {row["question_id"] for row in exported["records"]}
