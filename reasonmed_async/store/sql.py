"""The SQL of a checkpoint batch: synchronous, run on a connection's own thread by ``Batcher``."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Sequence
from itertools import islice
from typing import Any

from bus import Ack, Message, Ranked, RecordReady, Routed, StageFailed, TierAssigned, Verdict
from bus.messages import SCHEMA_VERSION

from reasonmed_async.store.errors import StoreError
from reasonmed_async.store.integrity import CACHE_KEY, row_checksum
from reasonmed_async.store.envelope import compact, head
from reasonmed_async.store.coding import Coder
from reasonmed_async.store.reading import MESSAGE_COLUMNS, cached_payloads, db_name, load_messages
from reasonmed_async.store.splitting import Splitter
from reasonmed_async.store.texts import Memo, Pieces, store_pieces
from reasonmed_async.store.writer import Op

__all__ = ["StoreError", "apply_batch", "read_batch"]


_COUNT_CALLS = (  # a batch's calls, summed per (stage, model, endpoint, outcome): one row each
    "INSERT INTO calls(stage, model, endpoint, outcome, calls, prompt_tokens, completion_tokens)"
    " VALUES (?,?,?,?,?,?,?) ON CONFLICT DO UPDATE SET calls=calls+excluded.calls,"
    " prompt_tokens=prompt_tokens+excluded.prompt_tokens,"
    " completion_tokens=completion_tokens+excluded.completion_tokens"
)


#: the ``calls.outcome`` of a completion whose key the cache already held
DUPLICATE = "duplicate"


class _path:  # noqa: N801 - the database's file name, looked up only when an error message needs it
    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __str__(self) -> str:
        return db_name(self._db)


def _label(message: Message) -> str:
    if isinstance(message, TierAssigned):
        return message.tier
    if isinstance(message, Verdict):
        return f"{message.verdict}:{message.attempt}"
    if isinstance(message, StageFailed):  # a quality gate's rejection is not a stage failure
        return f"gate:{message.gate}" if message.gate is not None else message.stage.value
    if isinstance(message, Ranked):
        return message.ranker
    return ""


def apply_batch(db: sqlite3.Connection, batch: Sequence[Op], memo: Memo, splitter: Splitter,
                coder: Coder) -> list[Any]:
    """Every write operation of one batch, on the writer connection's thread, inside its transaction;
    the texts of every message and completion it stores go into ``texts`` once (``store/texts.py``), every
    row coded by ``coder`` (``store/coding.py``)."""
    coder.start(db)
    now = time.time()
    pieces: Pieces = {}
    results: list[Any] = [None] * len(batch)
    routed_by_op: list[tuple[int, Sequence[Routed], bool]] = []
    acks: list[Ack] = []
    cached: list[tuple[Any, ...]] = []
    counts: dict[tuple[str, str, str, str], list[int]] = {}
    for i, op in enumerate(batch):
        if op.kind == "commit":
            routed_by_op.append((i, op.args[0], op.args[2]))
            if op.args[1] is not None:
                acks.append(op.args[1])
        elif op.kind == "run":
            run, questions, routed = op.args
            db.execute(
                "INSERT INTO runs(id, input_path, input_digest, config_digest, config_json, questions, status,"
                " created_at) VALUES (:id, :input_path, :input_digest, :config_digest, :config_json, :questions,"
                " :status, :created_at)",
                {"status": "running", **run, "created_at": now},
            )
            _insert_questions(db, run["id"], questions)
            routed_by_op.append((i, routed, True))
        elif op.kind == "intake":  # the next batch of a run being ingested
            run_id, questions, routed, last = op.args
            _insert_questions(db, run_id, questions)
            if last:
                db.execute("UPDATE runs SET status='running' WHERE id=? AND status='ingesting'", (run_id,))
            routed_by_op.append((i, routed, True))
        elif op.kind == "cache":
            cached.append(op.args)
        elif op.kind == "call":
            stage, model, endpoint, outcome, prompt, completion = op.args
            _count(counts, (stage, model, endpoint, outcome), prompt, completion)
        elif op.kind == "join":
            results[i] = _join(db, memo, *op.args)
        elif op.kind == "sql":
            db.execute(*op.args)
        elif op.kind == "settle":  # a barrier: done once what was submitted before it commits
            pass
        elif op.kind == "finish":
            db.execute("UPDATE runs SET status='finished', finished_at=? WHERE id=?", (now, op.args[0]))
        else:
            raise ValueError(f"unknown store operation {op.kind!r}")
    if cached:  # first: a completion's texts are the coder's samples, also where a message of this batch quotes them
        _insert_cached(db, cached, now, pieces, splitter, coder, counts)
    for i, new in _insert_messages(db, routed_by_op, now, pieces, splitter, coder).items():
        results[i] = new
    store_pieces(db, pieces, splitter, coder)
    if counts:
        db.executemany(_COUNT_CALLS, [(*k, n, p, c) for k, (n, p, c) in counts.items()])
    if acks:
        db.executemany(
            "UPDATE deliveries SET state=? WHERE message_seq=(SELECT seq FROM messages WHERE id=?)"
            " AND consumer=? AND state='pending'",
            [("done" if a.ok else "failed", a.message_id, a.consumer) for a in acks],
        )
    coder.finish(db)
    return results

def _count(counts: dict[tuple[str, str, str, str], list[int]], key: tuple[str, str, str, str], prompt: int,
           completion: int) -> None:
    total = counts.get(key)
    if total is None:
        counts[key] = [1, prompt, completion]
    else:
        total[0] += 1
        total[1] += prompt
        total[2] += completion


def _insert_cached(db: sqlite3.Connection, cached: list[tuple[Any, ...]], now: float, pieces: Pieces,
                   splitter: Splitter, coder: Coder, counts: dict[tuple[str, str, str, str], list[int]]) -> None:
    """Completed calls: stored unless their key is (a second answer to a stored key — a router's retry, a
    call raced by a redelivery, a batch result imported twice — keeps the first: counted, never stored twice)."""
    binary = [bytes.fromhex(args[0]) for args in cached]  # the SHA-256 hex digest, stored as its 32 bytes
    seen = _existing(db, "SELECT key FROM llm_cache WHERE key IN ({})", list(set(binary)))
    rows = []
    known = len(pieces)
    for (key, model, payload, stage, endpoint, prompt, completion), stored_key in zip(cached, binary, strict=True):
        _count(counts, (stage, model, endpoint, DUPLICATE if stored_key in seen else "ok"), prompt, completion)
        if stored_key not in seen:
            seen.add(stored_key)
            skeleton = splitter.json(payload, pieces)
            rows.append((stored_key, model, coder.row("llm_cache", stored_key, skeleton), now, row_checksum(key, skeleton)))
    if rows:
        db.executemany("INSERT OR IGNORE INTO llm_cache(key, model, payload, created_at, checksum) VALUES (?,?,?,?,?)",
                       rows)
    coder.answers(islice(pieces, known, None))  # the texts the completions brought: what the coder trains on


def _existing(db: sqlite3.Connection, sql: str, keys: list[Any]) -> set[Any]:
    """Which of ``keys`` a one-column query ``sql`` (``... IN ({})``) finds, 500 at a time."""
    found: set[Any] = set()
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found.update(r[0] for r in db.execute(sql.format(",".join("?" * len(chunk))), chunk))
    return found


def _insert_questions(db: sqlite3.Connection, run_id: str, questions: Sequence[tuple[str, int, str]]) -> None:
    db.executemany("INSERT OR IGNORE INTO questions(run_id, id, ordinal, source) VALUES (?,?,?,?)",
                   [(run_id, qid, ordinal, source) for qid, ordinal, source in questions])


def _insert_messages(
    db: sqlite3.Connection, routed_by_op: list[tuple[int, Sequence[Routed], bool]], now: float, pieces: Pieces,
    splitter: Splitter, coder: Coder,
) -> dict[int, list[Routed]]:
    ids_by_op = [[r.message.id for r in routed] for _, routed, _ in routed_by_op]  # (an id is a hash: once)
    existing = _existing(db, "SELECT id FROM messages WHERE id IN ({})", list({i for ids in ids_by_op for i in ids}))
    message_rows, delivery_rows, record_rows = [], [], []
    new_by_op: dict[int, list[Routed]] = {}
    seq = _last_seq(db, "messages")  # each new row's seq is given here, so its deliveries can name it
    for (i, routed, intake), ids in zip(routed_by_op, ids_by_op, strict=True):
        new: list[Routed] = []
        for r, mid in zip(routed, ids, strict=True):
            m = r.message
            if mid in existing:
                continue
            existing.add(mid)
            new.append(r)
            skeleton = splitter.message(m, SCHEMA_VERSION, pieces)
            name = type(m).__name__  # the checksum covers the whole skeleton; the row keeps it less its envelope,
            # coded (store/coding.py)
            seq += 1
            payload = coder.row("messages", seq, compact(skeleton, head(SCHEMA_VERSION, name, m.run_id, m.question_id,
                                                                        m.parent_id)), sample=not intake)
            message_rows.append((seq, mid, m.run_id, m.question_id, name, _label(m), m.parent_id,
                                 SCHEMA_VERSION, payload, now, row_checksum(mid, skeleton)))
            delivery_rows.extend((seq, c, int(intake)) for c in r.consumers)
            if isinstance(m, RecordReady):
                record_rows.append((m.record_id, m.run_id, m.question_id, m.question.ordinal, m.path.name, mid))
        new_by_op[i] = new
    if message_rows:
        db.executemany(
            "INSERT INTO messages(seq, id, run_id, question_id, type, label, parent_id, schema_version, payload,"
            " created_at, checksum) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            message_rows,
        )
    if delivery_rows:
        db.executemany(
            "INSERT OR IGNORE INTO deliveries(message_seq, consumer, intake) VALUES (?,?,?)",
            delivery_rows
        )
    if record_rows:
        db.executemany(
            "INSERT OR IGNORE INTO records(record_id, run_id, question_id, ordinal, path, message_id) VALUES (?,?,?,?,?,?)",
            record_rows,
        )
    return new_by_op

def _last_seq(db: sqlite3.Connection, table: str) -> int:
    """The largest seq ``table`` has ever given (AUTOINCREMENT's: a seq is never given twice, even once deleted)."""
    (last,) = db.execute(f"SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name=?), 0),"
                         f" coalesce((SELECT max(seq) FROM {table}), 0))", (table,)).fetchone()
    return int(last)


def _join(db: sqlite3.Connection, memo: Memo, key: str, item_id: str, message_id: str, expected: int,
          held: dict[str, str] | None = None) -> list[tuple[str, Message | None]] | None:
    """Add an item; once ``expected`` are there, (item id, message) of each, by item id.  ``held`` (item id ->
    message id): the items the caller holds, answered with None when the journal has that very message (a
    held item the journal does not have, or has as another message, is read back like the others)."""
    db.execute("INSERT OR IGNORE INTO joins(key, item_id, message_id) VALUES (?,?,?)", (key, item_id, message_id))
    (count,) = db.execute("SELECT COUNT(*) FROM joins WHERE key=?", (key,)).fetchone()
    if count < expected:
        return None
    rows = db.execute("SELECT j.item_id, j.message_id FROM joins j JOIN messages m ON m.id = j.message_id"
                      " WHERE j.key=? ORDER BY j.item_id", (key,)).fetchall()
    if len(rows) < count:
        raise StoreError(f"join {key}: {count - len(rows)} item(s) are not in the journal")
    held = held or {}
    wanted = [mid for iid, mid in rows if held.get(iid) != mid]
    read: dict[str, Message] = {}
    if wanted:
        marks = ",".join("?" * len(wanted))
        read = {mid: m for (mid,), m in load_messages(db, memo, _path(db), f"SELECT {MESSAGE_COLUMNS}, id FROM messages"
                                                      f" WHERE id IN ({marks})", wanted)}
    return [(iid, None if held.get(iid) == mid else read[mid]) for iid, mid in rows]

def read_batch(db: sqlite3.Connection, batch: Sequence[Op], memo: Memo) -> list[Any]:
    """Cache look-ups, many keys per query."""
    keys = list({bytes.fromhex(op.args[0]) for op in batch})  # the SHA-256 hex digest, stored as its 32 bytes
    found: dict[str, bytes] = {}
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = db.execute(f"SELECT {CACHE_KEY}, payload, checksum FROM llm_cache"
                          f" WHERE key IN ({','.join('?' * len(chunk))})", chunk).fetchall()
        found.update(cached_payloads(db, memo, _path(db), rows))
    return [found.get(op.args[0]) for op in batch]
