"""Skeletons compressed against a fixed dictionary of their own shapes (schema v6).

What is left of a message, a cached completion or a struct once its texts are
pieces (``texts.py``) is mostly the same field names, the same short values and
the same marker prefixes, row after row: ``{"text":"\\u0000T…","finish_reason":
"stop","prompt_tokens":449,…}``.  zstd alone cannot find that repetition in a
200-byte row; given ``DICTIONARY`` — one example of each shape, as raw content —
it codes each row as references into it plus what is the row's own (its
markers' digests, its numbers).  Measured on 1,000 PubMedQA questions (sim):
messages' payloads x1.9, cached completions x4.5, struct pieces x2.7, for
~1.8 us to compress a row and ~0.4 us to decompress it (BENCHMARKS.md, issue 13).

A stored value is a zstd frame exactly when it starts with zstd's magic
number: no JSON starts with that byte, so a row ``squeeze`` left as it was (not
worth a frame) needs no flag.  The checksums and digests stay those of the
JSON; a frame that does not decompress reads back as ``b""``, which no checksum
or digest matches, so damage is found as before.

``DICTIONARY`` is part of the v6 format: every v6 database needs these very
bytes to be read (tests/store/test_lexicon.py pins their digest).  A new shape
is coded fine without it, only less tightly; changing a byte needs a new schema
version.
"""

from __future__ import annotations

import sqlite3
import threading

import zstandard

from reasonmed_async.store import trained

MAGIC = trained.MAGIC  # a zstd frame's first four bytes
LEVEL = 3
MIN_SAVING = 4  # bytes a frame must save to be stored instead of the JSON
MAX_SIZE = 64 << 20  # a frame claiming more than this is damaged (never allocated)

_SHAPES = (  # one of each, rarest first: zstd reaches the end of a dictionary at the smallest cost
    rb'"stage":"generate","kind":"truncated","message":"finish_reason=length after 45 tokens","error_class":"",'
    rb'"attempts":1,"path":"qwen_2","raw":"","failed_type":"QuestionIngested","gate":null',
    rb'"stage":"verify","kind":"unparseable","message":"","error_class":"","attempts":3,"path":"","raw":"",'
    rb'"failed_type":"CoTGenerated","gate":"judge"',
    rb'"target_id":"","score":7,"justification":"\u0000T","provenance":"\u0000R"',
    rb'{"attempt":1,"origin":"refined","source_path":"huatuo_3","cot_before":"\u0000T","reasons":"\u0000R","resent":""}',
    rb'{"id":"pubmedqa-21645374","stem":"\u0000T","options":["yes","no","maybe"],"answer":0,"source":"pubmedqa",'
    rb'"context":"\u0000T","ordinal":0,"duplicate_ids":[]}',
    rb'"question":"\u0000R","tier":"medium","path":"\u0000R","source_path":"huatuo_3","attempt":1,'
    rb'"error_reasons":"\u0000R"',
    rb'"question":"\u0000R","tier":"easy","chosen":["\u0000R","\u0000R"],"reasons":"\u0000R","error_reasons":[],'
    rb'"called":true,"provenance":"\u0000R","ranker":"model","raw":[]',
    rb'"question":"\u0000R","tier":"easy","errors":0,"correct":"\u0000R","judgements":"\u0000R"',
    rb'"question":"\u0000R","tier":"difficult","path":"\u0000R","response":"\u0000T","response_provenance":'
    rb'"\u0000R","record_id":"pubmedqa-21645374/deepseek_2","steps":6,"warnings":[]',
    rb'"question":"\u0000R","tier":"easy","path":"\u0000R","response":"\u0000T","provenance":"\u0000R",'
    rb'"verdict_reason":""',
    rb'["\u0000R","\u0000R","\u0000R","\u0000R","\u0000R","\u0000R","\u0000R","\u0000R","\u0000R"]',
    rb'{"text":"\u0000T","finish_reason":"length","prompt_tokens":1024,"completion_tokens":512,'
    rb'"reasoning_tokens":300,"latency_s":1.25,"endpoint":"http://127.0.0.1:8000/v1","backend":"vllm",'
    rb'"cached":false,"more":[{"text":"\u0000T","finish_reason":"stop"}]}',
    rb'{"path":"deepseek_1","verdict":"Error","reason":"\u0000T","stage":"verify","kind":null,'
    rb'"model":"deepseek-r1-distill-llama-70b","temperature":0.7,"stated_answer":"A","judge":"\u0000R"}',
    rb'"question":"\u0000R","path":"\u0000R","verdict":"Correct","reason":"\u0000T","attempt":0,"tier":"",'
    rb'"error_reasons":[],"judge":"\u0000R"',
    rb'{"name":"qwen_1","cot":"\u0000T","stated_answer":"A","thinking":"","origin":"generated","provenance":'
    rb'["\u0000R"],"rewrites":[]}',
    rb'{"role":"generate","model":"qwen2.5-72b-instruct","backend":"sim","temperature":0.7,"top_p":0.9,'
    rb'"seed":null,"template":"e6e407931582","prompt_tokens":449,"completion_tokens":119}',
    rb'"question":"\u0000R","path":"\u0000R"',
    rb'{"text":"\u0000T","finish_reason":"stop","prompt_tokens":449,"completion_tokens":119,"reasoning_tokens":0,'
    rb'"latency_s":0.0,"endpoint":"sim://local","backend":"sim","cached":false,"more":[]}',
)
DICTIONARY = b"".join(_SHAPES)

_local = threading.local()  # zstd contexts are not shared between threads (writer, reader)


def _contexts() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdDecompressor]:
    ctx = getattr(_local, "ctx", None)
    if ctx is None:
        shapes = zstandard.ZstdCompressionDict(DICTIONARY, dict_type=zstandard.DICT_TYPE_RAWCONTENT)
        shapes.precompute_compress(level=LEVEL)
        ctx = _local.ctx = (
            zstandard.ZstdCompressor(level=LEVEL, dict_data=shapes, write_checksum=False, write_content_size=True,
                                     write_dict_id=False),
            zstandard.ZstdDecompressor(dict_data=shapes))
    return ctx


def squeeze(value: bytes) -> bytes:
    """What a row stores of ``value`` (JSON): a frame if that is smaller by ``MIN_SAVING``, else ``value``."""
    frame = _contexts()[0].compress(value)
    return frame if len(frame) + MIN_SAVING <= len(value) else value


def is_squeezed(stored: bytes) -> bool:
    return stored[:4] == MAGIC


def unsqueeze(stored: bytes, con: sqlite3.Connection | None = None) -> bytes:
    """The JSON a row's ``stored`` value stands for; ``b""`` for a damaged frame (no checksum matches it).
    A frame that names a dictionary was coded against one trained on the database (``store/trained.py``),
    found through ``con`` the first time."""
    if stored[:4] != MAGIC:
        return stored
    if trained.names_dictionary(stored):
        return trained.decompress(stored, con) or b""
    try:
        size = zstandard.frame_content_size(stored)
        if size < 0 or size > MAX_SIZE:
            return b""
        return _contexts()[1].decompress(stored)
    except zstandard.ZstdError:
        return b""
