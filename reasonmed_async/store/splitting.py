"""Splitting payloads into a skeleton and pieces (the write side of ``texts.py``), each piece hashed once.

The bus hands the writer the same objects again and again: a question is
carried by ~26 messages, a path by its verdict, tier, ranking and record, a
provenance by every message its call produced, a long string (a verdict's
reason, a response) by a message and then by the structs built from it.  So the
``Splitter`` remembers what it split, in bounded maps: structs and tuples by
identity (the very object passed on: no hashing at all) and structs by value
(an equal copy, e.g. a message read back from the journal), long strings by
value.  A remembered split hands back its skeleton node without walking,
encoding or hashing anything; its pieces join the batch's only until a
transaction that stored them has committed (``transaction_ended``), after which
they are known to be in ``texts`` and are not handed to SQLite again.

What comes out is byte for byte what a fresh walk writes (tests/store/
test_splitting.py): the memo changes the cost, never the format.
"""

from __future__ import annotations

import base64
from enum import Enum
from typing import Any

import msgspec

from bus import Message, Path, Provenance
from bus.messages import Judgement, RewriteInput

from reasonmed_async.store.texts import MIN_TEXT, MIN_TREE, TEXT, TREE, Pieces, _to_json, digest

_LETTER = {TEXT: "\x00T", TREE: "\x00R"}
_from_json = msgspec.json.decode
_b64 = base64.urlsafe_b64encode
_to_builtins = msgspec.to_builtins
_astuple = msgspec.structs.astuple
_Struct = msgspec.Struct
_SCALARS = frozenset({int, float, bool, type(None)})
_LEAVES = frozenset({Provenance})  # structs of scalars and short strings only: to_builtins does them at once
# structs kept in the struct that holds them, never pieces of their own (v6): each is held by one or two others
# (a call's provenance by its path or message, a judgement by its tier's list, a rewrite's input by its path), so
# as a piece each cost a row, a random index entry and a marker more than the bytes it saved; inline, the
# dictionary of shapes (store/lexicon.py) codes them in a few bytes; so is a tuple of them (a path's provenances,
# a tier's judgements, a path's rewrites), held by its one struct.  A path too (schema v8 still: only the writer's choice changed): held by
# two or three messages (its CoT, its verdict, its tier's or ranking's list, its record), its texts (the CoT, the
# thinking) pieces all the same, so what is repeated is a name, two markers and its provenances, which the row's
# dictionary codes in a few bytes; as a piece it cost a row and a random entry of the texts' digest index, the one
# the writer's commits spend most on (1,000 sim questions: 9,489 path pieces; inline, the database 5.9 % smaller
# and 9 % fewer WAL writes)
_INLINE = frozenset({Provenance, Judgement, RewriteInput, Path})


class _Split:
    """A remembered split: the skeleton node (a marker or an inline value) and every piece under it.
    ``stored``: a transaction that inserted those pieces has committed (they are in ``texts``)."""

    __slots__ = ("out", "pieces", "stored")

    def __init__(self, out: Any, pieces: Pieces) -> None:
        self.out = out
        self.pieces = pieces
        self.stored = False


