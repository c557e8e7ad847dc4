"""Per-row checksums of what a run paid for: the journal's messages and the LLM response cache (and, v8, the
interned names every other row relies on: ``names.name_checksum``).

Each row of ``messages`` and ``llm_cache`` carries ``checksum``, a CRC-32 of its
identity and payload computed when the row is written.  CRC-32 finds every
single-bit flip and every burst of up to 32 bits — the damage a disk, a copy or a
stray write does; it is not a defence against someone forging rows.  Readers
that resume or export verify each row they read (``verified``); ``reasonmed
check`` verifies them all (``scan``).
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Iterator
from dataclasses import dataclass

from reasonmed_async.store.errors import DamageError, StoreError
from reasonmed_async.store.cache_key import CACHE_KEY
from reasonmed_async.store.envelope import whole
from reasonmed_async.store.lexicon import unsqueeze
from reasonmed_async.store.names import name_checksum
from reasonmed_async.store.packing import unpack
from reasonmed_async.store.texts import digest
from reasonmed_async.store.trained import damaged_dictionaries



def row_checksum(identity: str, payload: bytes) -> int:
    return zlib.crc32(payload, zlib.crc32(identity.encode("utf-8", "surrogatepass") + b"\0"))


def verified(db_path: object, table: str, identity: str, payload: bytes, checksum: int | None,
             question: str | None = None) -> bytes:
    """``payload`` if it matches ``checksum``; else ``DamageError`` naming the row (and question)."""
    if checksum is None or row_checksum(identity, payload) != checksum:
        of = f" of question {question}" if question else ""
        raise DamageError(f"{db_path}: damaged row in {table} ({identity}{of}): its content does not match its"
                          " checksum; `reasonmed check --db` lists every damaged row")
    return payload


@dataclass(frozen=True)
class DamagedRow:
    table: str
    identity: str
    question: str | None


def scan(db: sqlite3.Connection, batch: int = 2048) -> Iterator[DamagedRow]:
    """Every row of ``messages``, ``llm_cache`` and ``names`` (v8) whose checksum does not match, of ``texts``
    whose content does not match its digest, and of ``dictionaries`` (v7) whose body does not match its digest
    or id."""
    for ident in damaged_dictionaries(db):
        yield DamagedRow("dictionaries", str(ident), None)
    queries = (("messages", "SELECT id, payload, checksum, question_id, schema_version, type, run_id, parent_id"
                            " FROM messages"),
               ("llm_cache", f"SELECT {CACHE_KEY}, payload, checksum, NULL FROM llm_cache"))
    for table, sql in queries:
        cur = db.execute(sql)
        while rows := cur.fetchmany(batch):
            for identity, payload, checksum, question, *envelope in rows:
                if not isinstance(payload, bytes | str) or not isinstance(identity, str):
                    yield DamagedRow(table, str(identity), question)
                    continue
                data = payload.encode("utf-8", "surrogatepass") if isinstance(payload, str) else unsqueeze(payload, db)
                if envelope:  # a message row: its skeleton less the envelope its columns give back (v5)
                    version, type_, run_id, parent_id = envelope
                    data = whole(data, version, type_, run_id, question, parent_id)
                if checksum is None or row_checksum(identity, data) != checksum:
                    yield DamagedRow(table, identity, question)
    yield from _damaged_names(db, batch)
    cur = db.execute("SELECT digest, kind, body FROM texts")
    while rows := cur.fetchmany(batch):
        for key, kind, body in rows:
            piece = unpack(kind, body, db) if isinstance(body, bytes) and isinstance(kind, int) else None
            if piece is None or not isinstance(key, bytes) or digest(*piece) != key:
                yield DamagedRow("texts", key.hex() if isinstance(key, bytes) else str(key), None)


def _damaged_names(db: sqlite3.Connection, batch: int) -> Iterator[DamagedRow]:
    """Every ``names`` row (v8) whose checksum does not match its code and name: one such row misnames every
    delivery, join, record and cached response that names it."""
    cur = db.execute("SELECT code, name, checksum FROM names")
    while rows := cur.fetchmany(batch):
        for code, name, checksum in rows:
            if not isinstance(code, int) or not isinstance(name, str) or checksum != name_checksum(code, name):
                yield DamagedRow("names", f"{code} ({name!r})", None)


def add_checksums(db: sqlite3.Connection) -> None:
    """Schema v1 -> v2: the checksum columns, computed for the rows already there (one transaction)."""
    db.create_function("rm_checksum", 2, lambda i, p: row_checksum(i, p if isinstance(p, bytes) else str(p).encode()),
                       deterministic=True)
    db.execute("ALTER TABLE messages ADD COLUMN checksum INTEGER")
    db.execute("ALTER TABLE llm_cache ADD COLUMN checksum INTEGER")
    db.execute("UPDATE messages SET checksum = rm_checksum(id, payload)")
    db.execute("UPDATE llm_cache SET checksum = rm_checksum(key, payload)")


def schema_version(con: sqlite3.Connection, db: object) -> int:
    tables = {r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if "meta" not in tables:
        raise StoreError(f"{db}: not a reasonmed checkpoint database")
    row = con.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
    if row is None:
        raise DamageError(f"{db}: the schema version is missing from the meta table")
    return int(row[0])


def integrity_problems(con: sqlite3.Connection, limit: int = 100) -> list[str]:
    """SQLite's ``integrity_check``: ``["ok"]`` or up to ``limit`` problems."""
    return [r[0] for r in con.execute(f"PRAGMA integrity_check({int(limit)})")]


def row_counts(con: sqlite3.Connection) -> tuple[int, int, int]:
    """(messages, cached responses, stored texts)."""
    (messages,) = con.execute("SELECT COUNT(*) FROM messages").fetchone()
    (cached,) = con.execute("SELECT COUNT(*) FROM llm_cache").fetchone()
    (texts,) = con.execute("SELECT COUNT(*) FROM texts").fetchone()
    return int(messages), int(cached), int(texts)
