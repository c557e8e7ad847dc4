"""Upgrading an older checkpoint database in place: v1 -> v2 -> v3 -> v4, synchronous, in the caller's transaction.

v1 -> v2 (``integrity.add_checksums``): the checksum columns.
v2 -> v3 (``to_v3``): every stored message and cached completion is verified
against its v2 checksum (damage stops the migration: nothing is rewritten over
a damaged row), split into its skeleton and its texts (``store/texts.py``) and
rewritten with a checksum of the skeleton; ``records`` is rebuilt, keyed by
(run, record id), from the journal's ``RecordReady`` messages — so the records
a second run lost to v2's key come back.
v3 -> v4 (``to_v4``): ``llm_cache`` is rebuilt with its key as the 32 bytes of
its hex (payloads and checksums copied as they are: the checksum covers the hex,
so nothing is re-derived and damage stays findable), and every ``texts`` body
that zstd makes smaller is compressed (``store/packing.py``; digests unchanged).
v4 -> v5 (``to_v5``): each message's payload loses the envelope its columns hold
(``store/envelope.py``; checksums unchanged: they cover the whole skeleton), and
the by-type index is rebuilt on the type alone.
v5 -> v6 (``to_v6``): every message payload, cached completion and struct piece is
coded against the dictionary of shapes where that is smaller (``store/lexicon.py``;
checksums and digests unchanged: they cover the JSON, so damage stays findable).
The structs v6 keeps inline (``splitting._INLINE``) stay pieces in a migrated
database: a reader splices whatever a row references.  ``deliveries`` is rebuilt
naming each message by its seq (each delivery keeps its own seq, state and order).
v6 -> v7 (``to_v7``): the ``dictionaries`` table; rows stay as they are (a v7
reader reads a frame coded without a trained dictionary as v6 did); the
by-question index rebuilt on the question id alone; ``deliveries`` keyed by
(message_seq, consumer), its own seq (always in message order) and
``updated_at`` (read by nothing) dropped.
v7 -> v8 (``compacting.to_v8``): compact rows — strings interned, ids as bytes,
the cache keyed by its key's first 8 bytes.
"""

from __future__ import annotations

import re
import sqlite3

from bus import RecordReady, decode
from bus.messages import SCHEMA_VERSION

from reasonmed_async.store.compacting import to_v8
from reasonmed_async.store.envelope import compact, head
from reasonmed_async.store.integrity import add_checksums, row_checksum, verified
from reasonmed_async.store.reading import db_name
from reasonmed_async.store.lexicon import is_squeezed, squeeze
from reasonmed_async.store.packing import LEXICON, ZSTD, pack
from reasonmed_async.store.schema import DICTIONARIES_COLUMNS
from reasonmed_async.store.splitting import Splitter
from reasonmed_async.store.texts import Pieces, store_pieces

PAGE = 2000

_RECORDS_V3 = """(
    record_id   TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    question_id TEXT NOT NULL,
    ordinal     INTEGER NOT NULL,
    path        TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    PRIMARY KEY (run_id, record_id)
)"""  # v3-v7's records (``to_v3`` builds it; ``compacting.to_v8`` rebuilds it as ``schema.RECORD_ROWS_COLUMNS``)

_DELIVERIES_V7 = """(
    message_seq INTEGER NOT NULL,
    consumer    TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    intake      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (message_seq, consumer)
) WITHOUT ROWID"""  # v7's deliveries (``to_v7``; ``compacting.to_v8`` rebuilds it as ``schema.DELIVERY_ROWS_COLUMNS``)



def upgrade(con: sqlite3.Connection, version: int) -> None:
    """From ``version`` to the newest, step by step (the caller holds the transaction)."""
    for step in _STEPS[version - 1:]:
        step(con)


