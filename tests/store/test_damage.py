"""A damaged database is found, named and never resumed over or exported: subprocesses on real files.

Faults: one flipped bit in a stored message and in a cached LLM response, a
truncated file, a file that is not a database, a store of the previous schema
version (migrated) and of a newer one (refused), a write-ahead log deleted after
a SIGKILL.  Every command ends within a bounded time with one line and the exit
code of the table (2 usage, 5 damaged).
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from e2e_support import EXPORT_FILES, query, run_cli
from fault_support import (QUESTIONS, TIMEOUT_S, copy_db, finished_run, flip_bit, one_line_error, running, slow_config,
                           wait_calls)


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory.mktemp("finished"))


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@contextmanager
def _editing(finished: Path, directory: Path) -> Iterator[tuple[Path, sqlite3.Connection]]:
    """A copy of the finished database in ``directory``, open for raw edits: committed and closed on exit."""
    db = copy_db(finished, directory)
    con = sqlite3.connect(db)
    try:
        yield db, con
        con.commit()
    finally:
        con.close()


def _damage_found(db: Path) -> str:
    """What ``reasonmed check`` says of ``db``, which it must find damaged (exit 5)."""
    proc = run_cli("check", "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    return proc.stdout


def test_check_of_a_whole_database_says_ok(finished: Path) -> None:
    before = _sha(finished)
    proc = run_cli("check", "--db", finished, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ok: integrity_check ok, schema v8" in proc.stdout
    assert _sha(finished) == before, "check wrote to the database"


@pytest.mark.parametrize("table,where", [("messages", "type='RecordReady'"), ("llm_cache", "1")])
def test_a_flipped_bit_is_found_named_and_never_exported(finished: Path, tmp_path: Path, table: str,
                                                         where: str) -> None:
    db = copy_db(finished, tmp_path / "damaged")
    identity, question = flip_bit(db, table, where)
    proc = run_cli("check", "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert f"{table} row {identity}" in proc.stdout
    if question:
        assert question in proc.stdout
    assert "DAMAGED" in proc.stdout.splitlines()[-1]
    if table == "messages":  # export reads every stored record: it stops at the damaged one
        out = tmp_path / "export"
        proc = run_cli("export", "--db", db, "--out", out, timeout=TIMEOUT_S)
        assert proc.returncode == 5, proc.stderr
        line = one_line_error(proc)
        assert "damaged" in line and identity in line and question in line
        assert not any((out / name).exists() for name in EXPORT_FILES), "a damaged export was left behind"


def test_a_damaged_envelope_column_of_a_message_is_found(finished: Path, tmp_path: Path) -> None:
    """v5 rows keep a message's run, question, parent and type only in their columns: the checksum covers them."""
    with _editing(finished, tmp_path / "damaged") as (db, con):
        mid, parent = con.execute("SELECT id, parent_id FROM messages WHERE type='RecordReady' LIMIT 1").fetchone()
        con.execute("UPDATE message_rows SET parent=? WHERE id=?", (bytes.fromhex(parent[::-1]), bytes.fromhex(mid)))
    stdout = _damage_found(db)
    assert f"messages row {mid}" in stdout, stdout


def test_a_damaged_code_or_name_of_a_message_is_found(finished: Path, tmp_path: Path) -> None:
    """v8 rows name their type and question by ``names.code``: a row whose code was changed, and every row that
    names a changed name, no longer match their checksums (the id and the question named as users see them)."""
    with _editing(finished, tmp_path / "code") as (db, con):
        mid, qid = con.execute("SELECT id, question_id FROM messages WHERE type='RecordReady' LIMIT 1").fetchone()
        con.execute("UPDATE message_rows SET type=(SELECT code FROM names WHERE name='Ranked') WHERE id=?",
                    (bytes.fromhex(mid),))
    stdout = _damage_found(db)
    assert f"messages row {mid} of question {qid}" in stdout, stdout
    assert "; 1 of " in stdout.splitlines()[-1], stdout
    with _editing(finished, tmp_path / "name") as (db, con):
        tiered = [r[0] for r in con.execute("SELECT id FROM messages WHERE type='TierAssigned' ORDER BY seq")]
        con.execute("UPDATE names SET name='TierAssignee' WHERE name='TierAssigned'")
    stdout = _damage_found(db)
    assert tiered and f"; {len(tiered)} of " in stdout.splitlines()[-1], stdout
    assert f"messages row {tiered[0]}" in stdout, stdout


