"""Dictionaries trained on a database's own rows (schema v7, store/coding.py, store/trained.py).

A real run of 100 PubMedQA questions (sim) trains both dictionaries and codes its later rows against them;
``check`` reads every row in a fresh process (the dictionaries loaded from the database); a damaged dictionary
is named and so are the rows that need it; a run SIGKILLed after training resumes and exports byte for byte an
uninterrupted run; and a transaction that trained a dictionary and rolled back leaves nothing unreadable.
"""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest

from e2e_support import EXPORT_FILES, PUBMEDQA, cli_command, cli_env, query, run_cli
from fault_support import TIMEOUT_S, flip_bit, make_config, one_line_error
from reasonmed_async.store import trained
from reasonmed_async.store.coding import Coder
from reasonmed_async.store.packing import unpack
from reasonmed_async.store.schema import DDL, STORE_SCHEMA_VERSION
from reasonmed_async.store.texts import TEXT, digest, store_pieces

LIMIT = 100  # questions: enough strings (~16 a question) and rows (~50) for both dictionaries to train midway


def _named(db: Path, table: str, column: str, where: str = "") -> tuple[int, int]:
    """(rows whose value is a zstd frame naming a dictionary, rows) of ``table``."""
    values = [r[0] for r in query(db, f"SELECT {column} FROM {table} {where}")]
    return sum(trained.names_dictionary(bytes(v)) for v in values), len(values)


def _export(db: Path, out: Path) -> dict[str, bytes]:
    proc = run_cli("export", "--db", db, "--out", out, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    return {name: (out / name).read_bytes() for name in EXPORT_FILES if (out / name).exists()}


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory, pubmedqa: Path) -> tuple[Path, Path]:
    """(config, database of an uninterrupted run of LIMIT PubMedQA questions)."""
    tmp = tmp_path_factory.mktemp("trained")
    config = make_config(tmp, workers=2)
    db = tmp / "run.db"
    proc = run_cli("run", "--config", config, "--input", PUBMEDQA, "--db", db, "--limit", str(LIMIT), timeout=TIMEOUT_S)
    assert proc.returncode in (0, 3), proc.stderr
    return config, db


def test_a_run_trains_both_dictionaries_and_codes_its_later_rows_against_them(finished):
    _, db = finished
    assert sorted(r[0] for r in query(db, "SELECT role FROM dictionaries")) == [trained.STRINGS, trained.ROWS]
    named, total = _named(db, "texts", "body", f"WHERE kind & {TEXT}")
    assert named > total // 2, (named, total)  # the samples were coded again too: most strings name one
    for table in ("messages", "llm_cache"):
        named, total = _named(db, table, "payload")
        assert named > total // 2, (table, named, total)
    check = run_cli("check", "--db", db, timeout=TIMEOUT_S)  # a fresh process: every row read, dictionaries loaded
    assert check.returncode == 0, check.stdout + check.stderr
    assert "schema v8" in check.stdout


