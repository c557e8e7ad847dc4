"""A real store-schema-v2 database (written by the v2 build: ``fixtures/make_v2_fixture.py``) is migrated to v3.

The fixture holds a finished ``run --limit 5`` and a full ``run`` SIGKILLed midway.  Migrated (by
``reasonmed migrate``, or by ``resume`` opening it), resumed and exported, it gives byte for byte the export of
the same two runs made by this build from the start; ``status`` counts the records the export writes (v2's
records table had lost the second run's records to the first run's ids: the migration rebuilds them from the
journal).  Read-only commands refuse it in one line naming both versions; a newer version is refused so too.
"""

from __future__ import annotations

import gzip
import re
import sqlite3
from pathlib import Path

import pytest

from e2e_support import EXPORT_FILES, query, read_jsonl, run_cli
from fault_support import QUESTIONS, TIMEOUT_S, one_line_error

FIXTURE = Path(__file__).parent / "fixtures" / "v2-two-runs.db.gz"


def _v2(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "v2.db"
    db.write_bytes(gzip.decompress(FIXTURE.read_bytes()))
    return db


def _export(db: Path, out: Path) -> dict[str, bytes]:
    proc = run_cli("export", "--db", db, "--out", out, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    return {name: (out / name).read_bytes() for name in EXPORT_FILES if (out / name).exists()}


def _status_records(db: Path) -> int:
    proc = run_cli("status", "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    return int(re.search(r"final records: (\d+)", proc.stdout).group(1))


@pytest.fixture(scope="module")
def never_migrated(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, bytes], int, list[str]]:
    """The same two runs (the fixture's own configuration) made by this build: its export and status count."""
    tmp = tmp_path_factory.mktemp("fresh")
    ((config_text,),) = query(_v2(tmp / "source"), "SELECT config_json FROM runs ORDER BY created_at LIMIT 1")
    config = tmp / "sim.toml"
    config.write_text(config_text, encoding="utf-8")
    db = tmp / "fresh.db"
    for extra in (("--limit", "5"), ()):
        proc = run_cli("run", "--config", config, "--input", QUESTIONS, "--db", db, *extra, timeout=TIMEOUT_S)
        assert proc.returncode in (0, 3), proc.stderr
    run_ids = [r[0] for r in query(db, "SELECT id FROM runs ORDER BY created_at")]
    return _export(db, tmp / "export"), _status_records(db), run_ids


@pytest.mark.parametrize("how", ["migrate", "resume opens it"])
def test_a_v2_database_migrates_resumes_and_exports_as_if_never_migrated(tmp_path, never_migrated, how):
    db = _v2(tmp_path)
    assert query(db, "SELECT value FROM meta WHERE key='schema_version'") == [("2",)]
    assert query(db, "SELECT COUNT(*) FROM deliveries WHERE state='pending'")[0][0] > 0
    if how == "migrate":
        proc = run_cli("migrate", "--db", db, timeout=TIMEOUT_S)
        assert proc.returncode == 0, proc.stderr
        assert "store schema v3" in proc.stdout
        check = run_cli("check", "--db", db, timeout=TIMEOUT_S)
        assert check.returncode == 0, check.stdout + check.stderr
    proc = run_cli("resume", "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode in (0, 3), proc.stderr
    assert query(db, "SELECT value FROM meta WHERE key='schema_version'") == [("3",)]
    assert query(db, "SELECT COUNT(*) FROM texts")[0][0] > 0
    # every run keeps its records: the first run's ten, and the second run's own
    per_run = dict(query(db, "SELECT run_id, COUNT(*) FROM records GROUP BY run_id"))
    assert len(per_run) == 2 and all(per_run.values()), per_run
    exported, status_count, fresh_ids = never_migrated
    # this build names a run by its data-changing keys only; the v2 build's ids (kept by a resume) hashed more
    old_ids = [r[0] for r in query(db, "SELECT id FROM runs ORDER BY created_at")]
    migrated = _export(db, tmp_path / "export")
    for old, new in zip(old_ids, fresh_ids, strict=True):
        migrated = {name: data.replace(old.encode(), new.encode()) for name, data in migrated.items()}
    assert migrated == exported
    records = len(read_jsonl(tmp_path / "export" / "records.jsonl"))
    assert _status_records(db) == records == status_count


@pytest.mark.parametrize("command", [["status"], ["export", "--out", "OUT"], ["check"]])
def test_a_v2_database_is_refused_read_only_in_one_line_naming_both_versions(tmp_path, command):
    db = _v2(tmp_path)
    before = db.read_bytes()
    args = [str(tmp_path / "out") if a == "OUT" else a for a in command[1:]]
    proc = run_cli(command[0], "--db", db, *args, timeout=TIMEOUT_S)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = one_line_error(proc)
    assert "v2" in line and "v3" in line and "reasonmed migrate" in line, line
    assert db.read_bytes() == before


def test_a_damaged_v2_row_stops_the_migration_before_anything_is_rewritten(tmp_path):
    db = _v2(tmp_path)
    con = sqlite3.connect(db)
    (seq, payload) = con.execute("SELECT seq, payload FROM messages WHERE type='CoTGenerated' LIMIT 1").fetchone()
    damaged = bytearray(payload)
    damaged[len(damaged) // 2] ^= 0x04
    con.execute("UPDATE messages SET payload=? WHERE seq=?", (bytes(damaged), seq))
    con.commit()
    con.close()
    proc = run_cli("migrate", "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "damaged" in one_line_error(proc)
    assert query(db, "SELECT value FROM meta WHERE key='schema_version'") == [("2",)]


@pytest.mark.parametrize("command", ["resume", "status", "check", "migrate"])
def test_a_newer_version_is_refused_in_one_line_naming_both(tmp_path, command):
    db = _v2(tmp_path)
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value='4' WHERE key='schema_version'")
    con.commit()
    con.close()
    proc = run_cli(command, "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = one_line_error(proc)
    assert "v4" in line and "v3" in line, line