@pytest.mark.parametrize("name_of", [
    "SELECT consumer FROM deliveries LIMIT 1",           # a consumer: its pending work would be lost on resume
    "SELECT name FROM names WHERE code=(SELECT key FROM joins LIMIT 1)",  # a join's key: the join would wait for items it holds
    "SELECT name FROM names WHERE code=(SELECT model FROM llm_cache LIMIT 1)",  # a cached response's model
], ids=["consumer", "join-key", "model"])
def test_a_damaged_name_that_no_message_checksum_covers_is_found(finished: Path, tmp_path: Path, name_of: str) -> None:
    """A ``names`` row (v8) names every delivery, join, record or cached response that uses it; no message's
    checksum covers those, so the row carries its own: a changed name, or a code moved to another name, is found."""
    with _editing(finished, tmp_path / "name") as (db, con):
        (name,) = con.execute(name_of).fetchone()
        (code,) = con.execute("SELECT code FROM names WHERE name=?", (name,)).fetchone()
        con.execute("UPDATE names SET name=? WHERE code=?", (name + "X", code))
    stdout = _damage_found(db)
    assert f"damaged: names row {code} ({name + 'X'!r})" in stdout, stdout
    assert "1 interned names" in stdout.splitlines()[-1], stdout
    with _editing(finished, tmp_path / "code") as (db, con):
        (top,) = con.execute("SELECT max(code) FROM names").fetchone()
        con.execute("UPDATE names SET code=? WHERE code=?", (top + 1, code))
    stdout = _damage_found(db)
    assert f"damaged: names row {top + 1} ({name!r})" in stdout, stdout


def test_a_finished_run_has_no_damaged_name(finished: Path) -> None:
    proc = run_cli("check", "--db", finished, timeout=TIMEOUT_S)
    assert proc.returncode == 0 and "interned names" not in proc.stdout, proc.stdout