def test_a_damaged_dictionary_is_named_by_check_and_stops_an_export_in_one_line(finished, tmp_path):
    _, source = finished
    db = tmp_path / "damaged.db"
    db.write_bytes(source.read_bytes())
    (ident,) = query(db, f"SELECT id FROM dictionaries WHERE role={trained.STRINGS}")[0]
    con = sqlite3.connect(db)
    (body,) = con.execute("SELECT body FROM dictionaries WHERE id=?", (ident,)).fetchone()
    damaged = bytearray(body)
    damaged[len(damaged) // 2] ^= 0x04  # a bit flip in the dictionary's content
    con.execute("UPDATE dictionaries SET body=? WHERE id=?", (bytes(damaged), ident))
    con.commit()
    con.close()
    check = run_cli("check", "--db", db, timeout=TIMEOUT_S)
    assert check.returncode == 5, check.stdout + check.stderr
    assert f"damaged: dictionaries row {ident}" in check.stdout
    assert "damaged: texts row" in check.stdout  # the strings coded against it cannot be read back
    proc = run_cli("export", "--db", db, "--out", tmp_path / "out", timeout=TIMEOUT_S)
    assert proc.returncode == 5, proc.stdout + proc.stderr
    assert "damaged" in one_line_error(proc)


def test_a_damaged_row_coded_against_a_dictionary_is_named_by_check(finished, tmp_path):
    _, source = finished
    db = tmp_path / "damaged.db"
    db.write_bytes(source.read_bytes())
    mid, question = flip_bit(db, "messages", "type='Verdict' ORDER BY seq DESC LIMIT 5")
    check = run_cli("check", "--db", db, timeout=TIMEOUT_S)
    assert check.returncode == 5, check.stdout + check.stderr
    assert f"damaged: messages row {mid} of question {question}" in check.stdout


@pytest.mark.slow
def test_sigkill_after_training_then_resume_exports_byte_for_byte_an_uninterrupted_run(finished, tmp_path):
    config, clean = finished
    db = tmp_path / "killed.db"
    args = ["run", "--config", config, "--input", PUBMEDQA, "--db", db, "--limit", str(LIMIT)]
    proc = subprocess.Popen(cli_command(*args), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env())
    try:
        deadline = time.monotonic() + TIMEOUT_S
        while proc.poll() is None and time.monotonic() < deadline:
            if db.exists() and _dictionaries(db) == 2:  # both trained and committed: kill it right there
                proc.send_signal(signal.SIGKILL)
                break
            time.sleep(0.005)
        rc = proc.wait(timeout=TIMEOUT_S)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert rc == -signal.SIGKILL, "the run ended before both dictionaries were trained"
    assert query(db, "SELECT status FROM runs") == [("running",)]
    check = run_cli("check", "--db", db, timeout=TIMEOUT_S)
    assert check.returncode == 0, check.stdout + check.stderr
    resumed = run_cli("resume", "--db", db, timeout=TIMEOUT_S)
    assert resumed.returncode in (0, 3), resumed.stderr
    assert _dictionaries(db) == 2  # taken up again on resume, not trained anew
    killed, uninterrupted = _export(db, tmp_path / "killed"), _export(clean, tmp_path / "clean")
    assert "reasonmed.jsonl" in killed and killed == uninterrupted


def _dictionaries(db: Path) -> int:
    try:
        return query(db, "SELECT COUNT(*) FROM dictionaries")[0][0]
    except sqlite3.Error:  # the schema is being created: not yet
        return 0


def _strings(n: int) -> list[bytes]:
    """The JSON of ``n`` real texts (PubMedQA contexts and long answers), as a string piece holds it."""
    data = json.loads(PUBMEDQA.read_text(encoding="utf-8"))
    out = []
    for item in data.values():
        out += [json.dumps(" ".join(item["CONTEXTS"])).encode(), json.dumps(item["LONG_ANSWER"]).encode()]
    return out[:n]


def test_a_transaction_that_trained_and_rolled_back_leaves_every_committed_row_readable(tmp_path, pubmedqa):
    """Trained at the end of a transaction that then rolls back, the dictionary is inserted again by the next
    transaction that codes against it: a fresh process (``check``) reads every committed string."""
    db = tmp_path / "x.db"
    con = sqlite3.connect(db, isolation_level=None)
    con.executescript(DDL)
    con.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(STORE_SCHEMA_VERSION),))
    coder = Coder(string_samples=60)  # trains at the end of the second transaction, which rolls back
    coder.start(con)
    strings = _strings(120)
    for lot, commit in ((strings[:40], True), (strings[40:80], False), (strings[80:], True)):
        con.execute("BEGIN IMMEDIATE")
        pieces = {digest(TEXT, s): (TEXT, s) for s in lot}
        coder.answers(pieces)  # as texts of LLM completions (the strings it trains on)
        store_pieces(con, pieces, coder=coder)
        coder.finish(con)
        con.execute("COMMIT" if commit else "ROLLBACK")
        coder.transaction_ended(commit)
    assert query(db, "SELECT COUNT(*) FROM dictionaries") == [(1,)]
    rows = con.execute("SELECT digest, kind, body FROM texts").fetchall()
    con.close()
    assert len(rows) == 80
    # the third transaction's strings are coded against it; the first's stay plain (coding them again was rolled back)
    assert sum(trained.names_dictionary(body) for _, _, body in rows) == 40
    assert all(digest(*unpack(kind, body)) == key for key, kind, body in rows)
    check = run_cli("check", "--db", db, timeout=TIMEOUT_S)
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.slow
def test_shards_that_trained_their_own_dictionaries_merge_into_the_single_process_run(tmp_path, pubmedqa):
    """Each shard trains its own dictionaries; the merge copies them all, so every copied row stays readable
    (``check`` in a fresh process) and the merged export is byte for byte the single-process run's."""
    config = make_config(tmp_path, workers=2)
    run = ["run", "--config", config, "--input", PUBMEDQA, "--limit", str(2 * LIMIT)]
    proc = run_cli(*run, "--db", tmp_path / "single.db", timeout=TIMEOUT_S)
    assert proc.returncode in (0, 3), proc.stderr
    shards = [tmp_path / f"shard{i}.db" for i in range(2)]
    for i, db in enumerate(shards):
        proc = run_cli(*run, "--shard", f"{i}/2", "--db", db, timeout=TIMEOUT_S)
        assert proc.returncode in (0, 3), proc.stderr
        assert _dictionaries(db) == 2, f"shard {i} trained fewer than both dictionaries"
    merged = tmp_path / "merged.db"
    proc = run_cli("merge", "--out", merged, *shards, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    assert _dictionaries(merged) == 4
    check = run_cli("check", "--db", merged, timeout=TIMEOUT_S)
    assert check.returncode == 0, check.stdout + check.stderr
    assert _export(merged, tmp_path / "merged-export") == _export(tmp_path / "single.db", tmp_path / "single-export")


def test_a_merge_refuses_two_shards_whose_different_dictionaries_share_an_id(tmp_path):
    """zstd's ids are 31-bit hashes: two shards' different dictionaries under one id (never seen) would leave one
    shard's rows unreadable in the merge, so the merge stops, naming the shard."""
    from reasonmed_async.store.merge import merge_into
    from reasonmed_async.store.errors import StoreError

    shards = []
    for i, body in enumerate((b"one dictionary", b"another one")):
        db = tmp_path / f"s{i}.db"
        with sqlite3.connect(db) as con:
            con.executescript(DDL)
            con.execute("INSERT INTO dictionaries(id, role, digest, body) VALUES (40000, 1, ?, ?)",
                        (trained.dictionary_digest(body), body))
        shards.append(db)
    with pytest.raises(StoreError, match="s1.db: its trained dictionary 40000 has the id of another shard's"):
        merge_into(tmp_path / "merged.db", shards, {})



def _row(kind: str, i: int) -> bytes:
    """A message payload's JSON as the writer codes it: its kind's fields, with values that vary row by row."""
    fields = {"QuestionIngested": {"question": f"\u0000R{i:022d}"},
              "Verdict": {"verdict": ["Correct", "Error"][i % 2], "reason": f"\u0000T{i:022d}", "path": f"p{i % 9}"},
              "CoTGenerated": {"path": f"p{i % 9}", "cot": f"\u0000T{i:022d}", "answer": "ABCD"[i % 4]}}[kind]
    return json.dumps({"type": kind, "id": f"m{i:08d}", "question": f"q{i // 26:06d}", **fields}).encode()


def test_the_rows_dictionary_learns_from_the_flows_rows_not_the_intakes(tmp_path):
    """With 2,000 questions or more a run's first 2,000 rows are all its intake's: those are no samples, so the rows'
    dictionary is trained on the flow's rows, however many questions were ingested first."""
    con = sqlite3.connect(tmp_path / "x.db", isolation_level=None)
    con.executescript(DDL)
    coder = Coder(row_samples=400)
    coder.start(con)

    def offer(kind: str, rows: range, *, sample: bool = True) -> int:
        con.execute("BEGIN IMMEDIATE")
        for i in rows:
            coder.row("messages", i, _row(kind, i), sample=sample)
        coder.finish(con)
        con.execute("COMMIT")
        coder.transaction_ended(True)
        return con.execute("SELECT COUNT(*) FROM dictionaries").fetchone()[0]

    assert offer("QuestionIngested", range(0, 1000), sample=False) == 0  # the intake: 2.5 x the samples, none taken
    assert offer("CoTGenerated", range(1000, 1200)) == 0
    assert offer("Verdict", range(1200, 1400)) == 1  # 400 of the flow's rows: trained
    assert trained.names_dictionary(coder.row("messages", 9999, _row("Verdict", 9999)))
