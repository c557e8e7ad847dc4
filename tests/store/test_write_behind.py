"""Write-behinds (``Batcher.submit_behind``: an LLM call's cache entry, a call count): nobody awaits them, so
they are committed no later than anything submitted after them, and one that fails takes down every write
submitted after it (its submitter has moved on: what follows may depend on it)."""

from __future__ import annotations

import asyncio
import hashlib
import random
import sqlite3
import traceback

import pytest

from bus import Ack, Question, QuestionIngested
from reasonmed_async.outcome import StoreFull
from reasonmed_async.store.checkpoint import CheckpointStore
from store_support import RUN, count, ingested, new, routed


def _key(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


def _plain(db, sql: str) -> list[tuple]:
    """What a fresh connection (another process, a resume) reads: only what is committed."""
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


async def test_a_write_behind_is_committed_before_the_ack_written_after_it_returns(tmp_path):
    db = tmp_path / "x.db"
    async with await CheckpointStore.open(db) as store:
        await store.commit([routed(ingested(1), "gen")])
        stored = store.cache_put(_key("k"), "m", b'{"text":"a CoT"}', "generate", "http://e", 10, 4)
        assert not stored.done()  # handed on before it is committed ...
        await store.commit([routed(ingested(2), "next")], Ack(ingested(1).id, "gen"))
        assert stored.done() and stored.exception() is None  # ... and committed by the time the ack is
        assert _plain(db, "SELECT COUNT(*) FROM llm_cache") == [(1,)]
        assert _plain(db, "SELECT state FROM deliveries WHERE consumer='gen'") == [("done",)]
        assert _plain(db, "SELECT outcome, calls, prompt_tokens FROM calls") == [("ok", 1, 10)]


async def test_a_failed_write_behind_fails_the_writes_after_it_and_the_ones_before_commit(tmp_path):
    db = tmp_path / "x.db"
    async with await CheckpointStore.open(db) as store:
        # one batch: submitted before the writer task runs again; the second operation fails alone
        before = asyncio.ensure_future(store.commit([routed(ingested(0), "gen")]))
        await asyncio.sleep(0)  # ``before`` submitted
        behind = store._committer.submit_behind("no-such-op")
        after = asyncio.ensure_future(store.commit([routed(ingested(1), "gen")]))
        done = await asyncio.gather(before, after, return_exceptions=True)
        assert new(done[0]) == [ingested(0)], "what was submitted before it still commits"
        assert isinstance(done[1], ValueError) and "no-such-op" in str(done[1])
        assert behind.exception() is done[1]
        with pytest.raises(ValueError, match="no-such-op"):  # and so does every later write of this store
            await store.commit([routed(ingested(2), "gen")])
        with pytest.raises(ValueError, match="no-such-op"):
            store.cache_put(_key("k"), "m", b"{}", "generate", "", 0, 0)
        assert await count(store, "messages") == 1
    async with await CheckpointStore.open(db) as store:  # reopened (a resume): it writes again
        assert new(await store.commit([routed(ingested(1), "gen")])) == [ingested(1)]
        assert await count(store, "messages") == 2


async def test_a_write_behind_that_cannot_grow_the_database_stops_the_store_with_store_full(tmp_path):
    db = tmp_path / "x.db"
    async with await CheckpointStore.open(db) as store:
        await store.commit([routed(ingested(0), "gen")])
        async with store._db.execute("PRAGMA page_count") as cur:
            (pages,) = await cur.fetchone()
        await store._db.execute(f"PRAGMA max_page_count={pages + 2}")
        # a completion zstd cannot shrink: it needs several pages of its own
        text = random.Random(1).randbytes(15_000).hex()
        stored = store.cache_put(_key("big"), "m", b'{"text":"%s"}' % text.encode(), "generate", "http://e", 1, 1)
        question = Question(id="q9", stem="stem?", options=("a", "b"), answer=0)
        with pytest.raises(StoreFull) as raised:  # the ack written after it fails with it
            await store.commit([routed(QuestionIngested(run_id=RUN, question_id="q9", question=question), "next")],
                               Ack(ingested(0).id, "gen"))
        assert raised.value.exit_code == 4 and isinstance(stored.exception(), StoreFull)
        await store._db.execute("PRAGMA max_page_count=1073741823")  # space freed: still nothing more is written,
        with pytest.raises(StoreFull):  # since the cache entry is lost
            await store.commit([], Ack(ingested(0).id, "gen"))
    assert _plain(db, "SELECT COUNT(*) FROM llm_cache") == [(0,)]
    assert _plain(db, "SELECT state FROM deliveries") == [("pending",)]  # the message is delivered again on resume


async def test_a_write_behind_whose_waiter_was_cancelled_still_fails_what_follows_it(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        behind = store._committer.submit_behind("no-such-op")
        waiter = asyncio.ensure_future(behind)  # awaiting a write-behind is optional; cancelling that wait ...
        await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert behind.cancelled()
        with pytest.raises(ValueError, match="no-such-op"):  # ... does not unsubmit the write, nor its failure
            await store.commit([routed(ingested(1), "gen")])
        assert await count(store, "messages") == 0


async def test_the_writes_refused_after_a_failed_write_behind_keep_its_traceback_as_it_was(tmp_path):
    # A daemon whose write-behind failed may refuse many writes before it stops: each refusal raises the same
    # error, and a plain re-raise would add its frames to that error's traceback every time (a leak).
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        store._committer.submit_behind("no-such-op")
        with pytest.raises(ValueError):
            await store.commit([routed(ingested(1), "gen")])
        depths = []
        for _ in range(20):
            try:
                store.cache_put(_key("k"), "m", b"{}", "generate", "", 0, 0)
            except ValueError as exc:
                frames = [f.name for f in traceback.extract_tb(exc.__traceback__)]
                depths.append(len(frames))
        assert len(depths) == 20 and depths[-1] == depths[0]
        assert "apply_batch" in frames  # and it still shows where the write failed, not only the refusal
