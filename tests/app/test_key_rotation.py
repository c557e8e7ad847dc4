"""A key file rotated mid-run: the run switches to the new key without a restart, and loses nothing.

``reasonmed run`` runs as a subprocess against the fake server on 127.0.0.1 with ``api_key_file``.
Mid-run the server holds its requests (``hold_from``), the test rewrites the key file and switches the
server to the new key, then lets the requests go: (a) with SIGHUP, (b) without (the 401 path: the
backend re-reads the file and resends), (c) with a wrong new key (the 401s count: the circuit opens,
exit 4, and a resume with the right key finishes).  Exports are compared byte for byte with a clean
run of the same config; no key (old, new or wrong) reaches stderr, the log, the database or the export.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import pytest

from fake_llm_server import FakeLLMServer
from key_support import NEW, OLD, WRONG, assert_no_key, bearer, events, rotate, use_key_file
from retry_support import QUESTIONS, cli, config, db_rows, env, export_files, start_cli

pytestmark = pytest.mark.slow

LIMIT = 6
_started: list[asyncio.subprocess.Process] = []


@pytest.fixture(autouse=True)
async def _no_run_left_behind():
    """A failed assertion mid-run must not leave the subprocess running."""
    yield
    while _started:
        proc = _started.pop()
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


def _env(server: FakeLLMServer) -> dict[str, str]:
    return {k: v for k, v in env(server).items() if k != "REASONMED_OPENAI_API_KEY"}  # the file is the only source


def _key_file_config(tmp_path: Path) -> tuple[Path, Path]:
    cfg = config(tmp_path)
    return cfg, use_key_file(cfg)


async def _until(predicate, guard_s: float = 60.0) -> None:
    """Wait for the subprocess or the server to reach a state, bounded by a hang guard."""
    async with asyncio.timeout(guard_s):
        while not predicate():
            await asyncio.sleep(0.02)


async def _clean(tmp_path: Path, server: FakeLLMServer, cfg: Path) -> dict[str, bytes]:
    db, out = tmp_path / "clean.db", tmp_path / "clean"
    rc, _, err = await cli("run", "--config", str(cfg), "--input", str(QUESTIONS), "--db", str(db),
                           "--limit", str(LIMIT), environ=_env(server), guard_s=300)
    assert rc == 0, err
    rc, _, err = await cli("export", "--db", str(db), "--out", str(out), environ=_env(server))
    assert rc == 0, err
    return export_files(out)


async def _start_and_hold(tmp_path: Path, server: FakeLLMServer, cfg: Path, name: str):
    """A run started and well under way, with requests held at the server (so it cannot finish meanwhile)."""
    db = tmp_path / f"{name}.db"
    server.hold_from, server.held = len(server.requests) + 30, 0
    server.released.clear()
    proc = await start_cli("run", "--config", str(cfg), "--input", str(QUESTIONS), "--db", str(db),
                           "--limit", str(LIMIT), environ=_env(server))
    _started.append(proc)
    await _until(lambda: server.held > 0)
    return db, proc


async def _finish(proc, server: FakeLLMServer) -> tuple[int, str]:
    _, err = await asyncio.wait_for(proc.communicate(), 300)
    server.hold_from = None
    return proc.returncode, err.decode()


def _nothing_failed(db: Path) -> None:
    assert db_rows(db, "SELECT COUNT(*) FROM messages WHERE type='StageFailed'") == [(0,)]
    assert db_rows(db, "SELECT COUNT(*) FROM deliveries WHERE state='failed'") == [(0,)]
    assert db_rows(db, "SELECT status FROM runs") == [("finished",)]


async def _export(tmp_path: Path, server: FakeLLMServer, db: Path) -> dict[str, bytes]:
    out = tmp_path / f"{db.stem}-export"
    rc, _, err = await cli("export", "--db", str(db), "--out", str(out), environ=_env(server))
    assert rc == 0, err
    return export_files(out)


async def test_sighup_rereads_the_key_file_and_the_run_goes_on_with_the_new_key(tmp_path):
    cfg, key_file = _key_file_config(tmp_path)
    async with FakeLLMServer(api_key=OLD) as server:
        clean = await _clean(tmp_path, server, cfg)
        db, proc = await _start_and_hold(tmp_path, server, cfg, "sighup")
        server.api_key, server.also_accepted = NEW, frozenset({OLD})  # both valid while the key is rolled
        rotate(key_file, NEW)
        proc.send_signal(signal.SIGHUP)
        await _until(lambda: any(e.get("reason") == "sighup" for e in events(db, "credentials.reloaded")))
        mark = len(server.requests)
        server.released.set()
        await _until(lambda: any(bearer(r) == NEW for r in server.requests[mark:]))
        assert not [r for r in server.requests if r.status == 401], "no request was refused while both keys held"
        server.also_accepted = frozenset()  # the old key revoked
        rc, err = await _finish(proc, server)
        assert rc == 0, err
        _nothing_failed(db)
        assert await _export(tmp_path, server, db) == clean
        assert not events(db, "credentials.reload_failed")
        assert_no_key(tmp_path, err)


async def test_a_401_after_the_key_file_changed_rereads_it_and_resends_without_a_strike(tmp_path):
    cfg, key_file = _key_file_config(tmp_path)
    async with FakeLLMServer(api_key=OLD) as server:
        clean = await _clean(tmp_path, server, cfg)
        db, proc = await _start_and_hold(tmp_path, server, cfg, "on401")
        rotate(key_file, NEW)
        server.api_key = NEW  # the old key stops working at once; no SIGHUP
        held_mark = len(server.requests)
        server.released.set()
        rc, err = await _finish(proc, server)
        assert rc == 0, err
        refused = [r for r in server.requests if r.status == 401]
        assert refused and all(bearer(r) == OLD for r in refused), "only requests sent with the old key were refused"
        assert any(bearer(r) == NEW and r.status == 200 for r in server.requests[held_mark:])
        assert [e["reason"] for e in events(db, "credentials.reloaded")] == ["401"]  # the file read once more
        assert not events(db, "llm.wait") and not events(db, "llm.circuit_open")  # no strike toward the circuit
        _nothing_failed(db)
        assert await _export(tmp_path, server, db) == clean
        assert_no_key(tmp_path, err)


async def test_a_wrong_new_key_still_opens_the_circuit_resumably_and_resume_with_the_right_one_finishes(tmp_path):
    cfg, key_file = _key_file_config(tmp_path)
    async with FakeLLMServer(api_key=OLD) as server:
        clean = await _clean(tmp_path, server, cfg)
        db, proc = await _start_and_hold(tmp_path, server, cfg, "wrong")
        rotate(key_file, WRONG)
        server.api_key = NEW
        server.released.set()
        rc, err = await _finish(proc, server)
        assert rc == 4, err
        assert "circuit open" in err and "HTTP 401" in err and "resume" in err and "Traceback" not in err, err
        assert any(bearer(r) == WRONG and r.status == 401 for r in server.requests), "the re-read key was tried"
        assert db_rows(db, "SELECT status FROM runs") == [("running",)]
        assert db_rows(db, "SELECT COUNT(*) FROM deliveries WHERE state='failed'") == [(0,)]
        rotate(key_file, NEW)
        rc, _, resume_err = await cli("resume", "--db", str(db), environ=_env(server), guard_s=300)
        assert rc == 0, resume_err
        _nothing_failed(db)
        assert await _export(tmp_path, server, db) == clean
        assert_no_key(tmp_path, err, resume_err)
