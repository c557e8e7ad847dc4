"""Each text stored once: payloads split into a skeleton and content-addressed pieces (``texts``).

A message (or a cached completion) is walked field by field.  Bottom up, every
string of ``MIN_TEXT`` characters or more, and every struct, dict or list whose
JSON (its own pieces already replaced) is ``MIN_TREE`` bytes or more, is stored
once in ``texts`` — as its JSON, under the 96-bit BLAKE2b digest of its kind and
bytes — and replaced by a marker: the JSON string ``"\\u0000T<digest>"`` (a text)
or ``"\\u0000R<digest>"`` (a tree), the digest in 16 characters of URL-safe base64.  What is left is the skeleton, the row's
``payload``.  So a question carried by 26 messages, a CoT carried by its path,
the verdict, the tier, the ranking and the record, and a completion text both
cached and parsed, are each one row; a message row keeps what is its own.

A marker is unambiguous: a real string that starts with NUL is always stored
as a piece, and a marker is only matched where a JSON value starts (after
``:``, ``,`` or ``[``; inside a string a quote is always escaped).  Reading
splices each piece's JSON back in place of its marker (``markers``: one scan of
the skeleton's bytes; the pieces' contents are never scanned), level by level, each
piece fetched in bulk and checked against its digest — a damaged or missing
piece is a ``DamageError`` naming it and the rows that needed it — giving the
JSON the bus and the response cache have always read.  Pieces never change, so
a bounded memo per connection keeps the resolved JSON of the hot ones.  The
write side, ``Splitter``, is ``splitting.py``.
"""

from __future__ import annotations

import binascii
import hashlib
import re
import sqlite3
from collections import OrderedDict
from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from reasonmed_async.store.errors import DamageError
from reasonmed_async.store.packing import pack, unpack

if TYPE_CHECKING:
    from reasonmed_async.store.coding import Coder
    from reasonmed_async.store.splitting import Splitter

TEXT, TREE = 1, 2
MIN_TEXT = 64  # characters: shorter strings (labels, names, ids) stay in the skeleton
MIN_TREE = 96  # bytes: a smaller struct / dict / list costs more as a row (digest, index entry) than inline
CHUNK = 500  # digests per look-up
_LETTER = {TEXT: "T", TREE: "R"}
_MARKER = re.compile(rb'(?<=[:,\[])"\\u0000([TR])([A-Za-z0-9_-]{16})"(?!:)')

_to_json = msgspec.json.Encoder().encode

Pieces = dict[bytes, tuple[int, bytes]]  # digest -> (kind, body: the piece's JSON, markers inside)


def digest(kind: int, body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=12, person=b"reasonmed-%d" % kind).digest()


def text_digest(text: str) -> bytes:
    """The ``texts`` key of a stored string."""
    return digest(TEXT, _to_json(text))


def store_pieces(db: sqlite3.Connection, pieces: Pieces, splitter: Splitter | None = None,
                 coder: Coder | None = None) -> None:
    """Insert ``pieces`` (those ``splitter`` does not know to be stored already), coded by ``coder`` (the
    writer's, ``store/coding.py``) or as ``store/packing.py`` packs them."""
    rows = splitter.new_pieces(pieces) if splitter is not None else [(k, kind, b) for k, (kind, b) in pieces.items()]
    if rows:  # compressed; the digest stays that of the JSON
        code = coder.piece if coder is not None else (lambda _key, kind, body: pack(kind, body))
        db.executemany("INSERT OR IGNORE INTO texts(digest, kind, body) VALUES (?,?,?)",
                       [(key, *code(key, kind, body)) for key, kind, body in rows])


class Memo:
    """Resolved pieces' JSON by marker token (a digest's 16 base64 characters), least recently used out beyond
    ``capacity`` bytes (each entry counted with its objects' overhead, ``ENTRY_BYTES``); one per connection."""

    ENTRY_BYTES = 160  # the token and value objects and the ordered dict's node, beyond the value's bytes

    def __init__(self, capacity: int = 8 << 20) -> None:
        self.capacity = capacity
        self.size = 0
        self._items: OrderedDict[bytes, bytes] = OrderedDict()

    def get(self, token: bytes) -> bytes | None:
        value = self._items.get(token)
        if value is not None:
            self._items.move_to_end(token)
        return value

    def put(self, token: bytes, value: bytes) -> None:
        cost = len(value) + self.ENTRY_BYTES
        if token not in self._items and cost <= self.capacity:
            self._items[token] = value
            self.size += cost
            while self.size > self.capacity:
                self.size -= len(self._items.popitem(last=False)[1]) + self.ENTRY_BYTES


Spans = list[tuple[int, int, bytes]]  # (start, end, token: the digest's 16 base64 characters) of each marker


