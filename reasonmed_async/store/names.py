"""Storage-only interning (schema v8): the strings rows repeat, kept once in ``names``, and message ids as bytes.

A message row names its run, question, type and label, and a cached completion
its model, by ``names.code`` — a small integer — instead of repeating the string
in every row and in every index entry over it; the views ``messages``,
``deliveries`` and ``records`` (``views.py``) give every reader the strings back, so what a
user sees (ids, run ids, question ids, model names) is exactly what was stored.
A message id (24 lower-case hex characters: ``bus.payloads._digest``) is stored as
its 12 bytes (``id_bytes``); anything else (no message id ever is) as the string
itself, so nothing is ever lost, and the views give back either as it was given.

``Names`` is the writer connection's cache of codes (on its thread only),
bounded, and forgotten whenever a transaction rolls back (a code handed out in
it may then be given again to another name).
"""

from __future__ import annotations

import re
import sqlite3
import zlib
from collections import OrderedDict

#: ``checksum``: a CRC-32 of the row's code and name (``name_checksum``), so ``check`` finds a damaged name — one
#: row that every delivery, join, record or cache row naming it relies on
NAMES_COLUMNS = """(
    code     INTEGER PRIMARY KEY,
    name     TEXT NOT NULL UNIQUE,
    checksum INTEGER
)"""


def name_checksum(code: int, name: str) -> int:
    """The CRC-32 of a ``names`` row: its code and its name."""
    return zlib.crc32(name.encode("utf-8", "surrogatepass"), zlib.crc32(f"{code}\0".encode()))


def add_name_checksums(db: sqlite3.Connection) -> None:
    """``checksum`` for every ``names`` row inserted without one (by ``INSERT ... SELECT``: the migration, a merge)."""
    db.create_function("rm_name_checksum", 2, name_checksum, deterministic=True)
    db.execute("UPDATE main.names SET checksum = rm_name_checksum(code, name) WHERE checksum IS NULL")

#: the SQL of a stored id's text as users see it (``id_bytes`` reversed): a view's column
_HEX_OF = "CASE WHEN typeof({0})='blob' THEN lower(hex({0})) ELSE {0} END"


def id_text(column: str) -> str:
    """SQL giving back the text of an id column that ``id_bytes`` stored."""
    return _HEX_OF.format(column)


_ID = re.compile(r"(?:[0-9a-f]{2})+")


def id_bytes(text: str) -> bytes | str:
    """What a v8 row stores of a message id (or parent id): its bytes where it is lower-case hex, else itself."""
    if len(text) == 24:  # a message id (``bus.payloads._digest``): one check, not the pattern's
        try:
            raw = bytes.fromhex(text)
        except ValueError:
            return text
        return raw if raw.hex() == text else text
    return bytes.fromhex(text) if _ID.fullmatch(text) else text


def id_of(stored: object) -> object:
    """``id_bytes`` reversed, in Python (a value of another type — a damaged row — as it is)."""
    return stored.hex() if isinstance(stored, bytes) else stored


#: ``delivery_rows.state``: a delivery's state by its index here (the view ``deliveries`` gives the word back)
STATES = ("pending", "done", "failed")
PENDING, DONE, FAILED = range(3)


class Names:
    """name -> code for one writer connection; at most ``capacity`` remembered (then started again).
    ``codes``: the remembered ones (a hot loop looks there first: ``codes.get(name) or names.code(db, name)``)."""

    def __init__(self, capacity: int = 2048) -> None:
        # 2,048: the questions in flight with room to spare; 8,192 filled with question ids past ~8k questions
        # and held ~1 MiB more at 200k questions than at 1k (RSS 200k / 1k 1.11 -> 1.07 with both bounds cut)
        self.codes: dict[str, int] = {}
        self._capacity = capacity

    def code(self, db: sqlite3.Connection, name: str) -> int:
        code = self.codes.get(name)
        if code is not None:
            return code
        row = db.execute("SELECT code FROM names WHERE name=?", (name,)).fetchone()
        if row is None:
            code = int(db.execute("INSERT INTO names(name) VALUES (?)", (name,)).lastrowid or 0)
            db.execute("UPDATE names SET checksum=? WHERE code=?", (name_checksum(code, name), code))
        else:
            code = int(row[0])
        if len(self.codes) >= self._capacity:
            self.codes.clear()
        self.codes[name] = code  # (codes start at 1: ``codes.get(name) or ...`` never mistakes one for a miss)
        return code

    def transaction_ended(self, committed: bool) -> None:
        if not committed:
            self.codes.clear()


class RecentSeqs:
    """The seqs of the messages this writer stored last (stored id -> seq), the oldest out beyond ``capacity``:
    a new message's parent is nearly always one of them, so naming it by its seq costs no look-up.  Forgotten
    whenever a transaction rolls back (its seqs may be given again)."""

    def __init__(self, capacity: int = 4096) -> None:  # a parent is nearly always within the last few thousand
        self._seqs: OrderedDict[bytes | str, int] = OrderedDict()
        self._capacity = capacity
        #: the largest seq this writer gave, committed or in the open transaction (None: ask the table)
        self.last: int | None = None

    def get(self, stored_id: bytes | str) -> int | None:
        return self._seqs.get(stored_id)

    def put(self, stored_id: bytes | str, seq: int) -> None:
        self._seqs[stored_id] = seq
        if len(self._seqs) > self._capacity:
            self._seqs.popitem(last=False)

    def transaction_ended(self, committed: bool) -> None:
        if not committed:
            self._seqs.clear()
            self.last = None


def names_of(db: sqlite3.Connection) -> dict[int, str]:
    """Every code and its name (for ``check``'s scan and the merge)."""
    return {int(code): name for code, name in db.execute("SELECT code, name FROM names")}
