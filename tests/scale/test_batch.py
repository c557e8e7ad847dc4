"""Batch transport: a run's generate stage exported as OpenAI Batch JSONL, answered by a fake `vllm run-batch`,
imported (twice, cut off, with failed requests: all safe), then resumed with no live generate call."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from e2e_support import ROOT, call_log_keys, query, read_jsonl, run_cli, sim_config
from reasonmed_async.scale.batch import BatchFileError, parse_results

FAKE_RUN_BATCH = ROOT / "tests" / "fake_run_batch.py"
LIMIT = 5


def _run_batch(requests: Path, results: Path, *extra: str) -> None:
    subprocess.run([sys.executable, FAKE_RUN_BATCH, "-i", requests, "-o", results, *extra], check=True, timeout=60)


@pytest.mark.slow
def test_generate_through_a_batch_and_back(pubmedqa, tmp_path) -> None:
    config = tmp_path / "sim.toml"
    config.write_text(sim_config(call_log='"calls.log"'), encoding="utf-8")
    db = tmp_path / "run.db"
    r = run_cli("run", "--config", config, "--input", pubmedqa, "--limit", LIMIT, "--db", db, "--ingest-only",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert query(db, "SELECT COUNT(*) FROM llm_cache") == [(0,)] and not (tmp_path / "calls.log").exists()

    requests = tmp_path / "requests.jsonl"
    r = run_cli("batch", "export", "--db", db, "--stage", "generate", "--out", requests)
    assert r.returncode == 0, r.stderr
    rows = read_jsonl(requests)
    assert len(rows) == LIMIT * 9  # 3 models x 3 temperatures per question
    assert len({row["custom_id"] for row in rows}) == len(rows)
    first = rows[0]
    assert first["method"] == "POST" and first["url"] == "/v1/chat/completions"
    assert first["body"]["messages"][-1]["role"] == "user" and "temperature" in first["body"]
    assert len({row["body"]["model"] for row in rows}) == 3  # each generator's served model

    results = tmp_path / "results.jsonl"
    _run_batch(requests, results, "--cut", "--fail-every", "10")  # 4 failed requests, the last line cut off
    r = run_cli("batch", "import", "--db", db, results)
    assert r.returncode == 0, r.stderr
    assert "40 answers stored" in r.stderr and "4 failed" in r.stderr and f"{results}:45 is cut off" in r.stderr
    r = run_cli("batch", "import", "--db", db, results)  # again: nothing new, nothing counted twice
    assert r.returncode == 0 and "0 answers stored, 40 already there" in r.stderr, r.stderr
    assert query(db, "SELECT COUNT(*) FROM llm_cache") == [(40,)]
    assert query(db, "SELECT stage, outcome, SUM(calls) FROM calls GROUP BY stage, outcome") == [("batch", "ok", 40)]

    r = run_cli("batch", "export", "--db", db, "--stage", "generate", "--out", requests)  # what is still missing
    assert r.returncode == 0, r.stderr
    assert len(read_jsonl(requests)) == 5
    _run_batch(requests, results)
    r = run_cli("batch", "import", "--db", db, results)
    assert r.returncode == 0 and "5 answers stored" in r.stderr, r.stderr
    r = run_cli("batch", "export", "--db", db, "--stage", "generate", "--out", requests)
    assert r.returncode == 0 and read_jsonl(requests) == []

    r = run_cli("resume", "--db", db, cwd=tmp_path, timeout=120)
    assert r.returncode in (0, 3), r.stderr
    live = set(call_log_keys(tmp_path / "calls.log"))
    batched = {row["custom_id"] for row in rows}
    assert live and not live & batched  # the other stages ran live; no generate call was made again
    out = tmp_path / "export"
    assert run_cli("export", "--db", db, "--out", out).returncode in (0, 3)
    records = read_jsonl(out / "records.jsonl")
    assert records and all(r["provenance"][0]["backend"] == "batch" for r in records if r["origin"] == "generated")


def test_a_malformed_line_refuses_the_file_before_storing_anything(tmp_path) -> None:
    good = json.dumps({"custom_id": "a" * 64, "response": {"status_code": 200, "body": {
        "model": "m", "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}}]}}, "error": None})
    with pytest.raises(BatchFileError, match=r"results.jsonl:2: not a JSON object \(invalid JSON\)"):
        parse_results([good + "\n", "{broken\n", good + "\n"], source="results.jsonl")
    with pytest.raises(BatchFileError, match=r":1: custom_id: 'req-1' is not a request key"):
        parse_results([good.replace("a" * 64, "req-1") + "\n"], source="r.jsonl")
    parsed = parse_results([good + "\n", good[:30]], source="r.jsonl")  # cut at the end: left out
    assert len(parsed.answers) == 1 and parsed.cut_line == 2 and parsed.answers[0].completion.text == "ok"


def test_import_of_a_bad_file_exits_2_and_stores_nothing(pubmedqa, tmp_path) -> None:
    db = tmp_path / "run.db"
    r = run_cli("run", "--config", ROOT / "examples" / "sim.toml", "--input", pubmedqa, "--limit", 1, "--db", db,
                "--ingest-only")
    assert r.returncode == 0, r.stderr
    bad = tmp_path / "results.jsonl"
    bad.write_text('{"custom_id": "' + "b" * 64 + '", "response": {"status_code": 200, "body": {"model": "m",'
                   ' "choices": [{"message": {"content": "x"}}]}}}\n[1, 2]\n', encoding="utf-8")
    r = run_cli("batch", "import", "--db", db, bad)
    assert r.returncode == 2 and f"{bad}:2: not a JSON object" in r.stderr and "Traceback" not in r.stderr
    assert query(db, "SELECT COUNT(*) FROM llm_cache") == [(0,)]
