"""The question ids of a file seen so far, and where each was first seen, in a few bytes each.

A ``dict[str, str]`` of 200,000 ids costs ~30 MiB (two string objects and a
dict entry per id, kept for the whole pass); this table costs ~40 bytes an
id: an open-addressing table of 32-bit hashes and offsets (two ``array``\\ s)
over one ``bytearray`` holding each id and its place as UTF-8.  A hash match is
confirmed against the stored id, so two ids are never taken for one.  Large
arrays are their own allocations, returned to the system when the pass ends.
"""

from __future__ import annotations

from array import array

_EMPTY = 0
_SEP = b"\x00"  # never inside a question id or a place: both are checked text (no NUL)
_MAX_OFFSET = 2**32 - 1


def _zeros(size: int) -> array:
    return array("I", [0]) * size  # 4 bytes a slot


class SeenIds:
    """``where = seen.first(qid)`` (None if new) and ``seen.add(qid, where)``; ``qid in seen``."""

    def __init__(self, capacity: int = 1024) -> None:
        size = 1 << max(4, (capacity * 2 - 1).bit_length())
        self._hashes, self._offsets = _zeros(size), _zeros(size)
        self._mask = size - 1
        self._blob = bytearray()
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def __contains__(self, qid: str) -> bool:
        return self.first(qid) is not None

    @staticmethod
    def _hash(qid: str) -> int:
        h = hash(qid) & 0xFFFFFFFF  # 32 bits: a match is confirmed against the stored id anyway
        return h if h != _EMPTY else 1

    def _entry(self, offset: int) -> tuple[str, str]:
        end = self._blob.index(_SEP, offset)
        stop = self._blob.index(_SEP, end + 1)
        return (self._blob[offset:end].decode("utf-8", "surrogatepass"),
                self._blob[end + 1 : stop].decode("utf-8", "surrogatepass"))

    def _slot(self, qid: str, h: int) -> tuple[int, str | None]:
        """The slot holding ``qid`` and its place, or the empty slot where it would go and None."""
        i = h & self._mask
        hashes = self._hashes
        while True:
            found = hashes[i]
            if found == _EMPTY:
                return i, None
            if found == h:
                stored, where = self._entry(self._offsets[i])
                if stored == qid:
                    return i, where
            i = (i + 1) & self._mask

    def first(self, qid: str) -> str | None:
        """Where ``qid`` was first seen, or None."""
        return self._slot(qid, self._hash(qid))[1]

    def add(self, qid: str, where: str) -> None:
        """Record ``qid`` as seen at ``where`` (the caller checked it is new)."""
        if (self._count + 1) * 2 > len(self._hashes):
            self._grow()
        h = self._hash(qid)
        i, known = self._slot(qid, h)
        if known is not None:
            return
        self._hashes[i] = h
        if len(self._blob) > _MAX_OFFSET and self._offsets.typecode == "I":
            self._offsets = array("Q", self._offsets)  # a blob past 4 GiB: wider offsets
        self._offsets[i] = len(self._blob)
        self._blob += qid.encode("utf-8", "surrogatepass") + _SEP + where.encode("utf-8", "surrogatepass") + _SEP
        self._count += 1

    def _grow(self) -> None:
        old_hashes, old_offsets = self._hashes, self._offsets
        size = len(old_hashes) * 2
        self._hashes, self._offsets, self._mask = _zeros(size), array(old_offsets.typecode, [0]) * size, size - 1
        for h, offset in zip(old_hashes, old_offsets):
            if h != _EMPTY:
                i = h & self._mask
                while self._hashes[i] != _EMPTY:
                    i = (i + 1) & self._mask
                self._hashes[i], self._offsets[i] = h, offset
