"""Stored texts compressed with zstd (schema v4): a ``texts`` row's body, packed on the way in, unpacked on the way out.

A string piece's ``kind`` (``texts.TEXT``) gains the ``ZSTD`` bit when its
body is stored as one zstd frame (level 3, no dictionary) because that is at
least ``MIN_SAVING`` bytes smaller; otherwise the JSON is stored as it is.
Structs (``texts.TREE``: mostly field names and 25-byte references) gain zstd alone
little (measured x1.19 for 4 us each); since v6 they are coded against the
dictionary of shapes instead (``store/lexicon.py``: the ``LEXICON`` bit, x2.6).  The digest (the row's key) is always that of the uncompressed JSON, so
a text keeps its identity whatever its storage, a merge of shards still
de-duplicates by digest, and a damaged frame is found like a damaged body: it
does not decompress, or what comes out does not match the digest.

Measured on 1,000 PubMedQA questions (sim): strings x1.67, 6 us to compress
one, 3 us to decompress it (BENCHMARKS.md, issue 13).
"""

from __future__ import annotations

import sqlite3
import threading

import zstandard

from reasonmed_async.store import trained
from reasonmed_async.store.lexicon import is_squeezed, squeeze, unsqueeze

ZSTD = 0x10  # kind bit: the body is a zstd frame of the piece's JSON
LEXICON = 0x20  # kind bit (v6): the body is a zstd frame against the dictionary of shapes (``store/lexicon.py``)
PACKED_KINDS = frozenset({1})  # texts.TEXT (not imported: texts imports this module)
SHAPED_KINDS = frozenset({2})  # texts.TREE: field names and references, coded against the shapes
LEVEL = 3
MIN_BODY = 64  # bytes: shorter bodies are stored as they are (a frame's header costs ~10)
MIN_SAVING = 8  # bytes a frame must save to be stored instead
MAX_BODY = 64 << 20  # a frame claiming more than this is damaged (never allocated)

_local = threading.local()  # zstd contexts are not shared between threads (writer, reader)


def _contexts() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        ctx = _local.ctx = (zstandard.ZstdCompressor(level=LEVEL), zstandard.ZstdDecompressor())
    return ctx


def pack(kind: int, body: bytes) -> tuple[int, bytes]:
    """(stored kind, stored body) of a piece."""
    if kind in SHAPED_KINDS:
        frame = squeeze(body)
        return (kind, body) if frame is body else (kind | LEXICON, frame)
    if kind not in PACKED_KINDS or len(body) < MIN_BODY:
        return kind, body
    frame = _contexts()[0].compress(body)
    if len(frame) + MIN_SAVING > len(body):
        return kind, body
    return kind | ZSTD, frame


def unpack(kind: int, body: bytes, con: sqlite3.Connection | None = None) -> tuple[int, bytes] | None:
    """(kind, the piece's JSON) of a stored row; None if its frame is damaged.  (A frame that names a dictionary
    trained on the database, ``store/trained.py``, is read with it, found through ``con``.)"""
    if kind & LEXICON:
        body = unsqueeze(body, con) if is_squeezed(body) else b""  # (a frame that does not decompress: b"")
        return (kind & ~LEXICON, body) if body else None
    if not kind & ZSTD:
        return kind, body
    if trained.names_dictionary(body):
        out = trained.decompress(body, con)
        return None if out is None else (kind & ~ZSTD, out)
    try:
        size = zstandard.frame_content_size(body)
        if size < 0 or size > MAX_BODY:
            return None
        return kind & ~ZSTD, _contexts()[1].decompress(body)
    except zstandard.ZstdError:
        return None
