"""`status` rows of their own: calls in flight (apart from pending), retries, 429s, cache hits, open circuits.

Each is read from a real database a real run wrote: the CLI as a subprocess against the fake server on
127.0.0.1 (a wrong key, a slow server, 429s), or the simulator (a second run answered by the cache)."""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
from pathlib import Path

import pytest

from e2e_support import SIM_TOML
from fake_llm_server import FakeLLMServer, Faults
from retry_support import KEY, QUESTIONS, cli, config, db_rows, env, start_cli

pytestmark = pytest.mark.slow


async def _status(db: Path, server: FakeLLMServer | None = None) -> tuple[dict, str]:
    environ = env(server) if server else env_without_server()
    rc, out, err = await cli("status", "--db", str(db), "--json", environ=environ)
    assert rc == 0, err
    rc, text, err = await cli("status", "--db", str(db), environ=environ)
    assert rc == 0, err
    return json.loads(out), text


def env_without_server() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("REASONMED_")}


def _row(text: str, head: str) -> str:
    [line] = [line for line in text.splitlines() if line.startswith(head)]
    return line


async def test_an_open_circuit_is_its_own_row_until_a_resume_closes_it(tmp_path):
    cfg = config(tmp_path, grace_s=1)
    wrong = "sk-wrong-key-7f3a9c"
    async with FakeLLMServer(api_key=KEY) as server:
        db = tmp_path / "c.db"
        rc, _, err = await cli("run", "--config", str(cfg), "--input", str(QUESTIONS), "--db", str(db), "--limit", "3",
                               "--no-preflight", environ=env(server, key=wrong), guard_s=60)
        assert rc == 4 and "circuit open" in err, err
        report, text = await _status(db, server)
        assert report["state"] == "stopped" and report["in_flight"] is None
        circuits = report["open_circuits"]  # each model that got its 401s (the generators' run in parallel)
        assert circuits and len({c["model"] for c in circuits}) == len(circuits)
        assert all(c["model"].startswith("fake-") and c["endpoint"] == server.openai_url and "401" in c["error"]
                   for c in circuits), circuits
        # every circuit the run counted is shown (a model whose circuit opened as the run was stopping on
        # another's may have its row written and its count lost with the cancelled handler, never the reverse)
        assert {m for (m,) in db_rows(db, "SELECT model FROM calls WHERE outcome='circuit_open'")} <= {
            c["model"] for c in circuits}
        row = _row(text, "open circuits:")
        assert all(c["model"] in row for c in circuits) and server.openai_url in row and "resume" in row, row
        assert wrong not in text and wrong not in json.dumps(report)
        with sqlite3.connect(db) as conn:
            assert not any(wrong in line for line in conn.iterdump()), "the refused key reached the database"

        rc, _, err = await cli("resume", "--db", str(db), environ=env(server))
        assert rc == 0, err
        report, text = await _status(db, server)
    assert report["open_circuits"] == [] and _row(text, "open circuits:") == "open circuits: none"
    assert report["state"] == "finished"


async def test_calls_in_flight_are_shown_apart_from_pending_while_the_run_is_driven(tmp_path):
    cfg = config(tmp_path, grace_s=1)
    async with FakeLLMServer(Faults(latency_s=120.0), api_key=KEY) as server:  # every call held by the server
        db = tmp_path / "f.db"
        proc = await start_cli("run", "--config", str(cfg), "--input", str(QUESTIONS), "--db", str(db),
                               "--limit", "2", "--no-preflight", environ=env(server))
        async with asyncio.timeout(60):  # a hang guard: until the driving process has published its gauge
            while not (db.exists() and _live_calls(db)):
                await asyncio.sleep(0.05)
        report, text = await _status(db, server)
        assert report["state"] == "running"
        flight = report["in_flight"]
        assert 1 <= flight["calls"] <= len(server.requests), flight  # out on the wire, none answered
        assert flight["waiting"] == 0
        pending = sum(stage["pending"] for stage in report["stages"].values())
        assert pending >= 1
        row = _row(text, "in flight:")
        assert "LLM calls on the wire" in row and "as of" in row, row
        proc.send_signal(signal.SIGINT)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 130, err.decode()
        report, text = await _status(db, server)
    assert report["in_flight"] is None and report["state"] == "stopped"
    assert _row(text, "in flight:") == "in flight: 0 (no process drives this database)"


def _live_calls(db: Path) -> int:
    try:
        rows = db_rows(db, "SELECT value FROM meta WHERE key='live'")
    except sqlite3.OperationalError:  # created, its schema not yet
        return 0
    return json.loads(rows[0][0])["in_flight"] if rows else 0


async def test_retries_and_429s_are_counted_apart(tmp_path):
    cfg = config(tmp_path, grace_s=1)
    async with FakeLLMServer(Faults(rate_429=0.3, retry_after_s=0.01, seed=3), api_key=KEY) as server:
        db = tmp_path / "r.db"
        rc, _, err = await cli("run", "--config", str(cfg), "--input", str(QUESTIONS), "--db", str(db), "--limit", "2",
                               "--no-preflight", environ=env(server))  # the preflight's own requests aside
        assert rc == 0, err
        report, text = await _status(db, server)
        answered_429 = sum(1 for r in server.requests if r.status == 429)
    assert answered_429 > 0
    assert report["rate_limited"] == answered_429  # every 429 the server sent, counted once
    assert report["retries"] == answered_429  # each was sent again (429s cost waiting, never an attempt)
    assert _row(text, "retries:") == f"retries: {answered_429} attempts sent again; 429s: {answered_429}"


async def test_a_second_run_answered_by_the_cache_shows_its_hits(tmp_path):
    db = tmp_path / "s.db"
    environ = env_without_server()
    rc, _, err = await cli("run", "--config", str(SIM_TOML), "--input", str(QUESTIONS), "--db", str(db),
                           "--limit", "2", environ=environ)
    assert rc in (0, 3), err
    first, _ = await _status(db)
    paid = sum(c["calls"] for c in first["calls"] if c["outcome"] == "ok")
    assert first["cache_hits"] == 0 and paid > 0
    rc, _, err = await cli("run", "--config", str(SIM_TOML), "--input", str(QUESTIONS), "--db", str(db),
                           "--limit", "4", environ=environ)
    assert rc in (0, 3), err
    report, text = await _status(db)
    # the first two questions' calls, made again by the second run, are answered by the cache: not paid twice
    assert report["cache_hits"] == paid
    assert sum(c["calls"] for c in report["calls"] if c["outcome"] == "ok") > paid
    assert _row(text, "cache hits:") == f"cache hits: {paid} calls answered by the cache (not paid again)"
