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
from reasonmed_async.store.cache_key import CACHE_KEY, split_key
from reasonmed_async.store.integrity import row_checksum
from reasonmed_async.store.envelope import compact, head
from reasonmed_async.store.coding import Coder
from reasonmed_async.store.join_writes import join_item
from reasonmed_async.store.names import DONE, FAILED, PENDING, id_bytes
from reasonmed_async.store.reading import DbName, cached_payloads
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
    now_ms = int(now * 1000)
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
            results[i] = join_item(db, memo, coder.names, coder.joins, *op.args)
        elif op.kind == "sql":
            db.execute(*op.args)
            coder.seqs.last = None  # (whatever it wrote, the next message's seq is asked of the table)
        elif op.kind == "settle":  # a barrier: done once what was submitted before it commits
            pass
        elif op.kind == "finish":
            db.execute("UPDATE runs SET status='finished', finished_at=? WHERE id=?", (now, op.args[0]))
        else:
            raise ValueError(f"unknown store operation {op.kind!r}")
    if cached:  # first: a completion's texts are the coder's samples, also where a message of this batch quotes them
        _insert_cached(db, cached, now_ms, pieces, splitter, coder, counts)
    for i, new in _insert_messages(db, routed_by_op, now_ms, pieces, splitter, coder).items():
        results[i] = new
    store_pieces(db, pieces, splitter, coder)
    if counts:
        db.executemany(_COUNT_CALLS, [(*k, n, p, c) for k, (n, p, c) in counts.items()])
    if acks:
        _acknowledge(db, acks, coder)
    coder.finish(db)
    return results

def _acknowledge(db: sqlite3.Connection, acks: list[Ack], coder: Coder) -> None:
    """Each acknowledged delivery done (or failed), found by its message's seq where this writer stored the
    message lately (``RecentSeqs``: nearly always), else by its message's id."""
    recent, codes, code = coder.seqs, coder.names.codes, coder.names.code
    by_seq, by_id = [], []
    for a in acks:
        stored = id_bytes(a.message_id)
        seq = recent.get(stored)
        row = (DONE if a.ok else FAILED, stored if seq is None else seq, codes.get(a.consumer) or code(db, a.consumer))
        (by_id if seq is None else by_seq).append(row)
    if by_seq:
        db.executemany(f"UPDATE delivery_rows SET state=? WHERE message_seq=? AND consumer=? AND state={PENDING}",
                       by_seq)
    if by_id:
        db.executemany("UPDATE delivery_rows SET state=? WHERE message_seq=(SELECT seq FROM message_rows WHERE id=?)"
                       f" AND consumer=? AND state={PENDING}", by_id)


def _count(counts: dict[tuple[str, str, str, str], list[int]], key: tuple[str, str, str, str], prompt: int,
           completion: int) -> None:
    total = counts.get(key)
    if total is None:
        counts[key] = [1, prompt, completion]
    else:
        total[0] += 1
        total[1] += prompt
        total[2] += completion


def _insert_cached(db: sqlite3.Connection, cached: list[tuple[Any, ...]], now_ms: int, pieces: Pieces,
                   splitter: Splitter, coder: Coder, counts: dict[tuple[str, str, str, str], list[int]]) -> None:
    """Completed calls: stored unless their key is (a second answer to a stored key — a router's retry, a
    call raced by a redelivery, a batch result imported twice — keeps the first: counted, never stored twice).
    A key whose first 8 bytes a stored key of another call has (a SHA-256 prefix collision: never seen) is not
    stored: a look-up of it is a miss, never the other call's answer (``cache_key.py``)."""
    split = [split_key(args[0]) for args in cached]
    seen = {(k, r) for k, r in _existing_rows(db, "SELECT key, rest FROM llm_cache WHERE key IN ({})",
                                              list({k for k, _ in split}))}
    rows = []
    known = len(pieces)
    names = coder.names
    for (key, model, payload, stage, endpoint, prompt, completion), stored in zip(cached, split, strict=True):
        _count(counts, (stage, model, endpoint, DUPLICATE if stored in seen else "ok"), prompt, completion)
        if stored not in seen:
            seen.add(stored)
            skeleton = splitter.json(payload, pieces)
            rows.append((*stored, names.code(db, model), now_ms, row_checksum(key, skeleton),
                         coder.row("llm_cache", stored[0], skeleton)))
    if rows:
        db.executemany("INSERT OR IGNORE INTO llm_cache(key, rest, model, created_ms, checksum, payload)"
                       " VALUES (?,?,?,?,?,?)", rows)
    coder.answers(islice(pieces, known, None))  # the texts the completions brought: what the coder trains on


def _existing(db: sqlite3.Connection, sql: str, keys: list[Any]) -> set[Any]:
    """Which of ``keys`` a one-column query ``sql`` (``... IN ({})``) finds, 500 at a time."""
    return {r[0] for r in _existing_rows(db, sql, keys)}


def _existing_rows(db: sqlite3.Connection, sql: str, keys: list[Any]) -> list[tuple[Any, ...]]:
    """The rows a query ``sql`` (``... IN ({})``) finds for ``keys``, 500 at a time."""
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        found.extend(db.execute(sql.format(",".join("?" * len(chunk))), chunk))
    return found