def test_a_flipped_bit_in_a_stored_text_is_found_and_never_exported(finished: Path, tmp_path: Path) -> None:
    from e2e_support import messages
    from reasonmed_async.store.texts import text_digest

    db = copy_db(finished, tmp_path / "damaged")
    record = messages(db, "RecordReady")[0]  # its question's stem: a text every message of the question needs
    key = text_digest(record.question.stem).hex()
    identity, _ = flip_bit(db, "texts", f"hex(digest) = '{key.upper()}'")
    assert identity == key
    proc = run_cli("check", "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert f"texts row {key}" in proc.stdout and "1 of" in proc.stdout.splitlines()[-1]
    out = tmp_path / "export"
    proc = run_cli("export", "--db", db, "--out", out, timeout=TIMEOUT_S)
    assert proc.returncode == 5, proc.stderr
    line = one_line_error(proc)
    assert "damaged row in texts" in line and key in line and record.question_id in line, line
    assert not any((out / name).exists() for name in EXPORT_FILES), "a damaged export was left behind"


def test_a_truncated_database_is_damage_and_every_command_exits(finished: Path, tmp_path: Path) -> None:
    db = copy_db(finished, tmp_path / "truncated")
    size = db.stat().st_size
    with db.open("r+b") as f:
        f.truncate(size // 2)
    for args in (["check"], ["status"], ["export", "--out", tmp_path / "out"], ["resume"]):
        proc = run_cli(*args[:1], "--db", db, *args[1:], timeout=TIMEOUT_S)  # a hang fails the test here
        assert proc.returncode in (5,), (args, proc.returncode, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("command", [["check"], ["status"], ["export", "--out", "OUT"], ["resume"]])
def test_a_file_that_is_not_a_database_is_one_line_exit_2(tmp_path: Path, command: list[str]) -> None:
    db = tmp_path / "notes.txt"
    db.write_text("these are my notes, not a database\n" * 200)
    before = _sha(db)
    args = [str(tmp_path / "out") if a == "OUT" else a for a in command[1:]]
    proc = run_cli(command[0], "--db", db, *args, timeout=TIMEOUT_S)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = one_line_error(proc)
    assert str(db) in line and "not an SQLite database" in line, line
    assert _sha(db) == before


def _as_v1(db: Path) -> None:
    """What a database of schema v1 looks like: v2 (written by the v2 build) without the checksum columns."""
    con = sqlite3.connect(db)
    con.execute("ALTER TABLE messages DROP COLUMN checksum")
    con.execute("ALTER TABLE llm_cache DROP COLUMN checksum")
    con.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    con.commit()
    con.close()


def test_a_v1_database_is_migrated_with_checksums(tmp_path: Path) -> None:
    from test_migration import _v2

    db = _v2(tmp_path / "v1")
    _as_v1(db)
    proc = run_cli("status", "--db", db, timeout=TIMEOUT_S)  # read-only: refuses, says how to upgrade
    assert proc.returncode == 2
    line = one_line_error(proc)
    assert "v1" in line and "v8" in line and "reasonmed migrate" in line, line
    proc = run_cli("migrate", "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert query(db, "SELECT value FROM meta WHERE key='schema_version'") == [("8",)]
    assert query(db, "SELECT COUNT(*) FROM messages WHERE checksum IS NULL") == [(0,)]
    assert run_cli("check", "--db", db, timeout=TIMEOUT_S).returncode == 0
    exported = tmp_path / "export"
    assert run_cli("export", "--db", db, "--out", exported, timeout=TIMEOUT_S).returncode == 0
    v2 = _v2(tmp_path / "v2")  # the same database migrated from v2 exports the same
    assert run_cli("migrate", "--db", v2, timeout=TIMEOUT_S).returncode == 0
    original = tmp_path / "original"
    assert run_cli("export", "--db", v2, "--out", original, timeout=TIMEOUT_S).returncode == 0
    files = sorted(p.name for p in original.iterdir())
    assert sorted(p.name for p in exported.iterdir()) == files and "reasonmed.jsonl" in files
    for name in files:
        assert (exported / name).read_bytes() == (original / name).read_bytes(), name


def test_a_newer_version_database_is_refused_naming_both_versions(finished: Path, tmp_path: Path) -> None:
    db = copy_db(finished, tmp_path / "v9")
    con = sqlite3.connect(db)
    con.execute("UPDATE meta SET value='9' WHERE key='schema_version'")
    con.commit()
    con.close()
    for command in ("resume", "status", "check"):
        proc = run_cli(command, "--db", db, timeout=TIMEOUT_S)
        assert proc.returncode == 2, (command, proc.stderr)
        line = one_line_error(proc)
        assert "v9" in line and "v8" in line, line


def test_a_damaged_unfinished_run_is_not_resumed_over(tmp_path: Path) -> None:
    config = slow_config(tmp_path, tmp_path / "calls.log")
    db = tmp_path / "run.db"
    with running(["run", "--config", config, "--input", QUESTIONS, "--db", db], tmp_path / "calls.log", calls=40):
        pass  # SIGKILLed with work left
    assert query(db, "SELECT status FROM runs") == [("running",)]
    pending = query(db, "SELECT COUNT(*) FROM deliveries WHERE state='pending'")[0][0]
    assert pending
    identity, question = flip_bit(db, "messages", "seq IN (SELECT message_seq FROM deliveries WHERE state='pending')")
    before = query(db, "SELECT COUNT(*) FROM messages")
    proc = run_cli("resume", "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode == 5, proc.stderr
    line = one_line_error(proc)
    assert identity in line and "check" in line, line
    assert query(db, "SELECT COUNT(*) FROM messages") == before, "resume wrote after finding damage"
    assert query(db, "SELECT status FROM runs") == [("running",)]


@pytest.mark.parametrize("checkpointed", [True, False])
def test_a_deleted_wal_after_an_unclean_stop_is_reported(tmp_path: Path, checkpointed: bool) -> None:
    log = tmp_path / "calls.log"
    config = slow_config(tmp_path, log)
    db = tmp_path / "run.db"
    with running(["run", "--config", config, "--input", QUESTIONS, "--db", db], log, calls=20) as proc:
        if checkpointed:  # part of the work reaches the database file, the rest stays in the WAL
            con = sqlite3.connect(db)
            con.execute("PRAGMA wal_checkpoint(PASSIVE)")
            con.close()
            wait_calls(proc, log, 60)
    wal = Path(f"{db}-wal")
    assert wal.exists()
    os.unlink(wal)
    Path(f"{db}-shm").unlink(missing_ok=True)
    proc = run_cli("check", "--db", db, timeout=TIMEOUT_S)
    assert "run.db-wal is missing" in proc.stdout, proc.stdout + proc.stderr
    proc = run_cli("resume", "--db", db, timeout=TIMEOUT_S)
    assert "run.db-wal is missing" in proc.stderr, proc.stderr
    if checkpointed:  # what reached the file is resumed; what the WAL held is redone
        assert proc.returncode in (0, 3), proc.stderr  # 3: the sim cut one rewrite short
        assert query(db, "SELECT status FROM runs") == [("finished",)]
    else:  # nothing reached the file: there is nothing to resume, and that is said
        assert proc.returncode == 2, proc.stderr
        assert "Traceback" not in proc.stderr
