"""A database written by the previous message format (v1: a failure was a reason text) is refused in one line.

The fixture is built with raw SQL exactly as a v1 build wrote it (in this build's store schema, v8: the row names
its strings by code; only the message envelope's version and the failure's fields differ)."""

from __future__ import annotations

import json
import sqlite3

import pytest

from bus import SCHEMA_VERSION
from reasonmed_async.cli import main
from reasonmed_async.store.checkpoint import CheckpointStore
from reasonmed_async.store.schema import DDL, STORE_SCHEMA_VERSION

V1_FAILURE = {"v": 1, "m": {"type": "StageFailed", "run_id": "run-1", "question_id": "q1", "parent_id": "p",
                            "stage": "verifier", "reason": "ServerError: HTTP 500", "attempts": 3, "path": "qwen_1",
                            "failed_type": "CoTGenerated"}}


def _v1_database(path) -> None:
    db = sqlite3.connect(path)
    db.executescript(DDL)
    db.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(STORE_SCHEMA_VERSION),))
    db.execute("INSERT INTO runs(id, input_path, input_digest, config_digest, config_json, questions, created_at)"
               " VALUES ('run-1', 'in.jsonl', 'd', 'c', '', 1, 0)")
    db.executemany("INSERT INTO names(name) VALUES (?)", [("run-1",), ("q1",), ("StageFailed",), ("verifier",)])
    db.execute("INSERT INTO message_rows(id, run, question, type, label, parent, schema_version, payload, created_ms)"
               " SELECT 'm1', r.code, q.code, t.code, l.code, 'p', 1, ?, 0 FROM names r, names q, names t, names l"
               " WHERE r.name='run-1' AND q.name='q1' AND t.name='StageFailed' AND l.name='verifier'",
               (json.dumps(V1_FAILURE).encode(),))
    db.commit()
    db.close()


def test_this_build_writes_a_newer_message_format_than_v1():
    assert SCHEMA_VERSION == 2


async def test_store_refuses_a_v1_database_naming_both_versions(tmp_path):
    _v1_database(tmp_path / "old.db")
    with pytest.raises(Exception, match=r"schema v1, this build reads v2"):
        await CheckpointStore.open(tmp_path / "old.db")


@pytest.mark.parametrize("command", [["resume"], ["status"], ["export", "--out", "OUT"]])
def test_cli_refuses_a_v1_database_with_exit_2_and_one_line(tmp_path, capsys, command):
    _v1_database(tmp_path / "old.db")
    argv = [c.replace("OUT", str(tmp_path / "out")) for c in command]
    assert main([argv[0], "--db", str(tmp_path / "old.db"), *argv[1:]]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err, err
    assert "v1" in err and "v2" in err and "old.db" in err


async def test_a_new_database_opens_and_its_messages_are_v2(tmp_path):
    async with await CheckpointStore.open(tmp_path / "new.db"):
        pass
    async with await CheckpointStore.open(tmp_path / "new.db"):  # an empty one, reopened
        pass
