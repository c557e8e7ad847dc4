"""The request's cache key is the stored cache's key: pinned, so a database's cached calls keep matching.

The body is hashed in pieces shorter than 2,048 bytes (so hashlib keeps the GIL): the digests below were
made by the code that hashed it whole (main at cf87421), across the piece boundaries."""

from __future__ import annotations

import pytest

from agents.llm import ChatMessage, ChatRequest

SYSTEM = "You are a medical expert. Think step by step."
PROMPT = "Does aspirin reduce the risk of colorectal adenoma? Options: A) yes B) no C) maybe. Résumé: " * 100


@pytest.mark.parametrize(("chars", "key"), [
    (100, "d7ebaf964d7a021e72d026c9e90f9344e49dd252285ab2e6f73f26207b52a65b"),
    (1990, "1be00af794d4f32052d63688a09d3bdc999162e330a362f2cdb515ee288a79ca"),
    (2100, "4ee53e8c28acfe76b6643ed4ada5b4286895d177e61cccc75141137f1a79ec35"),
    (4096, "2ec8568a85083ac154c635d9cce11b727da02070a45044ce14269c47f5b5c7fa"),
    (6000, "046349c86a43c23a1c9e6c9747fa77257e90588698109c0dcbda2d0827839d14"),
])
def test_cache_keys_are_those_main_stored(chars, key):
    req = ChatRequest(model="qwen2.5-72b-instruct", messages=(ChatMessage("system", SYSTEM),
                      ChatMessage("user", PROMPT[:chars])), temperature=0.7, top_p=0.9, max_tokens=8192, sample=3,
                      meta={"task": "generate"})
    assert req.cache_key() == key