def _insert_questions(db: sqlite3.Connection, run_id: str, questions: Sequence[tuple[str, int, str]]) -> None:
    db.executemany("INSERT OR IGNORE INTO questions(run_id, id, ordinal, source) VALUES (?,?,?,?)",
                   [(run_id, qid, ordinal, source) for qid, ordinal, source in questions])


def _insert_messages(
    db: sqlite3.Connection, routed_by_op: list[tuple[int, Sequence[Routed], bool]], now_ms: int, pieces: Pieces,
    splitter: Splitter, coder: Coder,
) -> dict[int, list[Routed]]:
    ids_by_op = [[id_bytes(r.message.id) for r in routed] for _, routed, _ in routed_by_op]  # (a hash: once)
    recent = coder.seqs  # a row names its parent by seq (v8): those stored last are known, the others looked up
    wanted = {i for ids in ids_by_op for i in ids}
    for _, routed, _ in routed_by_op:
        wanted.update(p for r in routed if (p := id_bytes(r.message.parent_id)) and recent.get(p) is None)
    # the seq of every stored message among the new ones (stored already: not again), and of those parents
    seq_of: dict[bytes | str, int] = dict(_existing_rows(db, "SELECT id, seq FROM message_rows WHERE id IN ({})",
                                                         list(wanted)))
    codes, code = coder.names.codes, coder.names.code
    message_rows, delivery_rows, record_rows = [], [], []
    new_by_op: dict[int, list[Routed]] = {}
    # each new row's seq is given here, so its deliveries can name it (the last one given is remembered)
    seq = recent.last if recent.last is not None else _last_seq(db, "message_rows")
    for (i, routed, intake), ids in zip(routed_by_op, ids_by_op, strict=True):
        new: list[Routed] = []
        for r, stored_id in zip(routed, ids, strict=True):
            m = r.message
            if stored_id in seq_of:
                continue
            new.append(r)
            skeleton = splitter.message(m, SCHEMA_VERSION, pieces)
            name = type(m).__name__  # the checksum covers the whole skeleton; the row keeps it less its envelope,
            # coded (store/coding.py)
            seq += 1
            seq_of[stored_id] = seq
            recent.put(stored_id, seq)
            parent = id_bytes(m.parent_id)
            parent = seq_of.get(parent) or recent.get(parent) or parent
            label = _label(m)
            payload = coder.row("messages", seq, compact(skeleton, head(SCHEMA_VERSION, name, m.run_id, m.question_id,
                                                                        m.parent_id)), sample=not intake)
            message_rows.append((seq, stored_id, codes.get(m.run_id) or code(db, m.run_id),
                                 codes.get(m.question_id) or code(db, m.question_id), codes.get(name) or code(db, name),
                                 codes.get(label) or code(db, label), parent, SCHEMA_VERSION, now_ms,
                                 row_checksum(m.id, skeleton), payload))
            delivery_rows.extend((seq, codes.get(c) or code(db, c), int(intake)) for c in r.consumers)
            if isinstance(m, RecordReady):  # (its record id is "<question id>/<path>": stored only where it is not)
                path = m.path.name
                record_rows.append((code(db, m.run_id), code(db, m.question_id), code(db, path), m.question.ordinal,
                                    stored_id, None if m.record_id == f"{m.question_id}/{path}" else m.record_id))
        new_by_op[i] = new
    recent.last = seq
    if message_rows:
        db.executemany(
            "INSERT INTO message_rows(seq, id, run, question, type, label, parent, schema_version, created_ms,"
            " checksum, payload) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
            message_rows,
        )
    if delivery_rows:
        db.executemany(
            "INSERT OR IGNORE INTO delivery_rows(message_seq, consumer, intake) VALUES (?,?,?)",
            delivery_rows
        )
    if record_rows:
        db.executemany(
            "INSERT OR IGNORE INTO record_rows(run, question, path, ordinal, message_id, record_id) VALUES (?,?,?,?,?,?)",
            record_rows,
        )
    return new_by_op


def _last_seq(db: sqlite3.Connection, table: str) -> int:
    """The largest seq ``table`` has ever given (AUTOINCREMENT's: a seq is never given twice, even once deleted)."""
    (last,) = db.execute(f"SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name=?), 0),"
                         f" coalesce((SELECT max(seq) FROM {table}), 0))", (table,)).fetchone()
    return int(last)


def read_batch(db: sqlite3.Connection, batch: Sequence[Op], memo: Memo) -> list[Any]:
    """Cache look-ups, many keys per query."""
    keys = list({split_key(op.args[0])[0] for op in batch})  # the rowid: the SHA-256's first 8 bytes
    found: dict[str, bytes] = {}  # (by the whole key: a row of another key with the same first 8 bytes is a miss)
    for start in range(0, len(keys), 500):
        chunk = keys[start : start + 500]
        rows = db.execute(f"SELECT {CACHE_KEY}, payload, checksum FROM llm_cache"
                          f" WHERE key IN ({','.join('?' * len(chunk))})", chunk).fetchall()
        found.update(cached_payloads(db, memo, DbName(db), rows))
    return [found.get(op.args[0]) for op in batch]
