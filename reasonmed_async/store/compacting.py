"""Schema v7 -> v8 (``to_v8``): compact rows, synchronous, in the caller's transaction (``migration.upgrade``).

Every run id, question id, message type, label, model, consumer, join key and item,
and record path the rows name goes into ``names`` once; ``messages`` is rebuilt as ``message_rows`` (the same seqs, so
every delivery still names its message; AUTOINCREMENT's high-water mark kept)
naming them by code, its ids and parent ids as their bytes (``names.id_bytes``),
its time in integer milliseconds, and ``messages`` becomes the view that reads
them back as v7's columns; ``llm_cache`` is rebuilt keyed by its key's first 8
bytes (``cache_key.py``); ``deliveries``, ``joins`` and ``records`` are rebuilt as
their compact rows (``records`` and ``deliveries`` then views of them).  Payloads
and checksums are copied as they are: a checksum covers the id and the
envelope's strings, which the view gives back unchanged, so damage stays
findable (a damaged key or id no longer matches its checksum).
"""

from __future__ import annotations

import sqlite3

from reasonmed_async.store.names import NAMES_COLUMNS, STATES, add_name_checksums, id_bytes
from reasonmed_async.store.schema import (
    DELIVERY_ROWS_COLUMNS, JOINS_COLUMNS, LLM_CACHE_COLUMNS, MESSAGE_ROWS_COLUMNS, MESSAGE_ROWS_INDEXES,
    RECORD_ROWS_COLUMNS,
)
from reasonmed_async.store.views import DELIVERY_ROWS_INDEXES, VIEWS


def _stored_id(value: object) -> object:
    return id_bytes(value) if isinstance(value, str) else value


def _key_rowid(key: object) -> int:
    """The rowid of a v7 key (its 32 bytes; a damaged one of another type by its bytes, so its checksum fails)."""
    raw = key if isinstance(key, bytes) else str(key).encode("utf-8", "surrogatepass")
    return int.from_bytes(raw[:8].ljust(8, b"\0"), "big", signed=True)


def _key_rest(key: object) -> bytes:
    raw = key if isinstance(key, bytes) else str(key).encode("utf-8", "surrogatepass")
    return raw[8:]


def to_v8(con: sqlite3.Connection) -> None:
    con.create_function("rm_id_bytes", 1, _stored_id, deterministic=True)
    con.create_function("rm_key_rowid", 1, _key_rowid, deterministic=True)
    con.create_function("rm_key_rest", 1, _key_rest, deterministic=True)
    con.execute(f"CREATE TABLE IF NOT EXISTS names {NAMES_COLUMNS}")
    con.execute("INSERT OR IGNORE INTO names(name) SELECT DISTINCT name FROM ("
                "SELECT run_id AS name FROM messages UNION ALL SELECT question_id FROM messages"
                " UNION ALL SELECT type FROM messages UNION ALL SELECT label FROM messages"
                " UNION ALL SELECT model FROM llm_cache UNION ALL SELECT consumer FROM deliveries"
                " UNION ALL SELECT key FROM joins UNION ALL SELECT item_id FROM joins"
                " UNION ALL SELECT run_id FROM records UNION ALL SELECT question_id FROM records"
                " UNION ALL SELECT path FROM records) ORDER BY name")
    add_name_checksums(con)
    _messages(con)
    _cache(con)
    _deliveries_joins_records(con)
    for statement in (MESSAGE_ROWS_INDEXES + DELIVERY_ROWS_INDEXES + VIEWS).split(";"):
        if statement.strip():  # one at a time: executescript would commit the caller's transaction
            con.execute(statement)


