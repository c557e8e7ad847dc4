"""``reasonmed check --db``: is this database whole?  And ``reasonmed migrate --db`` (v1 ... v7 -> v8).

``check`` opens the database read-only and reports SQLite's ``integrity_check``,
the schema version and every row of ``messages`` / ``llm_cache`` whose checksum
does not match, and of ``texts`` whose content does not match its digest, naming the rows and their questions: exit 0 when all is well, 5
when something is damaged, 2 when it is not a checkpoint database (or needs
``migrate``).  A write-ahead log that vanished after an unclean stop is reported.
"""

from __future__ import annotations

import argparse
import sqlite3
from collections import Counter
from pathlib import Path
from urllib.parse import quote

from reasonmed_async.commands.summaries import SUMMARIES
from reasonmed_async.exit_codes import ExitCode
from reasonmed_async.store.errors import StoreError
from reasonmed_async.store.integrity import integrity_problems, row_counts, scan, schema_version
from reasonmed_async.store.opening import WalGuard
from reasonmed_async.store.schema import STORE_SCHEMA_VERSION

SHOWN = 20  # damaged rows listed one per line; the rest are counted


def _connect_ro(db: Path) -> sqlite3.Connection:
    if not db.is_file():
        raise StoreError(f"{db}: no such database")
    return sqlite3.connect(f"file:{quote(str(db.resolve()))}?mode=ro", uri=True)


def check(db: Path) -> tuple[int, list[str]]:
    """The exit code and the lines of the report."""
    lines: list[str] = []
    con = _connect_ro(db)
    try:
        try:
            version = schema_version(con, db)
            problems = integrity_problems(con)
        except sqlite3.DatabaseError as exc:
            if getattr(exc, "sqlite_errorname", "") == "SQLITE_NOTADB":
                raise StoreError(f"{db}: not an SQLite database") from None
            return ExitCode.DAMAGED, [*lines, f"damaged: {db}: SQLite cannot read it: {exc}"]
        if version != STORE_SCHEMA_VERSION:
            hint = f"`reasonmed migrate --db {db}` upgrades it" if version < STORE_SCHEMA_VERSION else "use a newer reasonmed"
            raise StoreError(f"{db}: store schema v{version}, this build reads v{STORE_SCHEMA_VERSION}: {hint}")
        if problems != ["ok"]:
            lines += [f"damaged: integrity_check: {p}" for p in problems[:SHOWN]]
        try:
            damaged = list(scan(con))
        except sqlite3.DatabaseError as exc:
            return ExitCode.DAMAGED, [*lines, f"damaged: {db}: reading the rows failed: {exc}"]
        messages, cached, texts = row_counts(con)
    finally:
        con.close()
    for row in damaged[:SHOWN]:
        of = f" of question {row.question}" if row.question else ""
        lines.append(f"damaged: {row.table} row {row.identity}{of}: its content does not match its checksum")
    if len(damaged) > SHOWN:
        lines.append(f"damaged: ... and {len(damaged) - SHOWN} more rows")
    if damaged or problems != ["ok"]:
        questions = sorted({r.question for r in damaged if r.question})
        by_table = Counter(r.table for r in damaged)
        lines.append(f"{db}: DAMAGED: integrity_check {'ok' if problems == ['ok'] else 'failed'};"
                     f" {by_table['messages']} of {messages} messages, {by_table['llm_cache']} of {cached}"
                     f" cached responses and {by_table['texts']} of {texts} stored texts fail their checksum"
                     f"{_dictionaries(by_table['dictionaries'])}{_names(by_table['names'])} ({len(questions)} questions: "
                     f"{', '.join(questions[:10])}{' ...' if len(questions) > 10 else ''})")
        return ExitCode.DAMAGED, lines
    lines.append(f"{db}: ok: integrity_check ok, schema v{version}, {messages} messages, {cached}"
                 f" cached responses and {texts} stored texts match their checksums")
    return ExitCode.OK, lines


def _dictionaries(damaged: int) -> str:
    return f", and {damaged} trained dictionaries their digest" if damaged else ""


def _names(damaged: int) -> str:
    return f", and {damaged} interned names (each misnaming every row that uses it) their checksum" if damaged else ""


async def _check(args: argparse.Namespace) -> int:
    lost = WalGuard(Path(args.db)).lost_wal_line()
    if lost:
        print(f"warning: {lost}", flush=True)
    code, lines = check(Path(args.db))
    for line in lines:
        print(line)
    return code


async def _migrate(args: argparse.Namespace) -> int:
    from reasonmed_async.store.checkpoint import CheckpointStore
    from reasonmed_async.store.lock import OwnerLock

    db = Path(args.db)
    if not db.is_file():
        raise StoreError(f"{db}: no such database")
    lock = OwnerLock(db)
    lock.acquire()
    try:
        con = sqlite3.connect(db)
        try:
            before = schema_version(con, db)
        finally:
            con.close()
        async with await CheckpointStore.open(db):
            pass
        if before < STORE_SCHEMA_VERSION:  # the old payloads' pages back to the file system
            con = sqlite3.connect(db)
            try:
                con.execute("VACUUM")
            finally:
                con.close()
    finally:
        lock.release()
    print(f"{db}: store schema v{STORE_SCHEMA_VERSION}")
    return ExitCode.OK


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    c = sub.add_parser("check", help=SUMMARIES["check"])
    c.add_argument("--db", required=True)
    c.set_defaults(handler=_check)
    m = sub.add_parser("migrate", help=SUMMARIES["migrate"])
    m.add_argument("--db", required=True)
    m.set_defaults(handler=_migrate)
