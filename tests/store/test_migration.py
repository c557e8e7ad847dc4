"""Real databases of older store schemas, each written by the build of its version, are migrated to v8.

``fixtures/v2-two-runs.db.gz`` (the v2 build: ``make_v2_fixture.py``), ``v3-two-runs.db.gz`` (the v3 build at
1c8377a), ``v4-two-runs.db.gz`` (the v4 build at 780cc68), ``v5-two-runs.db.gz`` (the v5 build at 1b4ee65) and
``v6-two-runs.db.gz`` (the v6 build at cf87421) and ``v7-two-runs.db.gz`` (the v7 build at 9cdb06c; all five
``make_fixture.py``) each hold a finished ``run --limit 5`` and a full ``run`` SIGKILLed
midway.  Migrated (by ``reasonmed migrate``, or by ``resume`` opening it), resumed and exported, each gives byte
for byte the export of the same two runs made by this build from the start; ``status`` counts the records the
export writes (v2's records table had lost the second run's records to the first run's ids: the migration
rebuilds them from the journal).  Read-only commands refuse an older database in one line naming both versions;
a newer version is refused so too.
"""

from __future__ import annotations

import gzip
import re
import sqlite3
from pathlib import Path

import pytest

from e2e_support import EXPORT_FILES, query, read_jsonl, run_cli
from fault_support import QUESTIONS, TIMEOUT_S, one_line_error

FIXTURES = Path(__file__).parent / "fixtures"
OLDER = (2, 3, 4, 5, 6, 7)  # the store schemas a fixture database of exists for


def _older(directory: Path, version: int) -> Path:
    """A copy of the fixture database of store schema ``version``."""
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / f"v{version}.db"
    db.write_bytes(gzip.decompress((FIXTURES / f"v{version}-two-runs.db.gz").read_bytes()))
    return db


def _v2(directory: Path) -> Path:
    return _older(directory, 2)


