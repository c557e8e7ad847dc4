"""Each text stored once: payloads split into a skeleton and content-addressed pieces (``texts``).

A message (or a cached completion) is turned into its builtin tree (dicts,
lists, strings, numbers).  Bottom up, every string of ``MIN_TEXT`` characters
or more, and every dict or list whose encoding (its own pieces already
replaced) is ``MIN_TREE`` bytes or more, is stored once in ``texts`` under the
BLAKE2b digest of its kind and bytes and replaced by a reference (a msgpack
extension: ``TEXT`` or ``TREE`` and the digest).  What is left is the
skeleton, the row's ``payload``.  So a question carried by 26 messages, a CoT
carried by its path, the verdict, the tier, the ranking and the record, and a
completion text both cached and parsed into a path, are each one row; a
message row keeps what is its own (its verdict, tier, attempt) and references.

Reading rehydrates: the references of a page of rows are fetched in bulk
(``digest IN (...)``, level by level: a path references its CoT), each piece is
checked against its digest — a damaged piece is a ``DamageError`` naming the
piece and the message that needed it — and the tree is encoded back into the
JSON the bus and the response cache have always read.  Pieces never change,
so a bounded memo per connection keeps the hot ones (a question's, a path's).
"""

from __future__ import annotations

import hashlib
import sqlite3
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from typing import Any

import msgspec

from bus import Message

from reasonmed_async.store.errors import DamageError

TEXT, TREE = 1, 2
MIN_TEXT = 64  # characters: shorter strings (labels, names, ids) stay in the skeleton
MIN_TREE = 96  # bytes: a dict / list smaller than that costs more as a row (digest, index entry) than inline
CHUNK = 500  # digests per look-up

_pack = msgspec.msgpack.Encoder().encode
_to_json = msgspec.json.Encoder().encode
_from_json = msgspec.json.decode

Pieces = dict[bytes, tuple[int, bytes]]  # digest -> (kind, body)


def digest(kind: int, body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=16, person=b"reasonmed-%d" % kind).digest()


class _Ref:
    __slots__ = ("digest", "kind")

    def __init__(self, kind: int, digest_: bytes) -> None:
        self.kind = kind
        self.digest = digest_


_unpack = msgspec.msgpack.Decoder(ext_hook=lambda code, data: _Ref(code, bytes(data))).decode


def _intern(node: Any, pieces: Pieces) -> Any:
    if type(node) is str:
        if len(node) < MIN_TEXT:
            return node
        body = node.encode("utf-8", "surrogatepass")
        key = digest(TEXT, body)
        pieces[key] = (TEXT, body)
        return msgspec.msgpack.Ext(TEXT, key)
    if type(node) is dict:
        node = {k: _intern(v, pieces) for k, v in node.items()}
    elif type(node) is list or type(node) is tuple:  # to_builtins keeps a struct's tuples
        node = [_intern(v, pieces) for v in node]
    else:
        return node
    body = _pack(node)
    if len(body) < MIN_TREE:
        return node
    key = digest(TREE, body)
    pieces[key] = (TREE, body)
    return msgspec.msgpack.Ext(TREE, key)


def _top(tree: dict[str, Any], pieces: Pieces) -> dict[str, Any]:
    return {k: _intern(v, pieces) for k, v in tree.items()}  # the top level itself stays in the row


def split_message(message: Message, schema_version: int, pieces: Pieces) -> bytes:
    """A message's skeleton: its envelope as the bus's codec writes it, with its pieces taken out."""
    return split_envelope({"v": schema_version, "m": msgspec.to_builtins(message)}, pieces)


def split_envelope(envelope: dict[str, Any], pieces: Pieces) -> bytes:
    """The skeleton of a message envelope (``{"v": version, "m": message}``) as builtins."""
    return _pack({"v": envelope["v"], "m": _top(envelope["m"], pieces)})


def split_json(payload: bytes, pieces: Pieces) -> bytes:
    """The skeleton of a JSON object (a cached completion)."""
    return _pack(_top(_from_json(payload), pieces))


def store_pieces(db: sqlite3.Connection, pieces: Pieces) -> None:
    if pieces:
        db.executemany("INSERT OR IGNORE INTO texts(digest, kind, body) VALUES (?,?,?)",
                       [(key, kind, body) for key, (kind, body) in pieces.items()])


