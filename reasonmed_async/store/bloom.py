"""A fixed-size Bloom filter over string keys: "certainly absent" without a database read."""

from __future__ import annotations

import hashlib


class KeyBloom:
    """Set membership for string keys in ``2**bits_log2`` bits (4 MiB by default).

    ``might_contain`` is never wrong about a key that was added; it is wrong
    about an absent key with a probability that grows with the count (about
    0.3 % at two million keys).  Memory stays fixed however many keys come."""

    HASHES = 4

    def __init__(self, bits_log2: int = 25) -> None:
        if not 10 <= bits_log2 <= 34:
            raise ValueError("bits_log2 must be within 10..34")
        self._mask = (1 << bits_log2) - 1
        self._bits = bytearray(1 << (bits_log2 - 3))
        self.count = 0

    def _positions(self, key: str) -> list[int]:
        digest = hashlib.blake2b(key.encode(), digest_size=4 * self.HASHES).digest()
        return [int.from_bytes(digest[i : i + 4], "little") & self._mask for i in range(0, 4 * self.HASHES, 4)]

    def add(self, key: str) -> None:
        bits = self._bits
        for p in self._positions(key):
            bits[p >> 3] |= 1 << (p & 7)
        self.count += 1

    def might_contain(self, key: str) -> bool:
        bits = self._bits
        return all(bits[p >> 3] & (1 << (p & 7)) for p in self._positions(key))
