"""The join's items held in memory while it waits, so a completed join reads back only what it does not hold.

The tierer hands ``gather`` each item (a message the journal already holds) and
gets them all back once the last has come.  The journal's ``joins`` table is
the truth (it survives a crash; it keeps the first message of an item given
twice); the items handed in by this process are kept here, bounded, so the
writer checks them against ``joins`` by message id and reads back, checksum
and texts verified, only the ones this process never saw (a resumed run, an
evicted key).  A completed join is forgotten.
"""

from __future__ import annotations

from bus import Message


class HeldItems:
    """Items of the joins in progress, by key; beyond ``capacity`` items the oldest keys are dropped."""

    def __init__(self, capacity: int = 8192) -> None:
        self.capacity = capacity
        self._keys: dict[str, dict[str, tuple[str, Message]]] = {}
        self._count = 0

    def hold(self, key: str, item_id: str, message_id: str, item: Message) -> dict[str, tuple[str, Message]]:
        """Add ``item`` (whose id is ``message_id``); a snapshot of what is held for ``key``:
        item id -> (message id, message)."""
        held = self._keys.get(key)
        if held is None:
            held = self._keys[key] = {}
        if item_id not in held:
            self._count += 1
        held[item_id] = (message_id, item)
        while self._count > self.capacity and len(self._keys) > 1:
            oldest = next(iter(self._keys))
            self._count -= len(self._keys.pop(oldest))
        return dict(held)

    def forget(self, key: str) -> None:
        held = self._keys.pop(key, None)
        if held is not None:
            self._count -= len(held)

    def __len__(self) -> int:
        return self._count
