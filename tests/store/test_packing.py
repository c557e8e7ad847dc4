"""zstd on stored pieces (store/packing.py): what is compressed and how, that it round-trips, that damage is caught."""

from __future__ import annotations

import msgspec
import pytest
import zstandard

from reasonmed_async.store.packing import LEXICON, MAX_BODY, ZSTD, pack, unpack
from reasonmed_async.store.texts import TEXT, TREE, digest

COT = ("<think>Hmm, B is tempting, but the key finding points elsewhere. Check C.</think>\n"
       "1. Restate the question: We must pick the single best answer among the listed options for this clinical"
       " scenario.\n2. Key clinical details: Key details are the age, the time course and the abnormal results,"
       " which together suggest a metabolic cause in roughly 54% of patients.\n3. Evaluate each option: A) explains"
       " every feature of the presentation. B) is the strongest alternative.\n6. Conclusion: option A.\nFinal answer: A")
PATH = {"name": "qwen_1", "model": "qwen2.5-72b-instruct", "temperature": 0.7,
        "cot": "\u0000TQqSuS4MQaSc_mcNY", "answer": "A", "provenance": "\u0000RTCy2kRdgVhGaQnRF"}


@pytest.mark.parametrize("kind,value,how", [
    (TEXT, COT, ZSTD),  # a CoT: compressed on its own
    (TEXT, "Correct", 0),  # short: never tried
    (TREE, PATH, LEXICON),  # a struct: coded against the dictionary of shapes (v6)
    (TREE, ["x"], 0),  # too short for a frame to save anything
])
def test_what_is_compressed_and_that_it_comes_back(kind, value, how):
    body = msgspec.json.encode(value)
    stored_kind, stored = pack(kind, body)
    assert stored_kind & (ZSTD | LEXICON) == how
    assert (len(stored) < len(body)) is bool(how)
    assert unpack(stored_kind, stored) == (kind, body)
    assert digest(*unpack(stored_kind, stored)) == digest(kind, body)  # the row's key is that of the JSON


def test_a_damaged_frame_is_caught_not_raised():
    kind, frame = pack(TEXT, msgspec.json.encode(COT))
    flipped = bytearray(frame)
    flipped[len(flipped) // 2] ^= 0x04
    out = unpack(kind, bytes(flipped))  # either it does not decompress, or its digest no longer matches
    assert out is None or digest(*out) != digest(TEXT, msgspec.json.encode(COT))
    assert unpack(kind, b"not a frame") is None
    # a frame whose header claims more than MAX_BODY is refused before anything that size is allocated
    too_big = zstandard.ZstdCompressor(level=1).compress(b"\0" * (MAX_BODY + 1))
    assert zstandard.frame_content_size(too_big) == MAX_BODY + 1
    assert unpack(kind, too_big) is None


def test_a_damaged_struct_frame_is_caught_not_raised():
    body = msgspec.json.encode(PATH)
    kind, frame = pack(TREE, body)
    for at in range(4, len(frame)):  # every byte after the magic number, one at a time
        flipped = bytearray(frame)
        flipped[at] ^= 0x04
        out = unpack(kind, bytes(flipped))
        assert out is None or digest(*out) != digest(TREE, body)
    assert unpack(kind, b"not a frame") is None