class Splitter:
    """Splits payloads, remembering (bounded) what it split lately: see the module's docstring.

    ``learns``: the writer's splitter, told by ``transaction_ended`` which pieces are now stored; without it
    (a migration, a test) every piece is handed back each time, as ``INSERT OR IGNORE`` needs nothing more.

    ``capacity`` bounds each map's entries (1,024; was 4,096): an entry holds its text or struct alive with the
    JSON of its pieces, so at 4,096 the maps took ~7 MiB of a run's RSS once full — a 1,000-question run ended
    before they filled, a long one did not (peak RSS 66 vs 72 MiB, 1k vs 200k questions); at 1,024 they fill in
    the first seconds of any run (59 vs 56 MiB), for 13 % more misses (a miss re-encodes and re-hashes what it
    splits: no CPU difference measured, 0.97 x over 3 pairs).  Bounded by count, not bytes: with real 3-5 KB
    CoTs the maps hold ~10-20 MiB at most, a fixed cost reached early, never a growth over a long run."""

    def __init__(self, capacity: int = 1024, stored_capacity: int = 20_000, *, learns: bool = False) -> None:
        self.capacity = capacity
        self._same: dict[int, tuple[object, _Split]] = {}  # id -> (the object, kept alive; its split)
        self._seen: dict[_Struct, _Split] = {}  # by value (frozen structs hash and compare in C)
        self._strings: dict[str, _Split] = {}
        self._learns = learns
        self._handed: list[_Split] = []  # remembered splits whose pieces this transaction inserts
        # loose digests known to be in ``texts`` (their transaction committed): not inserted again.  Bounded at
        # 20,000 (~2 MiB): at 200,000 this set was ~14 MiB of a 50k-question run's peak RSS (92 -> 78 MiB) for
        # no measured CPU gain (a forgotten digest costs one INSERT OR IGNORE of an existing row)
        self._stored: set[bytes] = set()
        self._stored_capacity = stored_capacity
        self._pending: set[bytes] = set()

    # -- what is stored ----------------------------------------------------------
    def new_pieces(self, pieces: Pieces) -> list[tuple[bytes, int, bytes]]:
        """The rows of ``pieces`` not known to be stored; they count as stored once the transaction commits."""
        stored = self._stored
        rows = [(key, kind, body) for key, (kind, body) in pieces.items() if key not in stored]
        self._pending.update(r[0] for r in rows)
        return rows

    def transaction_ended(self, committed: bool) -> None:
        if committed:
            if len(self._stored) + len(self._pending) > self._stored_capacity:
                self._stored.clear()  # forgetting costs only an INSERT OR IGNORE of an existing row
            self._stored |= self._pending
            for split in self._handed:
                split.stored = True
        self._pending.clear()
        self._handed.clear()

    def _use(self, split: _Split, pieces: Pieces) -> Any:
        if not split.stored:  # (stored ones cost nothing: their rows are in ``texts``)
            pieces.update(split.pieces)
            if self._learns:
                self._handed.append(split)
        return split.out

    # -- splitting ---------------------------------------------------------------
    # (The hot paths inline what ``_conv`` and ``_use`` do for the common values — a short string, a scalar, a
    # long string, the very struct or tuple split before — saving a call per value: the writer splits ~10 values
    # a message.  What comes out is the same.)
    def message(self, message: Message, schema_version: int, pieces: Pieces) -> bytes:
        """A message's skeleton: its envelope as the bus's codec writes it, with its pieces taken out."""
        fields = self._fields(message, pieces, {"type": type(message).__struct_config__.tag})
        return _to_json({"v": schema_version, "m": fields})

    def json(self, payload: bytes, pieces: Pieces) -> bytes:
        """The skeleton of a JSON object (a cached completion)."""
        return _to_json(self.fields(_from_json(payload), pieces))

    def fields(self, tree: dict[str, Any], pieces: Pieces) -> dict[str, Any]:
        """An object given as builtins, its values split (its top level stays in the row)."""
        out = {}
        conv = self._conv
        for k, x in tree.items():
            t = type(x)
            if t is str:
                out[k] = x if len(x) < MIN_TEXT and not x.startswith("\x00") else self._text(x, pieces)
            elif t in _SCALARS:
                out[k] = x
            else:
                out[k] = conv(x, pieces)
        return out

    def _fields(self, v: _Struct, pieces: Pieces, out: dict[str, Any] | None = None) -> dict[str, Any]:
        if out is None:
            out = {}
        conv, same = self._conv, self._same
        for f, x in zip(v.__struct_fields__, _astuple(v)):
            t = type(x)
            if t is str:
                out[f] = x if len(x) < MIN_TEXT and not x.startswith("\x00") else self._text(x, pieces)
            elif t in _SCALARS:
                out[f] = x
            else:
                hit = same.get(id(x))
                if hit is not None and hit[0] is x:  # the very object split before
                    split = hit[1]
                    out[f] = split.out if split.stored else self._use(split, pieces)
                else:
                    out[f] = conv(x, pieces)
        return out

    def _conv(self, v: Any, pieces: Pieces) -> Any:
        t = type(v)
        if t is str:
            if len(v) < MIN_TEXT and not v.startswith("\x00"):
                return v
            return self._text(v, pieces)
        if t in _SCALARS:
            return v
        if t is tuple or isinstance(v, _Struct):
            same = self._same.get(id(v))
            if same is not None and same[0] is v:  # the very object split before: nothing to walk or hash
                split = same[1]
                return split.out if split.stored else self._use(split, pieces)
            if t is tuple:
                return self._remember(v, self._tuple(v), pieces)
            return self._struct(v, pieces)
        if isinstance(v, Enum):
            return v.value
        if t is list:
            return _fit([self._conv(x, pieces) for x in v], pieces)
        if t is dict:
            return _fit({k: self._conv(x, pieces) for k, x in v.items()}, pieces)
        return v

    def _struct(self, v: _Struct, pieces: Pieces) -> Any:
        try:
            split = self._seen.get(v)
        except TypeError:  # a field that does not hash (a dict): split it each time
            return _fit(self._fields(v, pieces), pieces)
        if split is None:
            if type(v) in _LEAVES:
                split = _leaf(v)
            if split is None:
                own: Pieces = {}
                node = self._fields(v, own)
                split = _Split(node if type(v) in _INLINE else _fit(node, own), own)
            if len(self._seen) >= self.capacity:
                del self._seen[next(iter(self._seen))]  # the oldest
            self._seen[v] = split
        return self._remember(v, split, pieces)

    def _tuple(self, v: tuple[Any, ...]) -> _Split:
        own: Pieces = {}
        conv = self._conv
        node = [conv(x, own) for x in v]
        return _Split(node if v and _INLINE.issuperset(map(type, v)) else _fit(node, own), own)

    def _remember(self, v: object, split: _Split, pieces: Pieces) -> Any:
        if len(self._same) >= self.capacity:
            self._same.clear()  # (the entries hold their objects, so an id is never reused while listed)
        self._same[id(v)] = (v, split)
        return split.out if split.stored else self._use(split, pieces)

    def _text(self, v: str, pieces: Pieces) -> str:
        split = self._strings.get(v)
        if split is None:
            own: Pieces = {}
            split = _Split(_piece(TEXT, _to_json(v), own), own)
            if len(self._strings) >= self.capacity:
                self._strings.clear()
            self._strings[v] = split
        return split.out if split.stored else self._use(split, pieces)


def _piece(kind: int, body: bytes, pieces: Pieces) -> str:
    key = digest(kind, body)
    pieces[key] = (kind, body)
    return _LETTER[kind] + _b64(key).decode()


def _fit(node: Any, pieces: Pieces) -> Any:
    body = _to_json(node)
    return node if len(body) < MIN_TREE else _piece(TREE, body, pieces)


def _leaf(v: _Struct) -> _Split | None:
    """A struct of scalars and short strings, converted in C; None if a string in it needs a piece."""
    node = _to_builtins(v)
    body = _to_json(node)
    if b"\\u0000" in body:
        return None
    if type(v) in _INLINE:
        return _Split(node, {})
    own: Pieces = {}
    return _Split(node if len(body) < MIN_TREE else _piece(TREE, body, own), own)


def split_envelope(envelope: dict[str, Any], pieces: Pieces) -> bytes:
    """The skeleton of a message envelope (``{"v": version, "m": message}``) given as builtins."""
    return _to_json({"v": envelope["v"], "m": Splitter().fields(envelope["m"], pieces)})
