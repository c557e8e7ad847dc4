"""The SQLite checkpoint store: the bus's journal, the tierer's join, the LLM response cache.

One writer connection (group commit, see ``writer.py``) and one reader
connection, both in WAL mode.  Everything the pipeline needs to resume after a
crash at any instant lives here.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import aiosqlite

from bus import Ack, Backlog, Message, RecordReady, Routed, StageFailed, TierAssigned, Verdict, decode, encode
from bus.messages import SCHEMA_VERSION

from .bloom import KeyBloom
from .schema import DDL, STORE_SCHEMA_VERSION
from .writer import Batcher, Op

PAGE = 256
_COUNT_CALL = (
    "INSERT INTO calls(stage, model, endpoint, outcome, calls, prompt_tokens, completion_tokens)"
    " VALUES (?,?,?,?,1,?,?) ON CONFLICT DO UPDATE SET calls=calls+1,"
    " prompt_tokens=prompt_tokens+excluded.prompt_tokens,"
    " completion_tokens=completion_tokens+excluded.completion_tokens"
)


class StoreError(RuntimeError):
    """The database cannot be used as a checkpoint store (wrong schema, not ours)."""


def _label(message: Message) -> str:
    if isinstance(message, TierAssigned):
        return message.tier
    if isinstance(message, Verdict):
        return f"{message.verdict}:{message.attempt}"
    if isinstance(message, StageFailed):
        return message.stage
    return ""


class CheckpointStore:
    def __init__(self, path: Path, writer: aiosqlite.Connection, reader: aiosqlite.Connection) -> None:
        self.path = path
        self._db = writer
        self._ro = reader
        self._committer = Batcher(writer, self._apply, transaction=True, name="store-writer")
        self._reader = Batcher(reader, self._read, transaction=False, name="store-reader")
        self._cached = KeyBloom()

    # -- lifecycle ------------------------------------------------------------
    @classmethod
    async def open(cls, path: str | Path, *, synchronous: str = "NORMAL") -> CheckpointStore:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = await aiosqlite.connect(path, isolation_level=None)
        try:
            await writer.execute("PRAGMA journal_mode=WAL")
            await writer.execute(f"PRAGMA synchronous={synchronous}")
            # Checkpoint the WAL every ~40 MB instead of 4 MB: pages rewritten between checkpoints are
            # copied into the database once, not once per 4 MB (about 20 % less CPU per commit, measured).
            await writer.execute("PRAGMA wal_autocheckpoint=10000")
            await writer.execute("PRAGMA busy_timeout=10000")
            await writer.executescript(DDL)
            await cls._check_version(writer, path)
            reader = await aiosqlite.connect(path, isolation_level=None)
            await reader.execute("PRAGMA busy_timeout=10000")
        except BaseException:
            await writer.close()
            raise
        store = cls(path, writer, reader)
        await store._load_cache_keys()
        store._committer.start()
        store._reader.start()
        return store

    async def _load_cache_keys(self) -> None:
        async with self._ro.execute("SELECT key FROM llm_cache") as cur:
            while rows := await cur.fetchmany(4096):
                for (key,) in rows:
                    self._cached.add(key)

    @staticmethod
    async def _check_version(db: aiosqlite.Connection, path: Path) -> None:
        async with db.execute("SELECT value FROM meta WHERE key='schema_version'") as cur:
            row = await cur.fetchone()
        if row is None:
            await db.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(STORE_SCHEMA_VERSION),))
        elif int(row[0]) != STORE_SCHEMA_VERSION:
            raise StoreError(f"{path}: store schema v{row[0]}, this build reads v{STORE_SCHEMA_VERSION}")

    async def close(self) -> None:
        try:
            await self._committer.close()
            await self._reader.close()
        finally:
            await self._ro.close()
            await self._db.close()

    async def __aenter__(self) -> CheckpointStore:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    # -- journal (the bus's seam) ----------------------------------------------
    async def commit(self, outputs: Sequence[Routed], ack: Ack | None = None, *, intake: bool = False) -> list[Routed]:
        return await self._committer.submit("commit", tuple(outputs), ack, intake)

    async def backlog(self) -> Backlog:
        async with self._ro.execute(
            "SELECT consumer, COUNT(*), MAX(seq) FROM deliveries WHERE state='pending' GROUP BY consumer"
        ) as cur:
            rows = await cur.fetchall()
        return Backlog(counts={r[0]: r[1] for r in rows}, watermark=max((r[2] for r in rows), default=0))

    async def pending(
        self, consumer: str, watermark: int | None, *, after: int = 0, intake_only: bool = False
    ) -> AsyncIterator[tuple[int, Message]]:
        upper = 2**62 if watermark is None else watermark
        where = " AND d.intake=1" if intake_only else ""
        while True:
            async with self._ro.execute(
                "SELECT d.seq, m.payload FROM deliveries d JOIN messages m ON m.id = d.message_id "
                f"WHERE d.consumer=? AND d.state='pending' AND d.seq>? AND d.seq<=?{where} ORDER BY d.seq LIMIT ?",
                (consumer, after, upper, PAGE),
            ) as cur:
                rows = await cur.fetchall()
            if not rows:
                return
            for seq, payload in rows:
                after = seq
                yield seq, decode(payload)

    # -- the tierer's join -----------------------------------------------------
    async def gather(self, key: str, item_id: str, item: Message, expected: int) -> list[Message] | None:
        """Add ``item`` under ``key`` (once per ``item_id``); once ``expected`` are there, return them all.

        Items are messages the journal already holds (the bus delivers nothing
        else), so the join keeps their ids, not copies."""
        rows = await self._committer.submit("join", key, item_id, item.id, expected)
        return None if rows is None else [decode(p) for p in rows]

    # -- LLM response cache ----------------------------------------------------
    async def cache_get(self, key: str) -> bytes | None:
        if not self._cached.might_contain(key):
            return None  # never stored: no read needed
        return await self._reader.submit("get", key)

    async def cache_put(self, key: str, model: str, payload: bytes, stage: str, endpoint: str,
                        prompt: int = 0, completion: int = 0) -> None:
        """Store a completed call and count it, in the next group commit (awaited)."""
        await self._committer.submit("cache", key, model, payload, stage, endpoint, prompt, completion)
        self._cached.add(key)

    async def count_call(self, stage: str, model: str, endpoint: str, outcome: str, prompt: int, completion: int) -> None:
        await self._committer.submit("call", stage, model, endpoint, outcome, prompt, completion)

    # -- runs and intake -------------------------------------------------------
    async def create_run(
        self, run: dict[str, Any], questions: Sequence[tuple[str, int, str]], routed: Sequence[Routed]
    ) -> list[Routed]:
        """Insert a run, its questions and their first messages (as intake) in one transaction."""
        return await self._committer.submit("run", run, tuple(questions), tuple(routed))

    async def execute(self, sql: str, params: Sequence[Any] = ()) -> None:
        """One write of the application's own (scores), committed with the next group commit."""
        await self._committer.submit("sql", sql, tuple(params))

    async def finish_run(self, run_id: str) -> None:
        await self._committer.submit("finish", run_id)

    # -- applying a batch (on the writer connection's thread, inside BEGIN) -----
    def _apply(self, db: sqlite3.Connection, batch: Sequence[Op]) -> list[Any]:
        now = time.time()
        results: list[Any] = [None] * len(batch)
        routed_by_op: list[tuple[int, Sequence[Routed], bool]] = []
        acks: list[Ack] = []
        for i, op in enumerate(batch):
            if op.kind == "commit":
                routed_by_op.append((i, op.args[0], op.args[2]))
                if op.args[1] is not None:
                    acks.append(op.args[1])
            elif op.kind == "run":
                run, questions, routed = op.args
                db.execute(
                    "INSERT INTO runs(id, input_path, input_digest, config_digest, config_json, questions, created_at)"
                    " VALUES (:id, :input_path, :input_digest, :config_digest, :config_json, :questions, :created_at)",
                    {**run, "created_at": now},
                )
                db.executemany(
                    "INSERT OR IGNORE INTO questions(run_id, id, ordinal, source) VALUES (?,?,?,?)",
                    [(run["id"], qid, ordinal, source) for qid, ordinal, source in questions],
                )
                routed_by_op.append((i, routed, True))
            elif op.kind == "cache":
                key, model, payload, stage, endpoint, prompt, completion = op.args
                db.execute(
                    "INSERT OR REPLACE INTO llm_cache(key, model, payload, created_at) VALUES (?,?,?,?)",
                    (key, model, payload, now),
                )
                db.execute(_COUNT_CALL, (stage, model, endpoint, "ok", prompt, completion))
            elif op.kind == "call":
                db.execute(_COUNT_CALL, op.args)
            elif op.kind == "join":
                results[i] = self._join(db, *op.args)
            elif op.kind == "sql":
                db.execute(*op.args)
            elif op.kind == "finish":
                db.execute("UPDATE runs SET status='finished', finished_at=? WHERE id=?", (now, op.args[0]))
            else:
                raise ValueError(f"unknown store operation {op.kind!r}")
        for i, new in self._insert_messages(db, routed_by_op, now).items():
            results[i] = new
        if acks:
            db.executemany(
                "UPDATE deliveries SET state=?, updated_at=? WHERE message_id=? AND consumer=? AND state='pending'",
                [("done" if a.ok else "failed", now, a.message_id, a.consumer) for a in acks],
            )
        return results

    @staticmethod
    def _insert_messages(
        db: sqlite3.Connection, routed_by_op: list[tuple[int, Sequence[Routed], bool]], now: float
    ) -> dict[int, list[Routed]]:
        ids = list({r.message.id for _, routed, _ in routed_by_op for r in routed})
        existing: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            rows = db.execute(f"SELECT id FROM messages WHERE id IN ({','.join('?' * len(chunk))})", chunk)
            existing.update(r[0] for r in rows)
        message_rows, delivery_rows, record_rows = [], [], []
        new_by_op: dict[int, list[Routed]] = {}
        for i, routed, intake in routed_by_op:
            new: list[Routed] = []
            for r in routed:
                m = r.message
                mid = m.id
                if mid in existing:
                    continue
                existing.add(mid)
                new.append(r)
                message_rows.append(
                    (mid, m.run_id, m.question_id, type(m).__name__, _label(m), m.parent_id, SCHEMA_VERSION, encode(m), now)
                )
                delivery_rows.extend((mid, c, int(intake), now) for c in r.consumers)
                if isinstance(m, RecordReady):
                    record_rows.append((m.record_id, m.run_id, m.question_id, m.question.ordinal, m.path.name, mid))
            new_by_op[i] = new
        if message_rows:
            db.executemany(
                "INSERT INTO messages(id, run_id, question_id, type, label, parent_id, schema_version, payload, created_at)"
                " VALUES (?,?,?,?,?,?,?,?,?)",
                message_rows,
            )
        if delivery_rows:
            db.executemany(
                "INSERT OR IGNORE INTO deliveries(message_id, consumer, intake, updated_at) VALUES (?,?,?,?)", delivery_rows
            )
        if record_rows:
            db.executemany(
                "INSERT OR IGNORE INTO records(record_id, run_id, question_id, ordinal, path, message_id) VALUES (?,?,?,?,?,?)",
                record_rows,
            )
        return new_by_op

    @staticmethod
    def _join(db: sqlite3.Connection, key: str, item_id: str, message_id: str, expected: int) -> list[bytes] | None:
        db.execute("INSERT OR IGNORE INTO joins(key, item_id, message_id) VALUES (?,?,?)", (key, item_id, message_id))
        (count,) = db.execute("SELECT COUNT(*) FROM joins WHERE key=?", (key,)).fetchone()
        if count < expected:
            return None
        rows = db.execute(
            "SELECT m.payload FROM joins j JOIN messages m ON m.id = j.message_id WHERE j.key=? ORDER BY j.item_id", (key,)
        ).fetchall()
        if len(rows) < count:
            raise StoreError(f"join {key}: {count - len(rows)} item(s) are not in the journal")
        return [r[0] for r in rows]

    @staticmethod
    def _read(db: sqlite3.Connection, batch: Sequence[Op]) -> list[Any]:
        """Cache look-ups, many keys per query."""
        keys = list({op.args[0] for op in batch})
        found: dict[str, bytes] = {}
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            rows = db.execute(f"SELECT key, payload FROM llm_cache WHERE key IN ({','.join('?' * len(chunk))})", chunk)
            found.update(rows)
        return [found.get(op.args[0]) for op in batch]

    # -- reads -----------------------------------------------------------------
    async def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        async with self._ro.execute(sql, params) as cur:
            return list(await cur.fetchall())

    async def messages_of(self, run_id: str, types: Sequence[str]) -> AsyncIterator[Message]:
        marks = ",".join("?" * len(types))
        after = 0
        while True:
            rows = await self.query(
                f"SELECT seq, payload FROM messages WHERE run_id=? AND type IN ({marks}) AND seq>? ORDER BY seq LIMIT ?",
                (run_id, *types, after, PAGE * 4),
            )
            if not rows:
                return
            for seq, payload in rows:
                after = seq
                yield decode(payload)
