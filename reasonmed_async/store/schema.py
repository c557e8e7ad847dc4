"""The SQLite schema of a checkpoint database, and its version."""

from __future__ import annotations

STORE_SCHEMA_VERSION = 7
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

#: the columns of ``records`` (v3: keyed by run, so each run keeps its records); the migration builds it too
RECORDS_COLUMNS = """(
    record_id   TEXT NOT NULL,
    run_id      TEXT NOT NULL,
    question_id TEXT NOT NULL,
    ordinal     INTEGER NOT NULL,
    path        TEXT NOT NULL,
    message_id  TEXT NOT NULL,
    PRIMARY KEY (run_id, record_id)
)"""

#: the columns of ``deliveries`` (v6: a delivery names its message by ``messages.seq``, so its key grows at its
#: end as messages are written; v7: keyed by (message_seq, consumer) itself, WITHOUT ROWID: a delivery's own seq
#: and its unique index are gone — a consumer's deliveries are made with their messages, so message order is the
#: order they had — and so is ``updated_at``, which nothing read); the migration builds it too
DELIVERIES_COLUMNS = """(
    message_seq INTEGER NOT NULL,
    consumer    TEXT NOT NULL,
    state       TEXT NOT NULL DEFAULT 'pending',
    intake      INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (message_seq, consumer)
) WITHOUT ROWID"""

#: the columns of ``llm_cache`` (v4: the key as 32 bytes; a rowid table, so rows are appended in the order they
#: are paid for and pages stay full: keyed WITHOUT ROWID by a random digest measured the same bytes at 84 % page
#: fill instead of 96 %); the migration builds it too
LLM_CACHE_COLUMNS = """(
    key        BLOB NOT NULL UNIQUE,
    model      TEXT NOT NULL,
    payload    BLOB NOT NULL,
    created_at REAL NOT NULL,
    checksum   INTEGER
)"""

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
CREATE TABLE IF NOT EXISTS messages (
    seq            INTEGER PRIMARY KEY AUTOINCREMENT,
    id             TEXT NOT NULL UNIQUE,
    run_id         TEXT NOT NULL,
    question_id    TEXT NOT NULL,
    type           TEXT NOT NULL,
    label          TEXT NOT NULL DEFAULT '',
    parent_id      TEXT NOT NULL,
    schema_version INTEGER NOT NULL,
    payload        BLOB NOT NULL,
    created_at     REAL NOT NULL,
    checksum       INTEGER
);
CREATE INDEX IF NOT EXISTS messages_of_type ON messages (type);
CREATE INDEX IF NOT EXISTS messages_by_question ON messages (question_id);
CREATE TABLE IF NOT EXISTS deliveries {DELIVERIES_COLUMNS};
CREATE INDEX IF NOT EXISTS deliveries_pending ON deliveries (consumer, message_seq) WHERE state = 'pending';
CREATE TABLE IF NOT EXISTS llm_cache {LLM_CACHE_COLUMNS};
CREATE TABLE IF NOT EXISTS joins (
    key        TEXT NOT NULL,
    item_id    TEXT NOT NULL,
    message_id TEXT NOT NULL,
    PRIMARY KEY (key, item_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records {RECORDS_COLUMNS};
CREATE INDEX IF NOT EXISTS records_by_run ON records (run_id, ordinal, path);
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
