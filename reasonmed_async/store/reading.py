"""Reading journal rows back into messages: each row's checksum verified, its texts rehydrated, decoded.

Every read of a stored message or cached completion goes through here, on the
connection's own thread: ``load_messages`` (synchronous, for the writer's join,
``reasonmed retry`` and the tests' own connections) and ``load`` (a connection
of aiosqlite's, for the store and the read-only report).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from typing import Any

import aiosqlite

from bus import Message, decode

from reasonmed_async.store.envelope import ENVELOPE_COLUMNS, whole
from reasonmed_async.store.integrity import verified
from reasonmed_async.store.lexicon import unsqueeze
from reasonmed_async.store.texts import Memo, Rehydrator

_FIRST = ("id", "payload", "checksum", "question_id", *ENVELOPE_COLUMNS[:3], ENVELOPE_COLUMNS[4])


def message_columns(table: str = "") -> str:
    """The first columns of every message query (of ``table``, an alias in a join): the rest are handed back
    beside the message.  The envelope's columns are among them: v5 rows store the payload without it."""
    return ", ".join(f"{table}.{c}" if table else c for c in _FIRST)


MESSAGE_COLUMNS = message_columns()
_N = len(_FIRST)


def stored_skeleton(row: Sequence[Any], db: sqlite3.Connection | None = None) -> bytes:
    """The whole skeleton of a row that starts with ``MESSAGE_COLUMNS`` (``store/lexicon.py``, ``store/envelope.py``;
    ``db``: the connection it was read from, whose trained dictionaries it may need, ``store/trained.py``)."""
    payload = row[1]
    if not isinstance(payload, bytes):
        return payload
    return whole(unsqueeze(payload, db), row[4], row[5], row[6], row[3], row[7])


def messages_of_rows(db: sqlite3.Connection, memo: Memo, where: object,
                     rows: Sequence[Sequence[Any]]) -> list[tuple[tuple[Any, ...], Message]]:
    """(the extra columns, the message) of rows that start with ``MESSAGE_COLUMNS``."""
    skeletons = [verified(where, "messages", r[0], stored_skeleton(r, db), r[2], r[3]) for r in rows]
    owners = [f"message {r[0]} of question {r[3]}" for r in rows]
    payloads = Rehydrator(db, memo, where).json_of(skeletons, owners)
    return [(tuple(r[_N:]), decode(p)) for r, p in zip(rows, payloads, strict=True)]


def load_messages(db: sqlite3.Connection, memo: Memo, where: object, sql: str,
                  params: Sequence[Any] = ()) -> list[tuple[tuple[Any, ...], Message]]:
    return messages_of_rows(db, memo, where, db.execute(sql, tuple(params)).fetchall())


def cached_payloads(db: sqlite3.Connection, memo: Memo, where: object,
                    rows: Sequence[Sequence[Any]]) -> list[tuple[str, bytes]]:
    """(key, the completion's JSON) of ``llm_cache`` rows (key, payload, checksum)."""
    skeletons = [verified(where, "llm_cache", key, unsqueeze(payload, db) if isinstance(payload, bytes) else payload,
                          checksum) for key, payload, checksum in rows]
    payloads = Rehydrator(db, memo, where).json_of(skeletons, [f"cached response {r[0]}" for r in rows])
    return [(r[0], p) for r, p in zip(rows, payloads, strict=True)]


async def load(conn: aiosqlite.Connection, memo: Memo, where: object, sql: str,
               params: Sequence[Any] = ()) -> list[tuple[tuple[Any, ...], Message]]:
    """``load_messages`` on an aiosqlite connection's thread (one hop for the query and its texts)."""
    return await conn._execute(load_messages, conn._conn, memo, where, sql, tuple(params))  # noqa: SLF001


def db_name(con: sqlite3.Connection) -> str:
    """The database's file name, as error messages name it."""
    return next((row[2] for row in con.execute("PRAGMA database_list") if row[1] == "main"), "database")


class DbName:
    """A connection's database file name (``db_name``), looked up only when an error message needs it."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __str__(self) -> str:
        return db_name(self._db)
