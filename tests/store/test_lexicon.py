"""Rows coded against the dictionary of shapes (schema v6, store/lexicon.py): smaller, given back byte for byte,
damage caught, the dictionary itself never changed; and the structs v6 keeps inline are never pieces."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest
import zstandard

from bus import Routed
from reasonmed_async.store.checkpoint import CheckpointStore
from reasonmed_async.store.lexicon import DICTIONARY, MAX_SIZE, is_squeezed, squeeze, unsqueeze
from reasonmed_async.store.packing import unpack
from reasonmed_async.store.reading import MESSAGE_COLUMNS
from reasonmed_async.store.texts import TREE
from test_texts import KEY, _flow

# a vLLM completion as the response cache stores it (its text already a marker), a verdict's skeleton less its
# envelope, and a path struct: the three kinds of rows v6 codes against the shapes
COMPLETION = (b'{"text":"\\u0000TQqSuS4MQaSc_mcNY","finish_reason":"stop","prompt_tokens":1312,"completion_tokens":'
              b'655,"reasoning_tokens":211,"latency_s":3.48,"endpoint":"http://10.0.0.7:8000/v1","backend":"vllm",'
              b'"cached":false,"more":[]}')
VERDICT = (b'"question":"\\u0000RI3Am93wCWnXDbm3R","path":"\\u0000RA3WCb5G9UAoq9zGp","verdict":"Error","reason":'
           b'"\\u0000T1NeR8mPmSlv3jwm0","attempt":0,"tier":"","error_reasons":[],"judge":{"role":"verify","model":'
           b'"llama-3.3-70b-instruct","backend":"vllm","temperature":1.0,"top_p":null,"seed":null,"template":'
           b'"6c1f0e2a9b3d","prompt_tokens":1840,"completion_tokens":96}')
PATH = (b'{"name":"qwen_2","cot":"\\u0000TnrG1RBCW81Gj5iC2","stated_answer":"B","thinking":"","origin":"generated",'
        b'"provenance":[{"role":"generate","model":"qwen2.5-72b-instruct","backend":"vllm","temperature":1.0,'
        b'"top_p":0.95,"seed":null,"template":"e6e407931582","prompt_tokens":702,"completion_tokens":388}],'
        b'"rewrites":[]}')


def test_the_dictionary_is_the_v6_one() -> None:
    """Every v6 database needs these very bytes to be read: changing one needs a new schema version."""
    assert hashlib.sha256(DICTIONARY).hexdigest() == "090f4b136824cf83b1509cecd9a326e3c6372ec03548c1170b17ec5071ea5ea9"


@pytest.mark.parametrize("value", [COMPLETION, VERDICT, PATH], ids=["completion", "verdict", "path"])
def test_a_row_is_smaller_and_comes_back_byte_for_byte(value: bytes) -> None:
    stored = squeeze(value)
    assert is_squeezed(stored)
    assert len(stored) * 2 < len(value), (len(stored), len(value))
    assert unsqueeze(stored) == value


@pytest.mark.parametrize("value", [b'"question":"\\u0000RI3Am93wCWnXDbm3R"', b"[]", b'{"a":1}'])
def test_a_row_a_frame_would_not_shrink_is_stored_as_it_is(value: bytes) -> None:
    assert squeeze(value) is value and unsqueeze(value) == value


def test_a_damaged_frame_reads_as_something_no_checksum_matches_never_raises() -> None:
    stored = squeeze(COMPLETION)
    for at in range(4, len(stored)):
        flipped = bytearray(stored)
        flipped[at] ^= 0x04
        assert unsqueeze(bytes(flipped)) != COMPLETION
    assert unsqueeze(stored[:-3]) == b""  # cut short: does not decompress
    too_big = zstandard.ZstdCompressor(level=1).compress(b" " * (MAX_SIZE + 1))  # claims more than MAX_SIZE:
    assert unsqueeze(too_big) == b""  # refused before anything that size is allocated


async def test_the_store_writes_frames_and_keeps_provenances_judgements_and_paths_inside_their_struct(tmp_path) -> None:
    db = tmp_path / "t.db"
    flow = _flow()
    completion = json.dumps({"text": "Final answer: A", "finish_reason": "stop", "prompt_tokens": 812,
                             "completion_tokens": 402, "endpoint": "http://127.0.0.1:1", "backend": "vllm"}).encode()
    async with await CheckpointStore.open(db) as store:
        await store.commit([Routed(m, ("next",)) for m in flow])
        await store.cache_put(KEY, "qwen2.5-72b-instruct", completion, "generate", "http://127.0.0.1:1", 812, 402)
    con = sqlite3.connect(db)
    try:
        payloads = [p for (p,) in con.execute("SELECT payload FROM messages UNION ALL SELECT payload FROM llm_cache")]
        structs = [unpack(kind, body)[1] for kind, body in con.execute(f"SELECT kind, body FROM texts WHERE kind & {TREE}")]
    finally:
        con.close()
    assert sum(map(is_squeezed, payloads)) >= len(flow)  # (the ingested question's row is too short for a frame)
    assert structs and all(json.loads(s) for s in structs)
    for shape, what in ((b'{"role":', "a provenance"), (b'[{"role":', "a tuple of provenances"),
                        (b'{"path":', "a judgement"), (b'[{"path":', "a tuple of judgements"),
                        (b'{"name":', "a path"), (b'[{"name":', "a tuple of paths")):
        assert not [s for s in structs if s.startswith(shape)], f"{what} was stored as a piece of its own"
    assert any(s.startswith(b'{"id":') for s in structs)  # a question is a piece: every message of it carries it
    async with await CheckpointStore.open(db, read_only=True) as store:
        loaded = await store.load(f"SELECT {MESSAGE_COLUMNS} FROM messages ORDER BY seq")
        assert [m for _, m in loaded] == flow
        assert json.loads(await store.cache_get(KEY)) == json.loads(completion)
