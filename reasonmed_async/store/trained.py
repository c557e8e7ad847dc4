"""Dictionaries trained on a database's own texts (schema v7): the reading side.

zstd codes a short record poorly on its own: a 700-byte CoT or a 300-byte
verdict reason shares its words with every other one, but a frame sees only
itself.  So once a run has stored enough of them, the writer trains a zstd
dictionary on them (``store/coding.py``), stores it in ``dictionaries`` and
codes later rows against it.  A frame coded so names its dictionary in its
header (zstd's dictionary id, derived by zstd from the dictionary's content);
a frame coded without one — plain zstd (``packing.py``) or against the fixed
dictionary of shapes (``lexicon.py``), which are written without an id — has
none, so no row needs a flag to say which it is.

Reading needs the dictionary: ``decompress`` finds it by id in a process-wide
registry, loading the database's ``dictionaries`` (through the connection the
row was read from) the first time an id is unknown.  A dictionary whose body
does not match its digest is never registered, so the rows coded against it
read as damaged (``b""`` / ``None``, which no checksum or digest matches), and
``check`` names the dictionary row too.  Two different dictionaries with one id
(zstd's ids are 31-bit hashes) are refused, never confused: ``DamageError``.
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading

import zstandard

from reasonmed_async.store.errors import DamageError

STRINGS, ROWS = 1, 2  # ``dictionaries.role``: stored strings (texts.TEXT); message payloads and cached completions
MAGIC = b"\x28\xb5\x2f\xfd"  # a zstd frame's first four bytes (no JSON value starts with 0x28)
FIRST_ID, LAST_ID = 32768, (1 << 31) - 1  # the ids zstd leaves to trained dictionaries
MAX_SIZE = 64 << 20  # a frame claiming more than this is damaged (never allocated)

# fastCover with fixed parameters: ~6 ms on 1,000 strings, where zstd's search of k and d took ~100 ms for ratios
# within 2 % (measured on the sim's strings and rows and on PubMedQA texts; BENCHMARKS.md, issue 13, fifth pass)
_FASTCOVER = {"k": 1024, "d": 8, "f": 16, "accel": 4}
_registry: dict[int, bytes] = {}  # dictionary id -> its body (zstd's ids derive from the content)
_lock = threading.Lock()
_local = threading.local()  # decompressors by id, per thread (zstd contexts are not shared between threads)


def dictionary_digest(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=16, person=b"reasonmed-dict").digest()


def names_dictionary(stored: bytes) -> bool:
    """Is ``stored`` a zstd frame that names a dictionary in its header (the frame header descriptor's
    Dictionary_ID_flag)?"""
    return stored[:4] == MAGIC and len(stored) > 4 and stored[4] & 3 != 0


def dictionary_id(body: bytes) -> int:
    """The id zstd wrote into a trained dictionary (and into every frame coded against it)."""
    return zstandard.ZstdCompressionDict(body).dict_id()


def register(body: bytes) -> int:
    """Make ``body`` (a trained dictionary) known to every reader in this process; its id."""
    ident = dictionary_id(body)
    with _lock:
        known = _registry.get(ident)
        if known is not None and known != body:
            raise DamageError(f"two different zstd dictionaries share the id {ident}: the databases cannot be read"
                              " in one process (retrain one: `reasonmed migrate` of a copy)")
        _registry[ident] = body
    return ident


def is_known(ident: int) -> bool:
    return ident in _registry


def body_of(ident: int) -> bytes:
    return _registry[ident]


def train(size: int, samples: list[bytes], level: int) -> bytes:
    """A ``size``-byte zstd dictionary trained on ``samples`` (deterministic for the same samples), its id free in
    this process: on the rare id another dictionary already has (31-bit hashes), trained again with the next id."""
    body = zstandard.train_dictionary(size, samples, level=level, **_FASTCOVER).as_bytes()
    ident = dictionary_id(body)
    while ident in _registry and _registry[ident] != body:
        ident = FIRST_ID + (ident + 1 - FIRST_ID) % (LAST_ID - FIRST_ID)
        body = zstandard.train_dictionary(size, samples, level=level, dict_id=ident, **_FASTCOVER).as_bytes()
    return body


def load(con: sqlite3.Connection) -> list[tuple[int, int]]:
    """Register the dictionaries of the database on ``con`` (those whose body matches its digest and id):
    (role, id) of each, oldest first."""
    try:
        rows = con.execute("SELECT id, role, digest, body FROM dictionaries ORDER BY rowid").fetchall()
    except sqlite3.OperationalError:  # a database older than v7 (read by a migration): none
        return []
    found = []
    for ident, role, digest, body in rows:
        if _sound(ident, digest, body):
            found.append((role, register(body)))
    return found


def damaged_dictionaries(con: sqlite3.Connection) -> list[int]:
    """The ids of ``dictionaries`` rows whose body does not match its digest or its id (for ``check``)."""
    try:
        rows = con.execute("SELECT id, digest, body FROM dictionaries").fetchall()
    except sqlite3.OperationalError:
        return []
    return [ident for ident, digest, body in rows if not _sound(ident, digest, body)]


def _sound(ident: object, digest: object, body: object) -> bool:
    """Does a ``dictionaries`` row's body match its digest and the id zstd wrote into it?"""
    if not isinstance(body, bytes) or digest != dictionary_digest(body):
        return False
    try:
        return dictionary_id(body) == ident
    except zstandard.ZstdError:
        return False


def decompress(frame: bytes, con: sqlite3.Connection | None) -> bytes | None:
    """The content of a frame that names a dictionary; None if it is damaged or its dictionary is not there."""
    try:
        params = zstandard.get_frame_parameters(frame)
    except zstandard.ZstdError:
        return None
    if params.content_size < 0 or params.content_size > MAX_SIZE:
        return None
    if params.dict_id not in _registry and con is not None:
        load(con)
    ctx = _decompressor(params.dict_id)
    if ctx is None:
        return None
    try:
        return ctx.decompress(frame)
    except zstandard.ZstdError:
        return None


def _decompressor(ident: int) -> zstandard.ZstdDecompressor | None:
    cache = getattr(_local, "by_id", None)
    if cache is None:
        cache = _local.by_id = {}
    ctx = cache.get(ident)
    if ctx is None:
        body = _registry.get(ident)
        if body is None:
            return None
        ctx = cache[ident] = zstandard.ZstdDecompressor(dict_data=zstandard.ZstdCompressionDict(body))
    return ctx
