"""The LLM cache and the call accounting in the checkpoint store: a round trip across a reopen, the calls table's
counts, and two answers to one key (the first kept, both counted)."""

from __future__ import annotations

import asyncio
import hashlib

from reasonmed_async.store.checkpoint import CheckpointStore
from store_support import rows


def _key(name: str) -> str:
    """A cache key as ``ChatRequest.cache_key`` makes one: a SHA-256 hex digest."""
    return hashlib.sha256(name.encode()).hexdigest()


async def test_cache_round_trip_and_call_accounting(tmp_path):
    path = tmp_path / "x.db"
    async with await CheckpointStore.open(path) as store:
        assert await store.cache_get(_key("k1")) is None
        await store.cache_put(_key("k1"), "model-a", b'{"text":"hi"}', "generate", "http://e", 10, 5)
        await store.cache_put(_key("k2"), "model-a", b'{"text":"yo"}', "generate", "http://e", 7, 3)
        await store.cache_put(_key("k3"), "model-b", b'{"x":1}', "verify", "", 1, 1)
        await store.count_call("generate", "model-a", "", "error:ServerError", 0, 0)
        await store.count_call("generate", "model-a", "", "error:ServerError", 0, 0)
        assert await store.cache_get(_key("k1")) == b'{"text":"hi"}'
    async with await CheckpointStore.open(path) as store:
        assert await store.cache_get(_key("k2")) == b'{"text":"yo"}'
        calls = await rows(store, "SELECT stage, model, endpoint, outcome, calls, prompt_tokens, completion_tokens"
                                  " FROM calls ORDER BY stage, model, outcome")
        assert calls == [
            ("generate", "model-a", "", "error:ServerError", 2, 0, 0),
            ("generate", "model-a", "http://e", "ok", 2, 17, 8),
            ("verify", "model-b", "", "ok", 1, 1, 1),
        ]


async def test_concurrent_answers_to_one_key_store_the_first_and_count_both(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        await asyncio.gather(  # one group commit
            store.cache_put(_key("k"), "m", b'{"text":"first"}', "verify", "http://e", 10, 4),
            store.cache_put(_key("k"), "m", b'{"text":"second"}', "verify", "http://e", 11, 5),
            store.count_call("verify", "m", "http://e", "ok", 1, 1),
        )
        assert await store.cache_get(_key("k")) == b'{"text":"first"}'
        assert await rows(store, "SELECT outcome, calls, prompt_tokens, completion_tokens FROM calls ORDER BY outcome") \
            == [("duplicate", 1, 11, 5), ("ok", 2, 11, 5)]
