"""Outages cost waiting, never data; a wrong key opens the circuit and stops the run resumably.

The CLI runs as a subprocess against the fake server on 127.0.0.1; exports are compared byte for byte
with those of an uninterrupted run of the same input and configuration (the same run id)."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import pytest

from fake_llm_server import FakeLLMServer, Faults
from retry_support import KEY, QUESTIONS, ROOT, cli, config, db_rows, env, export_files, start_cli

pytestmark = pytest.mark.slow


async def _clean_export(tmp_path: Path, server: FakeLLMServer, cfg: Path, source: Path, limit: int) -> dict[str, bytes]:
    db, out = tmp_path / "clean.db", tmp_path / "clean"
    rc, _, err = await cli("run", "--config", str(cfg), "--input", str(source), "--db", str(db), "--limit", str(limit),
                           environ=env(server), guard_s=300)
    assert rc == 0, err
    rc, _, err = await cli("export", "--db", str(db), "--out", str(out), environ=env(server))
    assert rc == 0, err
    return export_files(out)


def _nothing_failed(db: Path) -> None:
    assert db_rows(db, "SELECT COUNT(*) FROM messages WHERE type='StageFailed'") == [(0,)]
    assert db_rows(db, "SELECT COUNT(*) FROM deliveries WHERE state='failed'") == [(0,)]


async def _until(predicate, guard_s: float = 60.0) -> None:
    """Wait for a condition of the outside world (the subprocess, the server), bounded by a hang guard."""
    async with asyncio.timeout(guard_s):
        while not predicate():
            await asyncio.sleep(0.05)


async def test_server_stopped_mid_run_and_restarted_loses_nothing(tmp_path, pubmedqa):
    limit = 100
    cfg = config(tmp_path, outage_budget_s=600)
    server = await FakeLLMServer(api_key=KEY).start()
    try:
        clean = await _clean_export(tmp_path, server, cfg, pubmedqa, limit)
        port, served_clean = server.port, len(server.requests)
        db, out = tmp_path / "outage.db", tmp_path / "outage"
        proc = await start_cli("run", "--config", str(cfg), "--input", str(pubmedqa), "--db", str(db),
                               "--limit", str(limit), environ=env(server))
        await _until(lambda: len(server.requests) > served_clean + 300)  # well into the run
        await server.kill()
        await _until(lambda: db.exists() and db_rows(
            db, "SELECT COUNT(*) FROM calls WHERE outcome='error:ConnectionLost'")[0][0] > 0)
        server = await FakeLLMServer(api_key=KEY, port=port).start()
        _, err = await asyncio.wait_for(proc.communicate(), 300)
        assert proc.returncode == 0, err.decode()
    finally:
        await server.stop()
    _nothing_failed(db)
    assert db_rows(db, "SELECT status FROM runs") == [("finished",)]
    assert db_rows(db, "SELECT COUNT(*) FROM deliveries WHERE state='pending'") == [(0,)]
    rc, _, err = await cli("export", "--db", str(db), "--out", str(out), environ=env(server))
    assert rc == 0, err
    assert export_files(out) == clean


async def test_wrong_key_opens_the_circuit_then_resume_with_the_right_key_finishes(tmp_path):
    cfg = config(tmp_path)
    async with FakeLLMServer(api_key=KEY) as server:
        clean = await _clean_export(tmp_path, server, cfg, QUESTIONS, 4)
        db, out = tmp_path / "wrong.db", tmp_path / "wrong"
        before = len(server.requests)
        rc, _, err = await cli("run", "--config", str(cfg), "--input", str(QUESTIONS), "--db", str(db),
                               "--limit", "4", "--no-preflight", environ=env(server, key="sk-wrong-key-000"),
                               guard_s=60)
        assert rc == 4, err
        assert "circuit open" in err and "fake-" in err and server.openai_url in err and "HTTP 401" in err, err
        assert "resume" in err and "Traceback" not in err
        refused = server.requests[before:]
        assert refused and all(r.status == 401 for r in refused)
        assert len(refused) < 60, "calls stop once the circuit is open"
        _nothing_failed(db)
        assert db_rows(db, "SELECT model FROM calls WHERE outcome='circuit_open'")
        assert db_rows(db, "SELECT status FROM runs") == [("running",)]
        rc, _, err = await cli("resume", "--db", str(db), environ=env(server))
        assert rc == 0, err
        rc, _, err = await cli("export", "--db", str(db), "--out", str(out), environ=env(server))
        assert rc == 0, err
    _nothing_failed(db)
    assert export_files(out) == clean


async def test_a_full_database_stops_the_run_resumably_and_resume_finishes_identical(tmp_path):
    """Commits fail with SQLITE_FULL (a database that may grow by 30 pages only, fewer than the run needs): the
    run stops by itself, exit 4, within a 60 s hang guard; a resume on a healthy disk finishes with the
    uninterrupted export."""
    cfg = config(tmp_path)
    async with FakeLLMServer(api_key=KEY) as server:
        clean = await _clean_export(tmp_path, server, cfg, QUESTIONS, 12)
        db, out = tmp_path / "full.db", tmp_path / "full"
        small = Path(__file__).with_name("small_disk.py")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(small), "30", "run", "--config", str(cfg), "--input", str(QUESTIONS), "--db",
            str(db), "--limit", "12", cwd=ROOT, env=env(server), stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        _, err = await asyncio.wait_for(proc.communicate(), 60)
        text = err.decode()
        assert proc.returncode == 4, text
        assert "cannot grow" in text and "full.db" in text and "resume" in text and "Traceback" not in text, text
        assert db_rows(db, "SELECT COUNT(*) FROM deliveries WHERE state='failed'") == [(0,)]
        rc, _, err = await cli("resume", "--db", str(db), environ=env(server))
        assert rc == 0, err
        rc, _, err = await cli("export", "--db", str(db), "--out", str(out), environ=env(server))
        assert rc == 0, err
    _nothing_failed(db)
    assert export_files(out) == clean


async def test_sigterm_while_fan_outs_are_in_flight_exits_within_the_grace_period(tmp_path):
    """The generator's TaskGroup is waiting on nine slow calls when SIGTERM comes: the run stops after the
    grace period (2 s here; the guard below is a hang guard, not a timing assertion), nothing is failed."""
    cfg = config(tmp_path, grace_s=2)
    async with FakeLLMServer(Faults(latency_s=120.0), api_key=KEY) as server:
        db = tmp_path / "slow.db"
        proc = await start_cli("run", "--config", str(cfg), "--input", str(QUESTIONS), "--db", str(db),
                               "--limit", "4", "--no-preflight", environ=env(server))
        await _until(lambda: len(server.requests) >= 8)  # the replica's first 8 slots: fan-outs are waiting
        proc.send_signal(signal.SIGTERM)
        _, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 143, err.decode()
    _nothing_failed(db)
    assert db_rows(db, "SELECT COUNT(*) FROM deliveries WHERE consumer='generator' AND state='pending'") == [(4,)]
