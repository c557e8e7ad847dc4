"""The SQLite schema of a checkpoint database, and its version."""

from __future__ import annotations

from reasonmed_async.store.names import NAMES_COLUMNS
from reasonmed_async.store.views import DELIVERY_ROWS_INDEXES, VIEWS

STORE_SCHEMA_VERSION = 8
# v1 -> v2: ``checksum`` on messages and llm_cache (``integrity.add_checksums`` migrates a v1 database)
# v2 -> v3: each text stored once: ``payload`` of messages and llm_cache is a skeleton referencing ``texts``
#           (store/texts.py); ``records`` keyed by (run_id, record_id), so each run keeps its records
#           (``migration.to_v3`` migrates a v2 database)
# v3 -> v4: ``llm_cache.key`` is the 32 bytes of the SHA-256 (was its 64-character hex: the row and its unique
#           index each held it), and ``texts`` bodies may be zstd frames (``store/packing.py``: the ZSTD bit of
#           ``kind``; strings only); ``migration.to_v4`` converts a v3 database
# v4 -> v5: a message's ``payload`` is its skeleton less the envelope its columns hold (``store/envelope.py``;
#           the checksum still covers the whole skeleton), and ``messages`` is indexed by type alone
#           (``messages_of_type``: serves the status and report queries that ask by type across runs; was
#           ``messages_by_type`` on (run_id, type)); ``migration.to_v5`` converts a v4 database
# v5 -> v6: message payloads, cached completions and struct pieces are zstd frames against a fixed dictionary of
#           their shapes where that is smaller (``store/lexicon.py``; ``texts.kind`` gains the LEXICON bit), and
#           provenances, judgements and rewrite inputs stay inside the struct that holds them (no piece of their
#           own); ``deliveries`` names its message by ``messages.seq`` (``message_seq``; was ``message_id``);
#           ``migration.to_v6`` converts a v5 database
# v6 -> v7: ``dictionaries`` holds zstd dictionaries the writer trained on the database's own strings and rows
#           (``store/coding.py``); a string piece, message payload or cached completion stored after one was trained
#           is a frame against it (its header names the dictionary's id; ``store/trained.py`` reads it).  A v6 row
#           is a valid v7 row; ``messages_by_question`` is on the question id alone (was (run_id, question_id):
#           the few runs a database holds are told apart by the rows, a third of the index's bytes saved);
#           ``deliveries`` is keyed by (message_seq, consumer) WITHOUT ROWID (no seq, no unique index, no
#           ``updated_at``); ``migration.to_v7`` adds the table, rebuilds the index and ``deliveries``
# v7 -> v8: compact rows (``store/names.py``): ``message_rows`` names its run, question, type and label by
#           ``names.code`` and holds its id and its parent's as their 12 bytes, its time as integer milliseconds;
#           the view ``messages`` gives every reader the v7 columns back.  ``llm_cache`` is keyed by the first 8
#           bytes of the SHA-256 as its INTEGER PRIMARY KEY (no unique index: the key is the rowid), the other
#           24 in ``rest`` (a row whose rest differs is a miss, never another call's answer), its model a
#           ``names.code``.  ``deliveries`` (``delivery_rows``) names its consumer by code and its state by a
#           small integer (``names.STATES``), ``joins`` its key and item by code and its message by the id's bytes,
#           ``records`` (``record_rows``, WITHOUT ROWID) its run, question and path by code (its record id is
#           "<question id>/<path>": derived, stored only where it is not); views give every reader v7's columns;
#           ``compacting.to_v8`` rebuilds them all (checksums copied: they cover the same strings)

#: the columns of ``record_rows`` (v3: keyed by run, so each run keeps its records; v8: run, question and path
#: by ``names.code``, the message id as its bytes, ``record_id`` NULL where it is "<question id>/<path>", as every
#: record's is; WITHOUT ROWID: the key is the table, no second b-tree); the view ``records`` reads it
RECORD_ROWS_COLUMNS = """(
    run        INTEGER NOT NULL,
    question   INTEGER NOT NULL,
    path       INTEGER NOT NULL,
    ordinal    INTEGER NOT NULL,
    message_id BLOB NOT NULL,
    record_id  TEXT,
    PRIMARY KEY (run, question, path)
) WITHOUT ROWID"""

#: the columns of ``delivery_rows`` (v6: a delivery names its message by ``messages.seq``, so its key grows at its
#: end as messages are written; v7: keyed by (message_seq, consumer) itself, WITHOUT ROWID: a delivery's own seq
#: and its unique index are gone — a consumer's deliveries are made with their messages, so message order is the
#: order they had — and so is ``updated_at``, which nothing read; v8: the consumer a ``names.code``, the state
#: ``names.STATES``' integer); the view ``deliveries`` reads it
DELIVERY_ROWS_COLUMNS = """(
    message_seq INTEGER NOT NULL,
    consumer    INTEGER NOT NULL,
    state       INTEGER NOT NULL DEFAULT 0,
    intake      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (message_seq, consumer)
) WITHOUT ROWID"""

#: the columns of ``joins`` (v8: key and item by ``names.code``, the message by its id's bytes)
JOINS_COLUMNS = """(
    key        INTEGER NOT NULL,
    item       INTEGER NOT NULL,
    message_id BLOB NOT NULL,
    PRIMARY KEY (key, item)
) WITHOUT ROWID"""

