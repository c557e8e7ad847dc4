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
splices each piece's JSON back in place of its marker (``re.sub`` over the
skeleton's bytes: the pieces' contents are never scanned), level by level, each
piece fetched in bulk and checked against its digest — a damaged or missing
piece is a ``DamageError`` naming it and the rows that needed it — giving the
JSON the bus and the response cache have always read.  Pieces never change, so
a bounded memo per connection keeps the resolved JSON of the hot ones; the
writer keeps the markers of the structs it has just split (by identity: the
question object a handler passes on to its outputs is split once).
"""

from __future__ import annotations

import base64
import hashlib
import re
import sqlite3
from collections import OrderedDict
from collections.abc import Sequence
from enum import Enum
from typing import Any

import msgspec

from bus import Message, Provenance

from reasonmed_async.store.errors import DamageError
from reasonmed_async.store.packing import pack, unpack

TEXT, TREE = 1, 2
MIN_TEXT = 64  # characters: shorter strings (labels, names, ids) stay in the skeleton
MIN_TREE = 96  # bytes: a smaller struct / dict / list costs more as a row (digest, index entry) than inline
CHUNK = 500  # digests per look-up
_LETTER = {TEXT: "T", TREE: "R"}
_MARKER = re.compile(rb'(?<=[:,\[])"\\u0000([TR])([A-Za-z0-9_-]{16})"(?!:)')

_to_json = msgspec.json.Encoder().encode
_from_json = msgspec.json.decode

Pieces = dict[bytes, tuple[int, bytes]]  # digest -> (kind, body: the piece's JSON, markers inside)


def digest(kind: int, body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=12, person=b"reasonmed-%d" % kind).digest()


def text_digest(text: str) -> bytes:
    """The ``texts`` key of a stored string."""
    return digest(TEXT, _to_json(text))


def _piece(kind: int, body: bytes, pieces: Pieces) -> str:
    key = digest(kind, body)
    pieces[key] = (kind, body)
    return f"\x00{_LETTER[kind]}{base64.urlsafe_b64encode(key).decode()}"


class Splitter:
    """Splits payloads, remembering (by value, bounded) the structs it has split lately and their pieces:
    the question, paths and judgements a message carries were mostly split with an earlier message."""

    def __init__(self, capacity: int = 4096, stored_capacity: int = 200_000) -> None:
        self._seen: OrderedDict[msgspec.Struct, tuple[Any, Pieces]] = OrderedDict()
        self._same: dict[int, tuple[msgspec.Struct, Any, Pieces]] = {}  # by identity: no hashing on the way
        self.capacity = capacity
        # digests known to be in ``texts`` (their transaction committed): not inserted again
        self._stored: set[bytes] = set()
        self._stored_capacity = stored_capacity
        self._pending: set[bytes] = set()

    def new_pieces(self, pieces: Pieces) -> list[tuple[bytes, int, bytes]]:
        """The rows of ``pieces`` not known to be stored; they count as stored once the transaction commits."""
        rows = [(key, kind, body) for key, (kind, body) in pieces.items() if key not in self._stored]
        self._pending.update(r[0] for r in rows)
        return rows

    def transaction_ended(self, committed: bool) -> None:
        if committed:
            if len(self._stored) + len(self._pending) > self._stored_capacity:
                self._stored.clear()  # forgetting costs only an INSERT OR IGNORE of an existing row
            self._stored |= self._pending
        self._pending.clear()

    def message(self, message: Message, schema_version: int, pieces: Pieces) -> bytes:
        """A message's skeleton: its envelope as the bus's codec writes it, with its pieces taken out."""
        fields = {"type": type(message).__struct_config__.tag}
        fields.update(self._fields(message, pieces))
        return _to_json({"v": schema_version, "m": fields})

    def json(self, payload: bytes, pieces: Pieces) -> bytes:
        """The skeleton of a JSON object (a cached completion)."""
        return _to_json(self.fields(_from_json(payload), pieces))

    def fields(self, tree: dict[str, Any], pieces: Pieces) -> dict[str, Any]:
        """An object given as builtins, its values split (its top level stays in the row)."""
        return {k: self._conv(v, pieces) for k, v in tree.items()}

    def _conv(self, v: Any, pieces: Pieces) -> Any:
        t = type(v)
        if t is str:
            if len(v) < MIN_TEXT and not v.startswith("\x00"):
                return v
            return _piece(TEXT, _to_json(v), pieces)
        if t is int or t is float or t is bool or v is None:
            return v
        if isinstance(v, msgspec.Struct):
            if type(v) in _LEAVES:  # scalars and short strings only: converted in C
                node = msgspec.to_builtins(v)
                body = _to_json(node)
                if b"\\u0000" not in body:
                    return node if len(body) < MIN_TREE else _piece(TREE, body, pieces)
            same = self._same.get(id(v))
            if same is not None and same[0] is v:  # the very object a handler passed on: no hashing
                pieces.update(same[2])
                return same[1]
            try:
                seen = self._seen.get(v)  # frozen structs hash and compare by value (in C)
            except TypeError:  # a field that does not hash (a dict): split it each time
                return self._fit(self._fields(v, pieces), pieces)
            if seen is not None:
                self._seen.move_to_end(v)
                self._remember(v, seen[0], seen[1])
                pieces.update(seen[1])  # stored again (INSERT OR IGNORE): a batch that failed stored nothing
                return seen[0]
            own: Pieces = {}
            out = self._fit(self._fields(v, own), own)
            self._seen[v] = (out, own)
            if len(self._seen) > self.capacity:
                self._seen.popitem(last=False)
            self._remember(v, out, own)
            pieces.update(own)
            return out
        if isinstance(v, Enum):
            return v.value
        if t is tuple or t is list:
            return self._fit([self._conv(x, pieces) for x in v], pieces)
        if t is dict:
            return self._fit({k: self._conv(x, pieces) for k, x in v.items()}, pieces)
        return v

    def _remember(self, v: msgspec.Struct, out: Any, own: Pieces) -> None:
        if len(self._same) >= self.capacity:
            self._same.clear()  # (the entries hold their objects, so an id is never reused while listed)
        self._same[id(v)] = (v, out, own)

    def _fields(self, v: msgspec.Struct, pieces: Pieces) -> dict[str, Any]:
        out = {}
        for f in v.__struct_fields__:
            x = getattr(v, f)
            t = type(x)
            if (t is str and len(x) < MIN_TEXT and not x.startswith("\x00")) or t is int or t is float or t is bool or x is None:
                out[f] = x
            else:
                out[f] = self._conv(x, pieces)
        return out

    @staticmethod
    def _fit(node: Any, pieces: Pieces) -> Any:
        body = _to_json(node)
        return node if len(body) < MIN_TREE else _piece(TREE, body, pieces)


_LEAVES = frozenset({Provenance})  # structs of scalars and short strings: to_builtins does them at once


def split_envelope(envelope: dict[str, Any], pieces: Pieces) -> bytes:
    """The skeleton of a message envelope (``{"v": version, "m": message}``) given as builtins."""
    return _to_json({"v": envelope["v"], "m": Splitter().fields(envelope["m"], pieces)})


def store_pieces(db: sqlite3.Connection, pieces: Pieces, splitter: Splitter | None = None) -> None:
    rows = splitter.new_pieces(pieces) if splitter is not None else [(k, kind, b) for k, (kind, b) in pieces.items()]
    if rows:  # compressed (store/packing.py); the digest stays that of the JSON
        db.executemany("INSERT OR IGNORE INTO texts(digest, kind, body) VALUES (?,?,?)",
                       [(key, *pack(kind, body)) for key, kind, body in rows])


class Memo:
    """Resolved pieces' JSON by digest, least recently used out beyond ``capacity`` bytes; one per connection."""

    def __init__(self, capacity: int = 8 << 20) -> None:
        self.capacity = capacity
        self.size = 0
        self._items: OrderedDict[bytes, bytes] = OrderedDict()

    def get(self, key: bytes) -> bytes | None:
        value = self._items.get(key)
        if value is not None:
            self._items.move_to_end(key)
        return value

    def put(self, key: bytes, value: bytes) -> None:
        if key not in self._items:
            self._items[key] = value
            self.size += len(value)
            while self.size > self.capacity and self._items:
                self.size -= len(self._items.popitem(last=False)[1])


