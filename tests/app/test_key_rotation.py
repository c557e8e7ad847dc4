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
import json
import signal
from pathlib import Path

import pytest

from fake_llm_server import FakeLLMServer
from retry_support import QUESTIONS, cli, config, db_rows, env, export_files, start_cli

pytestmark = pytest.mark.slow

OLD, NEW, WRONG = "sk-rotate-old-0123456789", "sk-rotate-new-9876543210", "sk-rotate-wrong-55555555"
LIMIT = 6


def _key_file_config(tmp_path: Path) -> tuple[Path, Path]:
    cfg = config(tmp_path)
    key_file = tmp_path / "secrets" / "openai.key"
    key_file.parent.mkdir()
    key_file.write_text(OLD + "\n", encoding="utf-8")
    text = cfg.read_text(encoding="utf-8")
    assert 'api_key_env = "REASONMED_OPENAI_API_KEY"' in text
    cfg.write_text(text.replace('api_key_env = "REASONMED_OPENAI_API_KEY"', f'api_key_file = "{key_file}"'),
                   encoding="utf-8")
    return cfg, key_file


def _rotate(key_file: Path, key: str) -> None:
    """As a secrets manager does it: a new file renamed over the old one."""
    fresh = key_file.with_suffix(".tmp")
    fresh.write_text(key + "\n", encoding="utf-8")
    fresh.replace(key_file)


def _env(server: FakeLLMServer) -> dict[str, str]:
    return {k: v for k, v in env(server).items() if k != "REASONMED_OPENAI_API_KEY"}  # the file is the only source


async def _until(predicate, guard_s: float = 60.0) -> None:
    """Wait for the subprocess or the server to reach a state, bounded by a hang guard."""
    async with asyncio.timeout(guard_s):
        while not predicate():
            await asyncio.sleep(0.02)


def _events(db: Path, name: str) -> list[dict]:
    log = Path(f"{db}.log")
    if not log.exists():
        return []
    return [e for e in map(json.loads, log.read_text(encoding="utf-8").splitlines()) if e.get("event") == name]


def _bearer(record) -> str:
    return record.headers.get("Authorization", "")[len("Bearer "):]


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
    await _until(lambda: server.held > 0)
    return db, proc


async def _finish(proc, server: FakeLLMServer) -> tuple[int, str]:
    _, err = await asyncio.wait_for(proc.communicate(), 300)
    server.hold_from = None
    return proc.returncode, err.decode()


def _no_key_anywhere(tmp_path: Path, *texts: str) -> None:
    for path in tmp_path.rglob("*"):
        if path.is_file() and "secrets" not in path.parts:
            data = path.read_bytes()
            for key in (OLD, NEW, WRONG):
                assert key.encode() not in data, f"a key in {path}"
    for text in texts:
        for key in (OLD, NEW, WRONG):
            assert key not in text


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
        _rotate(key_file, NEW)
        proc.send_signal(signal.SIGHUP)
        await _until(lambda: any(e.get("reason") == "sighup" for e in _events(db, "credentials.reloaded")))
        mark = len(server.requests)
        server.released.set()
        await _until(lambda: any(_bearer(r) == NEW for r in server.requests[mark:]))
        assert not [r for r in server.requests if r.status == 401], "no request was refused while both keys held"
        server.also_accepted = frozenset()  # the old key revoked
        rc, err = await _finish(proc, server)
        assert rc == 0, err
        _nothing_failed(db)
        assert await _export(tmp_path, server, db) == clean
        assert not _events(db, "credentials.reload_failed")
        _no_key_anywhere(tmp_path, err)


async def test_a_401_after_the_key_file_changed_rereads_it_and_resends_without_a_strike(tmp_path):
    cfg, key_file = _key_file_config(tmp_path)
    async with FakeLLMServer(api_key=OLD) as server:
        clean = await _clean(tmp_path, server, cfg)
        db, proc = await _start_and_hold(tmp_path, server, cfg, "on401")
        _rotate(key_file, NEW)
        server.api_key = NEW  # the old key stops working at once; no SIGHUP
        held_mark = len(server.requests)
        server.released.set()
        rc, err = await _finish(proc, server)
        assert rc == 0, err
        refused = [r for r in server.requests if r.status == 401]
        assert refused and all(_bearer(r) == OLD for r in refused), "only requests sent with the old key were refused"
        assert any(_bearer(r) == NEW and r.status == 200 for r in server.requests[held_mark:])
        assert [e["reason"] for e in _events(db, "credentials.reloaded")] == ["401"]  # the file read once more
        assert not _events(db, "llm.wait") and not _events(db, "llm.circuit_open")  # no strike toward the circuit
        _nothing_failed(db)
        assert await _export(tmp_path, server, db) == clean
        _no_key_anywhere(tmp_path, err)


async def test_a_wrong_new_key_still_opens_the_circuit_resumably_and_resume_with_the_right_one_finishes(tmp_path):
    cfg, key_file = _key_file_config(tmp_path)
    async with FakeLLMServer(api_key=OLD) as server:
        clean = await _clean(tmp_path, server, cfg)
        db, proc = await _start_and_hold(tmp_path, server, cfg, "wrong")
        _rotate(key_file, WRONG)
        server.api_key = NEW
        server.released.set()
        rc, err = await _finish(proc, server)
        assert rc == 4, err
        assert "circuit open" in err and "HTTP 401" in err and "resume" in err and "Traceback" not in err, err
        assert any(_bearer(r) == WRONG and r.status == 401 for r in server.requests), "the re-read key was tried"
        assert db_rows(db, "SELECT status FROM runs") == [("running",)]
        assert db_rows(db, "SELECT COUNT(*) FROM deliveries WHERE state='failed'") == [(0,)]
        _rotate(key_file, NEW)
        rc, _, resume_err = await cli("resume", "--db", str(db), environ=_env(server), guard_s=300)
        assert rc == 0, resume_err
        _nothing_failed(db)
        assert await _export(tmp_path, server, db) == clean
        _no_key_anywhere(tmp_path, err, resume_err)