def to_v3(con: sqlite3.Connection) -> None:
    name = db_name(con)
    splitter = Splitter()
    con.execute(f"CREATE TABLE records_v3 {_RECORDS_V3}")
    after = 0
    while rows := con.execute("SELECT seq, id, payload, checksum, question_id FROM messages WHERE seq > ?"
                              " ORDER BY seq LIMIT ?", (after, PAGE)).fetchall():
        pieces: Pieces = {}
        updates, records = [], []
        for seq, mid, payload, checksum, qid in rows:
            message = decode(verified(name, "messages", mid, payload, checksum, qid))
            skeleton = splitter.message(message, SCHEMA_VERSION, pieces)
            updates.append((skeleton, row_checksum(mid, skeleton), seq))
            if isinstance(message, RecordReady):
                records.append((message.record_id, message.run_id, message.question_id, message.question.ordinal,
                                message.path.name, mid))
        store_pieces(con, pieces)
        con.executemany("UPDATE messages SET payload=?, checksum=? WHERE seq=?", updates)
        con.executemany("INSERT OR IGNORE INTO records_v3(record_id, run_id, question_id, ordinal, path, message_id)"
                        " VALUES (?,?,?,?,?,?)", records)
        after = rows[-1][0]
    after = 0
    while rows := con.execute("SELECT rowid, key, payload, checksum FROM llm_cache WHERE rowid > ? ORDER BY rowid"
                              " LIMIT ?", (after, PAGE)).fetchall():
        pieces = {}
        updates = []
        for rowid, key, payload, checksum in rows:
            skeleton = splitter.json(verified(name, "llm_cache", key, payload, checksum), pieces)
            updates.append((skeleton, row_checksum(key, skeleton), rowid))
        store_pieces(con, pieces)
        con.executemany("UPDATE llm_cache SET payload=?, checksum=? WHERE rowid=?", updates)
        after = rows[-1][0]
    con.execute("DROP TABLE records")
    con.execute("ALTER TABLE records_v3 RENAME TO records")
    con.execute("CREATE INDEX IF NOT EXISTS records_by_run ON records (run_id, ordinal, path)")


_HEX = re.compile(r"(?:[0-9a-f]{2})+")


def _key_bytes(key: object) -> object:
    """A v3 cache key as v4 stores it; a key that is not lower-case hex (damaged) is kept as its UTF-8 bytes,
    so its checksum no longer matches and ``reasonmed check`` names it."""
    if isinstance(key, str):
        return bytes.fromhex(key) if _HEX.fullmatch(key) else key.encode("utf-8", "surrogatepass")
    return key


_LLM_CACHE_V4 = """(
    key        BLOB NOT NULL UNIQUE,
    model      TEXT NOT NULL,
    payload    BLOB NOT NULL,
    created_at REAL NOT NULL,
    checksum   INTEGER
)"""  # v4-v7's llm_cache (``to_v4`` builds it; ``compacting.to_v8`` rebuilds it as ``schema.LLM_CACHE_COLUMNS``)


def to_v4(con: sqlite3.Connection) -> None:
    con.create_function("rm_key_bytes", 1, _key_bytes, deterministic=True)
    con.execute("ALTER TABLE llm_cache RENAME TO llm_cache_v3")
    con.execute(f"CREATE TABLE llm_cache {_LLM_CACHE_V4}")
    con.execute("INSERT INTO llm_cache(key, model, payload, created_at, checksum)"
                " SELECT rm_key_bytes(key), model, payload, created_at, checksum FROM llm_cache_v3 ORDER BY rowid")
    con.execute("DROP TABLE llm_cache_v3")
    after = 0
    while rows := con.execute("SELECT seq, kind, body FROM texts WHERE seq > ? ORDER BY seq LIMIT ?",
                              (after, PAGE)).fetchall():
        updates = []
        for seq, kind, body in rows:
            if isinstance(kind, int) and not kind & ZSTD and isinstance(body, bytes):
                packed = pack(kind, body)
                if packed[0] != kind:
                    updates.append((*packed, seq))
        con.executemany("UPDATE texts SET kind=?, body=? WHERE seq=?", updates)
        after = rows[-1][0]


def to_v5(con: sqlite3.Connection) -> None:
    after = 0
    while rows := con.execute("SELECT seq, payload, schema_version, type, run_id, question_id, parent_id FROM messages"
                              " WHERE seq > ? ORDER BY seq LIMIT ?", (after, PAGE)).fetchall():
        updates = []
        for seq, payload, *envelope in rows:
            if isinstance(payload, bytes) and payload[:1] == b"{":
                try:
                    stored = compact(payload, head(*envelope))
                except (TypeError, ValueError):  # a damaged column: the row stays as it is (``check`` names it)
                    continue
                if stored is not payload:
                    updates.append((stored, seq))
        con.executemany("UPDATE messages SET payload=? WHERE seq=?", updates)
        after = rows[-1][0]
    con.execute("DROP INDEX IF EXISTS messages_by_type")


