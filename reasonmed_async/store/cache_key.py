"""How ``llm_cache`` holds a call's key (schema v8): the SHA-256's first 8 bytes as the rowid, the rest beside it.

The key of a call is the hex of a SHA-256 (``llm/identity.py``).  Its first 8
bytes, as a signed big-endian 64-bit integer, are the table's INTEGER PRIMARY
KEY — the rowid itself, so no second b-tree repeats the key (v4-v7 kept it as a
32-byte BLOB with a UNIQUE index: the key twice) — and the other 24 bytes are
``rest``.  A look-up compares the whole key (``CACHE_KEY``, the hex SQL gives
back): a row of another call whose key starts with the same 8 bytes (a prefix
collision, about 2**-64 a pair) is a miss, never that call's answer, and the
second of two such calls is not stored (it is paid for again when asked again).
"""

from __future__ import annotations

#: SQL: a row's whole key as the hex the checksum covers and callers look up
CACHE_KEY = "printf('%016x', key) || lower(hex(rest))"


def split_key(key_hex: str) -> tuple[int, bytes]:
    """(rowid, rest) of a key given as the hex of its SHA-256."""
    raw = bytes.fromhex(key_hex)
    return int.from_bytes(raw[:8], "big", signed=True), raw[8:]