class Memo:
    """Resolved pieces by digest (bounded, least recently used out); one per connection."""

    def __init__(self, capacity: int = 20_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[bytes, Any] = OrderedDict()

    def get(self, key: bytes) -> Any:
        value = self._items.get(key, _MISSING)
        if value is not _MISSING:
            self._items.move_to_end(key)
        return value

    def put(self, key: bytes, value: Any) -> None:
        self._items[key] = value
        if len(self._items) > self.capacity:
            self._items.popitem(last=False)


_MISSING = object()


def _refs(node: Any, out: set[bytes]) -> None:
    if type(node) is _Ref:
        out.add(node.digest)
    elif type(node) is dict:
        for v in node.values():
            _refs(v, out)
    elif type(node) is list:
        for v in node:
            _refs(v, out)


def _build(node: Any, resolved: dict[bytes, Any]) -> Any:
    if type(node) is _Ref:
        return resolved[node.digest]
    if type(node) is dict:
        return {k: _build(v, resolved) for k, v in node.items()}
    if type(node) is list:
        return [_build(v, resolved) for v in node]
    return node


class Rehydrator:
    """Skeletons back into JSON, the pieces fetched from ``texts`` through ``db`` (synchronous)."""

    def __init__(self, db: sqlite3.Connection, memo: Memo, where: object) -> None:
        self._db = db
        self._memo = memo
        self._where = where  # the database, as error messages name it

    def json_of(self, skeletons: Sequence[bytes], owners: Sequence[str]) -> list[bytes]:
        """Each skeleton as the JSON it was split from; ``owners`` name the rows (in a damage report)."""
        trees = [_unpack(s) for s in skeletons]
        resolved = self._resolve(trees, owners)
        return [_to_json(_build(t, resolved)) for t in trees]

    def _resolve(self, trees: Iterable[Any], owners: Sequence[str]) -> dict[bytes, Any]:
        wanted: set[bytes] = set()
        for tree in trees:
            _refs(tree, wanted)
        resolved: dict[bytes, Any] = {}
        raw: dict[bytes, Any] = {}  # pieces as stored (trees still holding references)
        while wanted:
            missing = []
            for key in wanted:
                value = self._memo.get(key)
                if value is _MISSING:
                    missing.append(key)
                else:
                    resolved[key] = value
            nested: set[bytes] = set()
            for key, kind, body in self._fetch(missing, owners):
                if kind == TEXT:
                    resolved[key] = body.decode("utf-8", "surrogatepass")
                    self._memo.put(key, resolved[key])
                else:
                    raw[key] = _unpack(body)
                    _refs(raw[key], nested)
            wanted = {k for k in nested if k not in resolved and k not in raw}
        for key in _bottom_up(raw):
            resolved[key] = _build(raw[key], resolved)
            self._memo.put(key, resolved[key])
        return resolved

    def _fetch(self, keys: list[bytes], owners: Sequence[str]) -> list[tuple[bytes, int, bytes]]:
        rows: list[tuple[bytes, int, bytes]] = []
        for start in range(0, len(keys), CHUNK):
            chunk = keys[start : start + CHUNK]
            rows += self._db.execute(
                f"SELECT digest, kind, body FROM texts WHERE digest IN ({','.join('?' * len(chunk))})", chunk
            ).fetchall()
        found = set()
        for key, kind, body in rows:
            if not isinstance(body, bytes) or digest(kind, body) != key:
                raise DamageError(f"{self._where}: damaged row in texts ({bytes(key).hex()}, needed by"
                                  f" {_owners(owners)}): its content does not match its digest;"
                                  " `reasonmed check --db` lists every damaged row")
            found.add(key)
        if len(found) < len(keys):
            lost = next(k for k in keys if k not in found)
            raise DamageError(f"{self._where}: a stored text is missing (texts {lost.hex()}, needed by"
                              f" {_owners(owners)}); `reasonmed check --db` lists every damaged row")
        return rows


def _owners(owners: Sequence[str]) -> str:
    return ", ".join(owners[:3]) + (f" and {len(owners) - 3} more" if len(owners) > 3 else "")


def _bottom_up(raw: dict[bytes, Any]) -> list[bytes]:
    """Tree pieces ordered so that each comes after the pieces it references."""
    order: list[bytes] = []
    seen: set[bytes] = set()

    def visit(key: bytes) -> None:
        if key in seen or key not in raw:
            return
        seen.add(key)
        inner: set[bytes] = set()
        _refs(raw[key], inner)
        for k in inner:
            visit(k)
        order.append(key)

    for key in raw:
        visit(key)
    return order