class Rehydrator:
    """Skeletons back into JSON, the pieces fetched from ``texts`` through ``db`` (synchronous)."""

    def __init__(self, db: sqlite3.Connection, memo: Memo, where: object) -> None:
        self._db = db
        self._memo = memo
        self._where = where  # the database, as error messages name it
        self._raw: dict[bytes, tuple[int, bytes]] = {}  # fetched by this call
        self._resolved: dict[bytes, bytes] = {}  # found in the memo by this call (it may drop them meanwhile)

    def json_of(self, skeletons: Sequence[bytes], owners: Sequence[str]) -> list[bytes]:
        """Each skeleton as the JSON it was split from; ``owners`` name the rows (in a damage report)."""
        wanted = {_b64(m[2]) for s in skeletons for m in _MARKER.finditer(s)}
        while wanted:
            missing = []
            for key in wanted:
                if key in self._raw or key in self._resolved:
                    continue
                hit = self._memo.get(key)
                if hit is None:
                    missing.append(key)
                else:
                    self._resolved[key] = hit
            wanted = set()
            for key, kind, body in self._fetch(missing, owners):
                self._raw[key] = (kind, body)
                if kind == TREE:
                    wanted.update(_b64(m[2]) for m in _MARKER.finditer(body))
        return [_MARKER.sub(self._splice, s) for s in skeletons]

    def _splice(self, match: re.Match[bytes]) -> bytes:
        key = _b64(match[2])
        resolved = self._resolved.get(key)
        if resolved is None:
            kind, body = self._raw[key]
            resolved = body if kind == TEXT else _MARKER.sub(self._splice, body)
            self._resolved[key] = resolved
            self._memo.put(key, resolved)
        return resolved

    def _fetch(self, keys: list[bytes], owners: Sequence[str]) -> list[tuple[bytes, int, bytes]]:
        rows: list[tuple[bytes, int, bytes]] = []
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            rows += self._db.execute(
                f"SELECT digest, kind, body FROM texts WHERE digest IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall()
        unpacked = []
        for key, kind, body in rows:
            piece = unpack(kind, body) if isinstance(body, bytes) and isinstance(kind, int) else None
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
        return unpacked


_b64 = base64.urlsafe_b64decode


def _owners(owners: Sequence[str]) -> str:
    return ", ".join(owners[:3]) + (f" and {len(owners) - 3} more" if len(owners) > 3 else "")