def markers(skeleton: bytes) -> Spans:
    """The markers of a skeleton, where a JSON value starts: ``_MARKER``'s matches, found faster.

    The search starts at the marker's rare ``\\u0000`` (a pattern that starts with a quote or a look-behind
    is tried at every quote or byte of the skeleton, several times slower); the quote before it and the
    character before that (``:``, ``,`` or ``[``) are checked here, as ``_MARKER``'s look-behind does."""
    out = []
    for m in _CANDIDATE.finditer(skeleton):
        start = m.start() - 1
        if start > 0 and skeleton[start] == 0x22 and skeleton[start - 1] in _VALUE_STARTS:
            out.append((start, m.end(), m[1]))
    return out


_CANDIDATE = re.compile(rb'\\u0000[TR]([A-Za-z0-9_-]{16})"(?!:)')
_VALUE_STARTS = frozenset(b":,[")


class Rehydrator:
    """Skeletons back into JSON, the pieces fetched from ``texts`` through ``db`` (synchronous)."""

    def __init__(self, db: sqlite3.Connection, memo: Memo, where: object) -> None:
        self._db = db
        self._memo = memo
        self._where = where  # the database, as error messages name it
        self._raw: dict[bytes, tuple[int, bytes]] = {}  # fetched by this call, by token
        self._resolved: dict[bytes, bytes] = {}  # resolved in this call (the memo may drop them meanwhile)

    def json_of(self, skeletons: Sequence[bytes], owners: Sequence[str]) -> list[bytes]:
        """Each skeleton as the JSON it was split from; ``owners`` name the rows (in a damage report)."""
        spans = [markers(s) for s in skeletons]
        resolved, raw, memo = self._resolved, self._raw, self._memo
        wanted = [token for found in spans for _, _, token in found]
        while wanted:
            missing = set()
            for token in wanted:
                if token in resolved or token in raw or token in missing:
                    continue
                hit = memo.get(token)
                if hit is None:
                    missing.add(token)
                else:
                    resolved[token] = hit
            wanted = []
            for token, kind, body in self._fetch(sorted(missing), owners):
                raw[token] = (kind, body)
                if kind == TREE:
                    wanted += [t for _, _, t in markers(body)]
        return [self._splice(s, found) for s, found in zip(skeletons, spans, strict=True)]

    def _splice(self, skeleton: bytes, spans: Spans) -> bytes:
        if not spans:
            return skeleton
        parts, last = [], 0
        for start, end, token in spans:
            parts.append(skeleton[last:start])
            parts.append(self._resolve(token))
            last = end
        parts.append(skeleton[last:])
        return b"".join(parts)

    def _resolve(self, token: bytes) -> bytes:
        resolved = self._resolved.get(token)
        if resolved is None:
            kind, body = self._raw[token]
            resolved = body if kind == TEXT else self._splice(body, markers(body))
            self._resolved[token] = resolved
            self._memo.put(token, resolved)
        return resolved

    def _fetch(self, tokens: list[bytes], owners: Sequence[str]) -> list[tuple[bytes, int, bytes]]:
        """(token, kind, body) of each piece, checked against its digest (and its kind against the marker's)."""
        keys = {_b64(t): t for t in tokens}
        rows: list[tuple[bytes, int, bytes]] = []
        wanted = list(keys)
        for start in range(0, len(wanted), CHUNK):
            chunk = wanted[start : start + CHUNK]
            rows += self._db.execute(
                f"SELECT digest, kind, body FROM texts WHERE digest IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall()
        unpacked = []
        for key, kind, body in rows:
            piece = unpack(kind, body, self._db) if isinstance(body, bytes) and isinstance(kind, int) else None
            if piece is None or piece[0] not in _LETTER or digest(*piece) != key:
                raise DamageError(f"{self._where}: damaged row in texts ({bytes(key).hex()}, needed by"
                                  f" {_owners(owners)}): its content does not match its digest;"
                                  " `reasonmed check --db` lists every damaged row")
            unpacked.append((key, *piece))
        if len(rows) < len(keys):
            found = {r[0] for r in rows}
            lost = next(k for k in keys if k not in found)
            raise DamageError(f"{self._where}: a stored text is missing (texts {lost.hex()}, needed by"
                              f" {_owners(owners)}); `reasonmed check --db` lists every damaged row")
        return [(keys[key], kind, body) for key, kind, body in unpacked]


def _b64(token: bytes) -> bytes:
    return binascii.a2b_base64(token.translate(_FROM_URLSAFE))


_FROM_URLSAFE = bytes.maketrans(b"-_", b"+/")


def _owners(owners: Sequence[str]) -> str:
    return ", ".join(owners[:3]) + (f" and {len(owners) - 3} more" if len(owners) > 3 else "")
