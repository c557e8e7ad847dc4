"""Merge the databases of a sharded run into the database of the whole run: synchronous SQLite.

Every shard holds the same run (same id: the shard is not part of the run's
identity) over a disjoint part of its questions, with their ordinals in the
whole input.  So the merged database is the union of the shards' rows: the
journal copied shard by shard in each shard's own order (one question's
messages keep their relative order, which is all the export reads), the
response cache, joins and texts de-duplicated by key, the call accounting summed, and
one ``runs`` row counting every question.  The checks (same fingerprint, no
question in two shards, every shard present and finished) are the caller's:
``reasonmed_async.scale.merge``.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from reasonmed_async.store.compacting import parents_by_seq
from reasonmed_async.store.errors import StoreError
from reasonmed_async.store.names import add_name_checksums
from reasonmed_async.store.schema import DDL, STORE_SCHEMA_VERSION

#: the columns copied per table (``seq`` is renumbered: AUTOINCREMENT keeps each shard's order)
_COPIED = {
    "questions": "run_id, id, ordinal, source",
    "message_rows": "id, run, question, type, label, parent, schema_version, created_ms, checksum, payload",
    "delivery_rows": "message_seq, consumer, state, intake",  # (message_seq: renumbered, see _SOURCE)
    "llm_cache": "key, rest, model, created_ms, checksum, payload",
    "joins": "key, item, message_id",
    "record_rows": "run, question, path, ordinal, message_id, record_id",
    "scores": "label, target_id, model, score, justification, template, created_at",
    "texts": "digest, kind, body",  # content-addressed: a text two shards share is one row
    "dictionaries": "id, role, digest, body",  # by zstd's id, which each frame coded against one names
}


def _code(column: str) -> str:
    """The merged database's ``names.code`` for a shard row's code in ``column`` (``names.py``: each database
    gives its own codes; the shard's names are copied first)."""
    return f"(SELECT new FROM temp.code_map WHERE old = s.{column})"


#: what is copied where it is not the shard's columns as they are: a delivery names its message by the seq the
#: message has in the merged database (the messages are copied first); codes of names are the merged database's
_SOURCE = {
    "message_rows": f"SELECT s.id, {_code('run')}, {_code('question')}, {_code('type')}, {_code('label')},"
                    " CASE typeof(s.parent) WHEN 'integer' THEN coalesce((SELECT p.id FROM shard.message_rows p"
                    " WHERE p.seq = s.parent), '') ELSE s.parent END,"  # (by id: seqs are renumbered)
                    " s.schema_version, s.created_ms, s.checksum, s.payload FROM shard.message_rows s ORDER BY s.seq",
    "delivery_rows": f"SELECT m.seq, {_code('consumer')}, s.state, s.intake FROM shard.delivery_rows s"
                     " JOIN shard.message_rows sm ON sm.seq = s.message_seq JOIN main.message_rows m ON m.id = sm.id"
                     " ORDER BY s.message_seq",
    "joins": f"SELECT {_code('key')}, {_code('item')}, s.message_id FROM shard.joins s",
    "record_rows": f"SELECT {_code('run')}, {_code('question')}, {_code('path')}, s.ordinal, s.message_id, s.record_id"
                   " FROM shard.record_rows s",
    "llm_cache": f"SELECT s.key, s.rest, {_code('model')}, s.created_ms, s.checksum, s.payload FROM shard.llm_cache s",
}


def _map_names(con: sqlite3.Connection) -> None:
    """The shard's names into the merged database's, and ``temp.code_map`` (shard code -> merged code)."""
    con.execute("INSERT OR IGNORE INTO main.names(name) SELECT name FROM shard.names ORDER BY code")
    add_name_checksums(con)
    con.execute("DROP TABLE IF EXISTS temp.code_map")
    con.execute("CREATE TABLE temp.code_map (old INTEGER PRIMARY KEY, new INTEGER NOT NULL)")
    con.execute("INSERT INTO temp.code_map(old, new) SELECT s.code, m.code FROM shard.names s"
                " JOIN main.names m ON m.name = s.name")


@dataclass(frozen=True)
class ShardFacts:
    """What the merge checks read from one shard database."""

    path: Path
    schema_version: str | None
    runs: list[tuple[str, str, str, str, int, str]]  # id, input_digest, config_digest, status, questions, input_path
    fingerprint: str | None
    question_ids: set[str]


def read_facts(path: Path) -> ShardFacts:
    """A shard's schema version, runs, fingerprint and question ids (read-only)."""
    con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not {"meta", "runs", "questions"} <= tables:
            return ShardFacts(path, None, [], None, set())
        version = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        runs = [tuple(r) for r in con.execute(
            "SELECT id, input_digest, config_digest, status, questions, input_path FROM runs ORDER BY created_at")]
        fingerprint = None
        if len(runs) == 1:
            row = con.execute("SELECT value FROM meta WHERE key=?", (f"shard:{runs[0][0]}",)).fetchone()
            fingerprint = row[0] if row else None
        ids = {r[0] for r in con.execute("SELECT id FROM questions")}
        return ShardFacts(path, version[0] if version else None, runs, fingerprint, ids)  # type: ignore[arg-type]
    finally:
        con.close()


def _refuse_clashing_dictionaries(con: sqlite3.Connection, shard: Path) -> None:
    """Two shards' different trained dictionaries under one id (zstd's ids are 31-bit hashes: never seen) would make
    one shard's rows unreadable in the merge: refused, naming the shard."""
    clash = con.execute("SELECT s.id FROM shard.dictionaries s JOIN main.dictionaries m ON m.id = s.id"
                        " WHERE m.body != s.body LIMIT 1").fetchone()
    if clash is not None:
        raise StoreError(f"{shard}: its trained dictionary {clash[0]} has the id of another shard's: these shards"
                         " cannot be merged")


def merge_into(out: Path, shards: Sequence[Path], merged_meta: dict[str, str]) -> None:
    """Write the union of ``shards`` into the new database file ``out`` (it must not exist): one transaction
    per shard (SQLite attaches at most 10 databases at once), so the caller builds ``out`` under a temporary
    name and renames it into place once this returns."""
    con = sqlite3.connect(out, isolation_level=None)
    try:
        con.executescript(DDL)
        con.execute("BEGIN IMMEDIATE")
        con.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(STORE_SCHEMA_VERSION),))
        for i, shard in enumerate(shards):
            con.execute("ATTACH DATABASE ? AS shard", (f"file:{shard}?mode=ro",))
            if i == 0:
                con.execute("INSERT INTO runs SELECT * FROM shard.runs")
            else:
                con.execute("UPDATE runs SET questions = questions + (SELECT SUM(questions) FROM shard.runs),"
                            " created_at = MIN(created_at, (SELECT MIN(created_at) FROM shard.runs)),"
                            " finished_at = MAX(finished_at, (SELECT MAX(finished_at) FROM shard.runs))")
            _refuse_clashing_dictionaries(con, shard)
            _map_names(con)
            for table, columns in _COPIED.items():
                verb = "INSERT" if table in ("questions", "message_rows", "record_rows") else "INSERT OR IGNORE"
                source = _SOURCE.get(table, f"SELECT {columns} FROM shard.{table}")
                con.execute(f"{verb} INTO main.{table}({columns}) {source}")
            con.execute(
                "INSERT INTO main.calls(stage, model, endpoint, outcome, calls, prompt_tokens, completion_tokens)"
                " SELECT stage, model, endpoint, outcome, calls, prompt_tokens, completion_tokens FROM shard.calls"
                " WHERE true ON CONFLICT DO UPDATE SET calls = calls + excluded.calls,"
                " prompt_tokens = prompt_tokens + excluded.prompt_tokens,"
                " completion_tokens = completion_tokens + excluded.completion_tokens")
            con.execute("COMMIT")  # DETACH is refused inside a transaction: one per shard, then a new one
            con.execute("DETACH DATABASE shard")
            con.execute("BEGIN IMMEDIATE")
        parents_by_seq(con)
        con.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", sorted(merged_meta.items()))
        con.execute("COMMIT")
    finally:
        con.close()