def to_v6(con: sqlite3.Connection) -> None:
    _deliveries_by_seq(con)
    for table, key in (("messages", "seq"), ("llm_cache", "rowid")):
        after = 0
        while rows := con.execute(f"SELECT {key}, payload FROM {table} WHERE {key} > ? ORDER BY {key} LIMIT ?",
                                  (after, PAGE)).fetchall():
            updates = [(squeezed, k) for k, payload in rows if isinstance(payload, bytes) and not is_squeezed(payload)
                       and (squeezed := squeeze(payload)) is not payload]
            con.executemany(f"UPDATE {table} SET payload=? WHERE {key}=?", updates)
            after = rows[-1][0]
    after = 0
    while rows := con.execute("SELECT seq, kind, body FROM texts WHERE seq > ? ORDER BY seq LIMIT ?",
                              (after, PAGE)).fetchall():
        updates = [(*packed, seq) for seq, kind, body in rows if isinstance(kind, int) and isinstance(body, bytes)
                   and not kind & (ZSTD | LEXICON) and (packed := pack(kind, body))[0] != kind]
        con.executemany("UPDATE texts SET kind=?, body=? WHERE seq=?", updates)
        after = rows[-1][0]


_DELIVERIES_V6 = """(
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    message_seq INTEGER NOT NULL,
    consumer    TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    intake      INTEGER NOT NULL DEFAULT 0,
    updated_at  REAL NOT NULL,
    UNIQUE (message_seq, consumer)
)"""  # v6's deliveries (``to_v6`` builds it; ``to_v7`` rebuilds it as ``schema.DELIVERIES_COLUMNS``)


def _deliveries_by_seq(con: sqlite3.Connection) -> None:
    """``deliveries`` rebuilt with ``message_seq`` for ``message_id`` (a delivery of no stored message, which no
    reader could ever join to one, is dropped); its seqs and AUTOINCREMENT's high-water mark are kept."""
    row = con.execute("SELECT seq FROM sqlite_sequence WHERE name='deliveries'").fetchone()
    con.execute("DROP INDEX IF EXISTS deliveries_pending")
    con.execute("ALTER TABLE deliveries RENAME TO deliveries_v5")
    con.execute(f"CREATE TABLE deliveries {_DELIVERIES_V6}")
    con.execute("INSERT INTO deliveries(seq, message_seq, consumer, state, intake, updated_at)"
                " SELECT d.seq, m.seq, d.consumer, d.state, d.intake, d.updated_at FROM deliveries_v5 d"
                " JOIN messages m ON m.id = d.message_id ORDER BY d.seq")
    con.execute("DROP TABLE deliveries_v5")
    con.execute("CREATE INDEX deliveries_pending ON deliveries (consumer, seq) WHERE state = 'pending'")
    if row is not None:
        con.execute("UPDATE sqlite_sequence SET seq=max(seq, ?) WHERE name='deliveries'", (row[0],))


def to_v7(con: sqlite3.Connection) -> None:
    """A v6 row is a valid v7 row (coded without a trained dictionary); the writer trains them from here on.
    The by-question index is rebuilt on the question id alone, and ``deliveries`` keyed by (message_seq,
    consumer), in the order of their seqs (the order the bus hands them out: message order)."""
    con.execute(f"CREATE TABLE IF NOT EXISTS dictionaries {DICTIONARIES_COLUMNS}")
    con.execute("DROP INDEX IF EXISTS messages_by_question")
    con.execute("CREATE INDEX messages_by_question ON messages (question_id)")
    con.execute("DROP INDEX IF EXISTS deliveries_pending")
    con.execute("ALTER TABLE deliveries RENAME TO deliveries_v6")
    con.execute(f"CREATE TABLE deliveries {_DELIVERIES_V7}")
    con.execute("INSERT OR IGNORE INTO deliveries(message_seq, consumer, state, intake)"
                " SELECT message_seq, consumer, state, intake FROM deliveries_v6 ORDER BY seq")
    con.execute("DROP TABLE deliveries_v6")
    con.execute("CREATE INDEX deliveries_pending ON deliveries (consumer, message_seq) WHERE state = 'pending'")


_STEPS = (add_checksums, to_v3, to_v4, to_v5, to_v6, to_v7, to_v8)  # _STEPS[v - 1] takes a database from version v to v + 1