def _messages(con: sqlite3.Connection) -> None:
    (high,) = con.execute("SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name='messages'), 0),"
                          " coalesce((SELECT max(seq) FROM messages), 0))").fetchone()
    con.execute("DROP TABLE IF EXISTS message_rows")  # (the DDL made it empty, beside v7's table)
    con.execute(f"CREATE TABLE message_rows {MESSAGE_ROWS_COLUMNS}")
    con.execute(
        "INSERT INTO message_rows(seq, id, run, question, type, label, parent, schema_version, created_ms, checksum,"
        " payload) SELECT m.seq, rm_id_bytes(m.id), r.code, q.code, t.code, l.code, rm_id_bytes(m.parent_id),"
        " m.schema_version, CAST(round(m.created_at * 1000) AS INTEGER), m.checksum, m.payload FROM messages m"
        " JOIN names r ON r.name = m.run_id JOIN names q ON q.name = m.question_id JOIN names t ON t.name = m.type"
        " JOIN names l ON l.name = m.label ORDER BY m.seq")
    con.execute("DROP TABLE messages")  # (and v7's indexes with it)
    parents_by_seq(con)
    if high:
        if con.execute("SELECT 1 FROM sqlite_sequence WHERE name='message_rows'").fetchone() is None:
            con.execute("INSERT INTO sqlite_sequence(name, seq) VALUES ('message_rows', ?)", (high,))
        else:
            con.execute("UPDATE sqlite_sequence SET seq=max(seq, ?) WHERE name='message_rows'", (high,))


def parents_by_seq(con: sqlite3.Connection) -> None:
    """Each row's parent named by its seq where it names a stored parent by the id's bytes (the migration and the
    merge copy parents as ids)."""
    con.execute("UPDATE message_rows SET parent = (SELECT p.seq FROM message_rows p WHERE p.id = message_rows.parent)"
                " WHERE typeof(parent) = 'blob' AND EXISTS (SELECT 1 FROM message_rows p WHERE p.id = message_rows.parent)")


def _cache(con: sqlite3.Connection) -> None:
    con.execute("ALTER TABLE llm_cache RENAME TO llm_cache_v7")
    con.execute(f"CREATE TABLE llm_cache {LLM_CACHE_COLUMNS}")
    con.execute("INSERT OR IGNORE INTO llm_cache(key, rest, model, created_ms, checksum, payload)"
                " SELECT rm_key_rowid(c.key), rm_key_rest(c.key), n.code, CAST(round(c.created_at * 1000) AS INTEGER),"
                " c.checksum, c.payload FROM llm_cache_v7 c JOIN names n ON n.name = c.model ORDER BY c.rowid")
    con.execute("DROP TABLE llm_cache_v7")


def _deliveries_joins_records(con: sqlite3.Connection) -> None:
    states = " ".join(f"WHEN '{word}' THEN {i}" for i, word in enumerate(STATES))
    con.execute(f"CREATE TABLE IF NOT EXISTS delivery_rows {DELIVERY_ROWS_COLUMNS}")
    con.execute(f"INSERT OR IGNORE INTO delivery_rows(message_seq, consumer, state, intake) SELECT d.message_seq, n.code,"
                f" CASE d.state {states} ELSE d.state END, d.intake FROM deliveries d JOIN names n ON n.name = d.consumer"
                " ORDER BY d.message_seq, d.consumer")
    con.execute("DROP TABLE deliveries")
    con.execute("ALTER TABLE joins RENAME TO joins_v7")
    con.execute(f"CREATE TABLE joins {JOINS_COLUMNS}")
    con.execute("INSERT OR IGNORE INTO joins(key, item, message_id) SELECT k.code, i.code, rm_id_bytes(j.message_id)"
                " FROM joins_v7 j JOIN names k ON k.name = j.key JOIN names i ON i.name = j.item_id")
    con.execute("DROP TABLE joins_v7")
    con.execute(f"CREATE TABLE IF NOT EXISTS record_rows {RECORD_ROWS_COLUMNS}")
    con.execute("INSERT OR IGNORE INTO record_rows(run, question, path, ordinal, message_id, record_id)"
                " SELECT r.code, q.code, p.code, x.ordinal, rm_id_bytes(x.message_id),"
                " CASE WHEN x.record_id = x.question_id || '/' || x.path THEN NULL ELSE x.record_id END"
                " FROM records x JOIN names r ON r.name = x.run_id JOIN names q ON q.name = x.question_id"
                " JOIN names p ON p.name = x.path")
    con.execute("DROP TABLE records")  # (and records_by_run with it)