#: the columns of ``llm_cache`` (v8: ``key``, the first 8 bytes of the SHA-256 as a signed big-endian integer, is
#: the rowid, so no second b-tree holds the key again; ``rest``: its other 24 bytes, compared on every hit;
#: ``model``: a ``names.code``; ``created_ms``: integer milliseconds); the migration builds it too
LLM_CACHE_COLUMNS = """(
    key        INTEGER PRIMARY KEY,
    rest       BLOB NOT NULL,
    model      INTEGER NOT NULL,
    created_ms INTEGER NOT NULL,
    checksum   INTEGER,
    payload    BLOB NOT NULL
)"""

#: the columns of ``message_rows`` (v8): a message as v7's ``messages`` held it, its strings interned
#: (``names.code``), its id as 12 bytes (``names.id_bytes``), its parent as the parent's seq (the parent's id's
#: bytes where the parent is not stored; '' for none), ``created_ms`` integer milliseconds;
#: the payload last, so a row's small columns come first
MESSAGE_ROWS_COLUMNS = """(
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             BLOB NOT NULL UNIQUE,
    run            INTEGER NOT NULL,
    question       INTEGER NOT NULL,
    type           INTEGER NOT NULL,
    label          INTEGER NOT NULL,
    parent         NOT NULL,
    schema_version INTEGER NOT NULL,
    created_ms     INTEGER NOT NULL,
    checksum       INTEGER,
    payload        BLOB NOT NULL
)"""

#: the indexes of ``message_rows``: by question (a question's messages), by type (status and report queries
#: that ask by type across runs)
MESSAGE_ROWS_INDEXES = """
CREATE INDEX IF NOT EXISTS message_rows_by_question ON message_rows (question);
CREATE INDEX IF NOT EXISTS message_rows_of_type ON message_rows (type);
"""

#: the columns of ``dictionaries`` (v7): zstd dictionaries trained on the database's rows (``store/coding.py``), by
#: the id zstd gave each (every frame coded against one names it); ``role``: ``trained.STRINGS`` or ``trained.ROWS``;
#: ``digest``: ``trained.dictionary_digest`` of the body (``check`` verifies it)
DICTIONARIES_COLUMNS = """(
    id     INTEGER PRIMARY KEY,
    role   INTEGER NOT NULL,
    digest BLOB NOT NULL,
    body   BLOB NOT NULL
)"""

DDL = f"""
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    id            TEXT PRIMARY KEY,
    input_path    TEXT NOT NULL,
    input_digest  TEXT NOT NULL,
    config_digest TEXT NOT NULL,
    config_json   TEXT NOT NULL,
    questions     INTEGER NOT NULL,
    status        TEXT NOT NULL DEFAULT 'running',
    created_at    REAL NOT NULL,
    finished_at   REAL
);
CREATE TABLE IF NOT EXISTS questions (
    run_id   TEXT NOT NULL,
    id       TEXT NOT NULL,
    ordinal  INTEGER NOT NULL,
    source   TEXT NOT NULL,
    PRIMARY KEY (run_id, id)
);
CREATE TABLE IF NOT EXISTS names {NAMES_COLUMNS};
CREATE TABLE IF NOT EXISTS message_rows {MESSAGE_ROWS_COLUMNS};
{MESSAGE_ROWS_INDEXES}
CREATE TABLE IF NOT EXISTS delivery_rows {DELIVERY_ROWS_COLUMNS};
{DELIVERY_ROWS_INDEXES}
CREATE TABLE IF NOT EXISTS llm_cache {LLM_CACHE_COLUMNS};
CREATE TABLE IF NOT EXISTS joins {JOINS_COLUMNS};
CREATE TABLE IF NOT EXISTS record_rows {RECORD_ROWS_COLUMNS};
{VIEWS}
CREATE TABLE IF NOT EXISTS texts (
    seq    INTEGER PRIMARY KEY,
    digest BLOB NOT NULL UNIQUE,
    kind   INTEGER NOT NULL,
    body   BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS dictionaries {DICTIONARIES_COLUMNS};
CREATE TABLE IF NOT EXISTS scores (
    label         TEXT NOT NULL,
    target_id     TEXT NOT NULL,
    model         TEXT NOT NULL,
    score         INTEGER NOT NULL,
    justification TEXT NOT NULL,
    template      TEXT NOT NULL,
    created_at    REAL NOT NULL,
    PRIMARY KEY (label, target_id, model)
);
CREATE TABLE IF NOT EXISTS contamination (
    question_id  TEXT NOT NULL,
    against      TEXT NOT NULL,
    benchmark_id TEXT NOT NULL,
    method       TEXT NOT NULL,
    score        REAL NOT NULL,
    PRIMARY KEY (question_id, against, benchmark_id, method)
);
CREATE TABLE IF NOT EXISTS reissues (
    question_id TEXT NOT NULL,
    task        TEXT NOT NULL,
    path        TEXT NOT NULL,
    round       INTEGER NOT NULL,
    max_tokens  INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (question_id, task, path)
);
CREATE TABLE IF NOT EXISTS calls (
    stage       TEXT NOT NULL,
    model       TEXT NOT NULL,
    endpoint    TEXT NOT NULL,
    outcome     TEXT NOT NULL,
    calls       INTEGER NOT NULL DEFAULT 0,
    prompt_tokens     INTEGER NOT NULL DEFAULT 0,
    completion_tokens INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (stage, model, endpoint, outcome)
);
"""