def _export(db: Path, out: Path) -> dict[str, bytes]:
    proc = run_cli("export", "--db", db, "--out", out, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    return {name: (out / name).read_bytes() for name in EXPORT_FILES if (out / name).exists()}


def _status_records(db: Path) -> int:
    proc = run_cli("status", "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    return int(re.search(r"final records: (\d+)", proc.stdout).group(1))


@pytest.fixture(scope="module", params=OLDER, ids=[f"v{v}" for v in OLDER])
def never_migrated(request: pytest.FixtureRequest,
                   tmp_path_factory: pytest.TempPathFactory) -> tuple[int, dict[str, bytes], int, list[str]]:
    """(version, then of the same two runs made by this build with the fixture's own configuration: the export,
    the status count and the run ids)."""
    version = request.param
    tmp = tmp_path_factory.mktemp(f"fresh-v{version}")
    ((config_text,),) = query(_older(tmp / "source", version),
                              "SELECT config_json FROM runs ORDER BY created_at LIMIT 1")
    config = tmp / "sim.toml"
    config.write_text(config_text, encoding="utf-8")
    db = tmp / "fresh.db"
    for extra in (("--limit", "5"), ()):
        proc = run_cli("run", "--config", config, "--input", QUESTIONS, "--db", db, *extra, timeout=TIMEOUT_S)
        assert proc.returncode in (0, 3), proc.stderr
    run_ids = [r[0] for r in query(db, "SELECT id FROM runs ORDER BY created_at")]
    return version, _export(db, tmp / "export"), _status_records(db), run_ids


@pytest.mark.parametrize("how", ["migrate", "resume opens it"])
def test_an_older_database_migrates_resumes_and_exports_as_if_never_migrated(tmp_path, never_migrated, how):
    version, exported, status_count, fresh_ids = never_migrated
    db = _older(tmp_path, version)
    assert query(db, "SELECT value FROM meta WHERE key='schema_version'") == [(str(version),)]
    assert query(db, "SELECT COUNT(*) FROM deliveries WHERE state='pending'")[0][0] > 0
    if how == "migrate":
        proc = run_cli("migrate", "--db", db, timeout=TIMEOUT_S)
        assert proc.returncode == 0, proc.stderr
        assert "store schema v8" in proc.stdout
        check = run_cli("check", "--db", db, timeout=TIMEOUT_S)
        assert check.returncode == 0, check.stdout + check.stderr
    proc = run_cli("resume", "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode in (0, 3), proc.stderr
    assert query(db, "SELECT value FROM meta WHERE key='schema_version'") == [("8",)]
    assert query(db, "SELECT COUNT(*) FROM texts")[0][0] > 0
    # v4: stored texts are compressed where that is smaller (v8: cache keys are their first 8 bytes, the rowid,
    # and the other 24)
    assert query(db, "SELECT DISTINCT typeof(key), typeof(rest), length(rest) FROM llm_cache") == [("integer", "blob", 24)]
    assert query(db, "SELECT COUNT(*) FROM texts WHERE kind & 16")[0][0] > 0
    # v5: no message row repeats the envelope its columns hold; the by-type index is on the type alone
    assert query(db, "SELECT COUNT(*) FROM messages WHERE substr(payload, 1, 1) = '{'") == [(0,)]
    assert {r[0] for r in query(db, "SELECT name FROM sqlite_master WHERE type='index' AND tbl_name='message_rows'"
                                " AND sql IS NOT NULL")} == {"message_rows_of_type", "message_rows_by_question"}
    # v6: rows are coded against the dictionary of shapes (a zstd frame starts with 0x28 B5 2F FD) where smaller
    for table, column, where in (("messages", "payload", ""), ("llm_cache", "payload", ""),
                                 ("texts", "body", " WHERE kind & 2")):
        (framed, total) = query(db, f"SELECT SUM(hex(substr({column}, 1, 4)) = '28B52FFD'), COUNT(*) FROM {table}{where}")[0]
        assert framed > total // 2, (table, framed, total)
    # v7: the by-question index on the question alone; deliveries keyed by (message seq, consumer), no seq
    assert query(db, "SELECT sql FROM sqlite_master WHERE name='message_rows_by_question'")[0][0].endswith("(question)")
    assert [r[1] for r in query(db, "PRAGMA table_info(deliveries)")] == ["message_seq", "consumer", "state", "intake"]
    assert query(db, "SELECT COUNT(*) FROM dictionaries") == [(0,)]  # (too few rows here to train on)
    # v8: message rows name their strings by code and hold ids as 12 bytes; ``messages`` is the view of them
    assert query(db, "SELECT type FROM sqlite_master WHERE name='messages'") == [("view",)]
    assert query(db, "SELECT DISTINCT typeof(id), length(id), typeof(run), typeof(question), typeof(type)"
                 " FROM message_rows") == [("blob", 12, "integer", "integer", "integer")]
    assert query(db, "SELECT DISTINCT typeof(message_id), length(message_id) FROM joins") == [("blob", 12)]
    # every run keeps its records: the first run's ten, and the second run's own
    per_run = dict(query(db, "SELECT run_id, COUNT(*) FROM records GROUP BY run_id"))
    assert len(per_run) == 2 and all(per_run.values()), per_run
    # this build names a run by its data-changing keys only; the v2 build's ids (kept by a resume) hashed more
    old_ids = [r[0] for r in query(db, "SELECT id FROM runs ORDER BY created_at")]
    migrated = _export(db, tmp_path / "export")
    for old, new in zip(old_ids, fresh_ids, strict=True):
        migrated = {name: data.replace(old.encode(), new.encode()) for name, data in migrated.items()}
    assert migrated == exported
    records = len(read_jsonl(tmp_path / "export" / "records.jsonl"))
    assert _status_records(db) == records == status_count


@pytest.mark.parametrize("version", OLDER)
@pytest.mark.parametrize("command", [["status"], ["export", "--out", "OUT"], ["check"]])
def test_an_older_database_is_refused_read_only_in_one_line_naming_both_versions(tmp_path, command, version):
    db = _older(tmp_path, version)
    before = db.read_bytes()
    args = [str(tmp_path / "out") if a == "OUT" else a for a in command[1:]]
    proc = run_cli(command[0], "--db", db, *args, timeout=TIMEOUT_S)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = one_line_error(proc)
    assert f"v{version}" in line and "v8" in line and "reasonmed migrate" in line, line
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
    con.execute("UPDATE meta SET value='9' WHERE key='schema_version'")
    con.commit()
    con.close()
    proc = run_cli(command, "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = one_line_error(proc)
    assert "v9" in line and "v8" in line, line


def test_damage_in_a_v3_database_is_carried_over_unchanged_and_check_names_it(tmp_path):
    """v3 -> v6 re-derives nothing (cache rows are copied with their checksums, texts compressed under their own
    digests, message payloads lose only the envelope their checksums cover): a damaged row stays damaged, and
    ``check`` names it after the migration as it did before."""
    db = _older(tmp_path, 3)
    con = sqlite3.connect(db)
    key, payload = con.execute("SELECT key, payload FROM llm_cache ORDER BY rowid LIMIT 1").fetchone()
    con.execute("UPDATE llm_cache SET payload=? WHERE key=?", (payload.replace(b'"stop"', b'"stoq"'), key))
    digest, body = con.execute("SELECT digest, body FROM texts WHERE kind=1 AND length(body) > 200 LIMIT 1").fetchone()
    con.execute("UPDATE texts SET body=? WHERE digest=?", (body[:100] + bytes([body[100] ^ 0x04]) + body[101:], digest))
    con.commit()
    con.close()
    proc = run_cli("migrate", "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert query(db, "SELECT value FROM meta WHERE key='schema_version'") == [("8",)]
    check = run_cli("check", "--db", db, timeout=TIMEOUT_S)
    assert check.returncode == 5, check.stdout + check.stderr
    assert f"llm_cache row {key}" in check.stdout and f"texts row {digest.hex()}" in check.stdout, check.stdout
    assert re.search(r"1 of \d+ cached responses and 1 of \d+ stored texts", check.stdout.splitlines()[-1]), check.stdout


def test_damage_in_a_v7_database_is_carried_over_and_check_names_each_row(tmp_path):
    """v7 -> v8 copies payloads and checksums as they are while it interns the strings and packs the ids: a
    damaged message payload, a message whose question column was changed, and a damaged cache row stay damaged,
    and ``check`` names each after the migration (with the question, the id and the key as v7 showed them)."""
    db = _older(tmp_path, 7)
    con = sqlite3.connect(db)
    rows = con.execute("SELECT seq, id, question_id, payload FROM messages WHERE type='CoTGenerated' ORDER BY seq"
                       " LIMIT 2").fetchall()
    (seq, flipped, flipped_q, payload), (moved_seq, moved, _, _) = rows
    con.execute("UPDATE messages SET payload=? WHERE seq=?", (payload[:-6] + bytes([payload[-6] ^ 0x04]) + payload[-5:], seq))
    other = con.execute("SELECT question_id FROM messages WHERE question_id != ? LIMIT 1", (rows[1][2],)).fetchone()[0]
    con.execute("UPDATE messages SET question_id=? WHERE seq=?", (other, moved_seq))
    key, body = con.execute("SELECT lower(hex(key)), payload FROM llm_cache ORDER BY rowid LIMIT 1").fetchone()
    con.execute("UPDATE llm_cache SET payload=? WHERE lower(hex(key))=?", (body[:-6] + bytes([body[-6] ^ 0x04]) + body[-5:], key))
    con.commit()
    con.close()
    proc = run_cli("migrate", "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    check = run_cli("check", "--db", db, timeout=TIMEOUT_S)
    assert check.returncode == 5, check.stdout + check.stderr
    assert f"messages row {flipped} of question {flipped_q}" in check.stdout, check.stdout
    assert f"messages row {moved} of question {other}" in check.stdout, check.stdout
    assert f"llm_cache row {key}" in check.stdout, check.stdout
    assert re.search(r"2 of \d+ messages, 1 of \d+ cached responses", check.stdout.splitlines()[-1]), check.stdout
