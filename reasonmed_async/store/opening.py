"""Opening a checkpoint database: connections, the file's identity, the schema version, the WAL guard."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path
from urllib.parse import quote

import aiosqlite
import structlog

from bus.messages import SCHEMA_VERSION as MESSAGE_SCHEMA_VERSION

from reasonmed_async.store.errors import DamageError, StoreError
from reasonmed_async.store.migration import upgrade
from reasonmed_async.store.schema import DDL, STORE_SCHEMA_VERSION

log = structlog.get_logger("store")


async def connect(path: Path, *, read_only: bool, opened: list[aiosqlite.Connection],
                  synchronous: str | None = None) -> aiosqlite.Connection:
    """A connection (added to ``opened`` at once, so the caller closes it whatever happens next)."""
    if read_only:
        if not path.is_file():
            raise StoreError(f"{path}: no such database")
        conn = await aiosqlite.connect(f"file:{quote(str(path.resolve()))}?mode=ro", uri=True, isolation_level=None)
    else:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = await aiosqlite.connect(path, isolation_level=None)
    opened.append(conn)
    await conn.execute("PRAGMA busy_timeout=10000")
    if synchronous is not None:  # the writer
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA synchronous={synchronous}")
        # Checkpoint the WAL every ~40 MB instead of 4 MB: pages rewritten between checkpoints are
        # copied into the database once, not once per 4 MB (about 20 % less CPU per commit, measured).
        await conn.execute("PRAGMA wal_autocheckpoint=10000")
    return conn


def database_error(path: Path, exc: sqlite3.DatabaseError) -> StoreError:
    """SQLite's error on opening, as a line: not a database (exit 2), damaged (exit 5), or other."""
    name = getattr(exc, "sqlite_errorname", "")
    if name == "SQLITE_NOTADB":
        return StoreError(f"{path}: not an SQLite database (is --db the right file?)")
    if name == "SQLITE_CORRUPT":
        return DamageError(f"{path}: the database is damaged ({exc}); `reasonmed check --db {path}` tells more")
    return StoreError(f"{path}: cannot open the database: {exc}")


async def _scalar(conn: aiosqlite.Connection, sql: str) -> object:
    async with conn.execute(sql) as cur:
        row = await cur.fetchone()
    return None if row is None else row[0]


async def check_schema(conn: aiosqlite.Connection, path: Path, *, writable: bool) -> None:
    """Refuse a database that is not ours or of a newer version; create (writable) or migrate (v1-v7 -> v8)."""
    tables = {r[0] for r in await conn.execute_fetchall("SELECT name FROM sqlite_master WHERE type='table'")}
    if tables and "meta" not in tables:
        raise StoreError(f"{path}: an SQLite database, but not a reasonmed checkpoint database")
    if not tables and not writable:
        raise StoreError(f"{path}: an empty database, not a reasonmed checkpoint database")
    version = None if not tables else await _scalar(conn, "SELECT value FROM meta WHERE key='schema_version'")
    if version is not None and int(str(version)) > STORE_SCHEMA_VERSION:
        raise StoreError(f"{path}: store schema v{version} is newer than this build's v{STORE_SCHEMA_VERSION}:"
                         " use a newer reasonmed")
    if "messages" in tables or "message_rows" in tables:  # (v8: ``messages`` is a view of ``message_rows``)
        await check_message_format(conn, path)
    if version is not None and int(str(version)) < STORE_SCHEMA_VERSION:
        if not writable:
            raise StoreError(f"{path}: store schema v{version}, this build reads v{STORE_SCHEMA_VERSION}:"
                             f" `reasonmed migrate --db {path}` upgrades it")
        await migrate(conn, int(str(version)), path)
        return
    if writable:
        await conn.executescript(DDL)
        if version is None:
            await conn.execute("INSERT INTO meta(key, value) VALUES ('schema_version', ?)", (str(STORE_SCHEMA_VERSION),))


async def check_message_format(conn: aiosqlite.Connection, path: Path) -> None:
    """The message format of the oldest and the newest message (cheap: by rowid).

    v1 wrote failures as a reason text that v2 cannot decode into typed fields, and guessing the kind from
    the text is what v2 is there to stop, so a v1 database is refused, naming both versions, never half-read.
    """
    rows = await conn.execute_fetchall("SELECT schema_version FROM messages WHERE seq IN"
                                       " ((SELECT MIN(seq) FROM messages), (SELECT MAX(seq) FROM messages))")
    other = sorted({int(r[0]) for r in rows} - {MESSAGE_SCHEMA_VERSION})
    if other:
        raise StoreError(f"{path}: holds messages of schema v{other[0]}, this build reads v{MESSAGE_SCHEMA_VERSION}:"
                         " export or finish it with the release that wrote it")


async def migrate(conn: aiosqlite.Connection, version: int, path: Path) -> None:
    """v1 ... v7 -> v8 in one transaction (``store/migration.py``): checksums, each text stored once, records
    keyed by run, cache keys as bytes and texts compressed, message rows less their envelope, rows coded against
    the dictionary of shapes, compact rows (``store/compacting.py``).  A damaged row stops it before anything is rewritten (``DamageError``, exit 5)."""
    if not 1 <= version < STORE_SCHEMA_VERSION:
        raise StoreError(f"{path}: store schema v{version} cannot be migrated to v{STORE_SCHEMA_VERSION}")
    await conn.executescript(DDL)  # tables and indexes newer versions add (idempotent; executescript commits first)
    await conn.execute("BEGIN IMMEDIATE")
    try:
        await conn._execute(upgrade, conn._conn, version)  # noqa: SLF001 - one sync function on the connection's thread
        await conn.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(STORE_SCHEMA_VERSION),))
    except BaseException:
        await conn.execute("ROLLBACK")
        raise
    await conn.execute("COMMIT")
    log.info("store.migrated", db=str(path), from_version=version, to_version=STORE_SCHEMA_VERSION)


class WalGuard:
    """``<db>.open`` exists while a writer has the database open: found at the next open with no
    ``<db>-wal`` beside it, the last process stopped uncleanly and its write-ahead log was removed —
    what it had committed since its last checkpoint is gone (and will be redone): that is said."""

    def __init__(self, db: Path) -> None:
        self.db = db
        self.marker = Path(f"{db}.open")
        self.wal = Path(f"{db}-wal")
        # (a reader opening the database read-only leaves an empty -wal behind: empty counts as missing)
        self.lost_wal = self.marker.exists() and (not self.wal.exists() or self.wal.stat().st_size == 0)

    def lost_wal_line(self) -> str | None:
        if not self.lost_wal:
            return None
        return (f"{self.db}: the last process stopped uncleanly and {self.wal.name} is missing:"
                " what it committed since its last checkpoint is lost (a resume redoes that work)")

    def opened(self) -> None:
        self.marker.write_text(f"{os.getpid()}\n", encoding="ascii")

    def closed(self) -> None:
        self.marker.unlink(missing_ok=True)
