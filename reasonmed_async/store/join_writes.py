"""The writer's side of the tierer's join (``CheckpointStore.gather``): an item added, the join read back once full.

Each item is one ``INSERT OR IGNORE`` into ``joins``; how many items a key has is
known without asking SQLite (``JoinCounts``): counted from the table the first
time a key is seen in a transaction chain, then kept up to date from each insert's
row count (an item given twice inserts nothing).  A rolled-back transaction
forgets every count (its inserts are undone), so a count is never ahead of the
table.  Once a key holds ``expected`` items, they are read back by item id.
"""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING

from bus import Message

from reasonmed_async.store.errors import StoreError
from reasonmed_async.store.names import Names, id_bytes, id_of
from reasonmed_async.store.reading import MESSAGE_COLUMNS, DbName, load_messages

if TYPE_CHECKING:
    from reasonmed_async.store.texts import Memo


class JoinCounts:
    """key code -> items ``joins`` holds for it, as this writer's transactions left it; at most ``capacity`` keys
    (then started again: a forgotten key is counted from the table once more)."""

    def __init__(self, capacity: int = 4096) -> None:
        self._counts: dict[int, int] = {}
        self._capacity = capacity

    def added(self, db: sqlite3.Connection, key: int, inserted: bool) -> int:
        """The key's count after an insert into ``joins`` that ``inserted`` a row or not."""
        count = self._counts.get(key)
        if count is None:  # (the insert is in the table already: counted with it)
            (count,) = db.execute("SELECT COUNT(*) FROM joins WHERE key=?", (key,)).fetchone()
            if len(self._counts) >= self._capacity:
                self._counts.clear()
        elif inserted:
            count += 1
        self._counts[key] = count
        return count

    def transaction_ended(self, committed: bool) -> None:
        if not committed:
            self._counts.clear()


def join_item(db: sqlite3.Connection, memo: Memo, names: Names, counts: JoinCounts, key: str, item_id: str,
              message_id: str, expected: int,
              held: dict[str, str] | None = None) -> list[tuple[str, Message | None]] | None:
    """Add an item; once ``expected`` are there, (item id, message) of each, by item id.  ``held`` (item id ->
    message id): the items the caller holds, answered with None when the journal has that very message (a
    held item the journal does not have, or has as another message, is read back like the others)."""
    code = names.code(db, key)
    cur = db.execute("INSERT OR IGNORE INTO joins(key, item, message_id) VALUES (?,?,?)",
                     (code, names.code(db, item_id), id_bytes(message_id)))
    count = counts.added(db, code, cur.rowcount > 0)
    if count < expected:
        return None
    rows = sorted((iid, id_of(mid)) for iid, mid in db.execute(
        "SELECT n.name, j.message_id FROM joins j JOIN message_rows m ON m.id = j.message_id"
        " JOIN names n ON n.code = j.item WHERE j.key=?", (code,)))  # (by item id)
    if len(rows) < count:
        raise StoreError(f"join {key}: {count - len(rows)} item(s) are not in the journal")
    held = held or {}
    wanted = [mid for iid, mid in rows if held.get(iid) != mid]
    read: dict[str, Message] = {}
    if wanted:
        marks = ",".join("?" * len(wanted))
        read = {mid: m for (mid,), m in load_messages(
            db, memo, DbName(db), f"SELECT {MESSAGE_COLUMNS}, id FROM messages WHERE seq IN"
            f" (SELECT seq FROM message_rows WHERE id IN ({marks}))", [id_bytes(w) for w in wanted])}
    return [(iid, None if held.get(iid) == mid else read[mid]) for iid, mid in rows]
