"""``status`` tells the truth: running while a process drives the database, stopped once it is killed."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path

from e2e_support import cli_command, cli_env, query, run_cli, sim_config


def _wait_for_calls(log: Path, proc: subprocess.Popen, at_least: int = 30) -> None:
    deadline = time.monotonic() + 60  # a hang guard, not a timing assertion
    while proc.poll() is None and (not log.exists() or log.read_text().count("\n") < at_least):
        assert time.monotonic() < deadline, "the run made no simulated call within 60 s"
        time.sleep(0.01)


def test_status_says_running_while_driven_and_stopped_after_sigkill(pubmedqa, tmp_path):
    config = tmp_path / "slow.toml"
    config.write_text(sim_config(latency_ms="40", call_log='"calls.log"'), encoding="utf-8")
    db = tmp_path / "run.db"
    proc = subprocess.Popen(cli_command("run", "--config", config, "--input", pubmedqa, "--db", db, "--limit", 200),
                            cwd=tmp_path, env=cli_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_for_calls(tmp_path / "calls.log", proc)
        assert proc.poll() is None, "the run ended too soon: give it more work"
        live = run_cli("status", "--db", db, "--json")
        still_running = proc.poll() is None
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert live.returncode == 0, live.stderr
    if still_running:  # the run was alive through the whole status call
        state = json.loads(live.stdout)
        assert state["state"] == "running" and state["runs"][0]["status"] == "running"
    assert query(db, "SELECT status FROM runs") == [("running",)]  # unfinished in the database

    r = run_cli("status", "--db", db)
    assert r.returncode == 0, r.stderr
    assert re.search(rf"^run run-\w+: stopped, 200 questions \(resumable: `reasonmed resume --db {re.escape(str(db))}`\)$",
                     r.stdout, re.M), r.stdout
    assert "ETA none (not running)" in r.stdout and "(not running now)" in r.stdout
    data = json.loads(run_cli("status", "--db", db, "--json").stdout)
    assert data["state"] == "stopped" and data["progress"]["eta_s"] is None
    assert data["progress"]["settled"] < data["progress"]["questions"] == 200
    assert sum(s["pending"] for s in data["stages"].values()) > 0
    watched = run_cli("status", "--db", db, "--watch", "--every", "0.05", timeout=60)
    assert watched.returncode == 0 and "run stopped" in watched.stdout


def test_status_json_of_a_finished_run_counts_every_failed_delivery(tmp_path):
    config = tmp_path / "faulty.toml"
    config.write_text(sim_config(truncation_rate="0.2", malformed_rate="0.3"), encoding="utf-8")
    db = tmp_path / "run.db"
    r = run_cli("run", "--config", config, "--input", Path(__file__).parents[2] / "examples" / "questions.jsonl",
                "--db", db, "--limit", 12)
    assert r.returncode in (0, 3), r.stderr
    data = json.loads(run_cli("status", "--db", db, "--json").stdout)
    assert data["state"] == "finished" and data["progress"]["fraction"] == 1.0
    lost = query(db, "SELECT COUNT(DISTINCT parent_id) FROM messages WHERE type='StageFailed' AND label='generate'")[0][0]
    assert lost > 0, "the simulated truncations should have cost some paths"
    assert data["stages"]["generator"]["failed"] == lost  # a truncated path is a failed generation
    failed_q = {q for (q,) in query(db, "SELECT DISTINCT question_id FROM messages WHERE type='StageFailed'"
                                        " AND label NOT IN ('generate','verify','verifier')"
                                        " AND label NOT LIKE 'gate:%'")}  # a gate's rejection is not a failure
    assert data["failed_questions"] == len(failed_q)
    tiered = sum(data["tiers"].values())
    assert tiered + data["failed_questions"] <= 12
    assert tiered == len({q for (q,) in query(db, "SELECT question_id FROM messages WHERE type='TierAssigned'")}
                         - failed_q)
