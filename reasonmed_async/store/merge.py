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

from reasonmed_async.store.errors import StoreError
from reasonmed_async.store.schema import DDL, STORE_SCHEMA_VERSION

#: the columns copied per table (``seq`` is renumbered: AUTOINCREMENT keeps each shard's order)
_COPIED = {
    "questions": "run_id, id, ordinal, source",
    "messages": "id, run_id, question_id, type, label, parent_id, schema_version, payload, created_at, checksum",
    "deliveries": "message_seq, consumer, state, intake",  # (message_seq: renumbered, see _SOURCE)
    "llm_cache": "key, model, payload, created_at, checksum",
    "joins": "key, item_id, message_id",
    "records": "record_id, run_id, question_id, ordinal, path, message_id",
    "scores": "label, target_id, model, score, justification, template, created_at",
    "texts": "digest, kind, body",  # content-addressed: a text two shards share is one row
    "dictionaries": "id, role, digest, body",  # by zstd's id, which each frame coded against one names
}
#: what is copied where it is not the shard's columns as they are: a delivery names its message by the seq the
#: message has in the merged database (the messages are copied first)
_SOURCE = {
    "deliveries": "SELECT m.seq, d.consumer, d.state, d.intake FROM shard.deliveries d"
                  " JOIN shard.messages s ON s.seq = d.message_seq JOIN main.messages m ON m.id = s.id"
                  " ORDER BY d.message_seq",
}


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
            for table, columns in _COPIED.items():
                verb = "INSERT" if table in ("questions", "messages", "records") else "INSERT OR IGNORE"
                order = " ORDER BY seq" if table == "messages" else ""
                source = _SOURCE.get(table, f"SELECT {columns} FROM shard.{table}{order}")
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
        con.executemany("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", sorted(merged_meta.items()))
        con.execute("COMMIT")
    finally:
        con.close()
