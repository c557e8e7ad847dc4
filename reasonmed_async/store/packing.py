"""Stored texts compressed with zstd (schema v4): a ``texts`` row's body, packed on the way in, unpacked on the way out.

A string piece's ``kind`` (``texts.TEXT``) gains the ``ZSTD`` bit when its
body is stored as one zstd frame (level 3, no dictionary) because that is at
least ``MIN_SAVING`` bytes smaller; otherwise the JSON is stored as it is.
Structs (``texts.TREE``: mostly field names and 25-byte references) are stored
as they are: measured x1.19 for 4 us each, two thirds of the compressions for a
fifth of the bytes saved (a reader still unpacks one a writer compressed).  The digest (the row's key) is always that of the uncompressed JSON, so
a text keeps its identity whatever its storage, a merge of shards still
de-duplicates by digest, and a damaged frame is found like a damaged body: it
does not decompress, or what comes out does not match the digest.

Measured on 1,000 PubMedQA questions (sim): strings x1.67, 6 us to compress
one, 3 us to decompress it (BENCHMARKS.md, issue 13).
"""

from __future__ import annotations

import threading

import zstandard

ZSTD = 0x10  # kind bit: the body is a zstd frame of the piece's JSON
PACKED_KINDS = frozenset({1})  # texts.TEXT (not imported: texts imports this module)
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
    if kind not in PACKED_KINDS or len(body) < MIN_BODY:
        return kind, body
    frame = _contexts()[0].compress(body)
    if len(frame) + MIN_SAVING > len(body):
        return kind, body
    return kind | ZSTD, frame


def unpack(kind: int, body: bytes) -> tuple[int, bytes] | None:
    """(kind, the piece's JSON) of a stored row; None if its frame is damaged."""
    if not kind & ZSTD:
        return kind, body
    try:
        size = zstandard.frame_content_size(body)
        if size < 0 or size > MAX_BODY:
            return None
        return kind & ~ZSTD, _contexts()[1].decompress(body)
    except zstandard.ZstdError:
        return None
