"""The SQLite checkpoint store: WAL, schema version, journal, group commit (the join: test_join.py; the LLM cache:
test_cache_accounting.py)."""

from __future__ import annotations

import asyncio
import random
import sqlite3

import pytest

from bus import Ack, Path, Question, QuestionIngested, RecordReady
from reasonmed_async.store.schema import STORE_SCHEMA_VERSION
from reasonmed_async.store.checkpoint import PAGE, CheckpointStore, StoreError
from reasonmed_async.store.reading import MESSAGE_COLUMNS
from reasonmed_async.outcome import StoreFull
from reasonmed_async.store.writer import StoreClosed
from store_support import PROV, RUN, count, cot, ingested, new, question, routed, rows

# -- lifecycle --------------------------------------------------------------------------------------

async def test_wal_mode_and_schema_version(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        assert (await rows(store, "PRAGMA journal_mode"))[0][0].lower() == "wal"
        assert await rows(store, "SELECT value FROM meta WHERE key='schema_version'") == [(str(STORE_SCHEMA_VERSION),)]
    # the mode is persistent: a plain connection sees it too
    with sqlite3.connect(tmp_path / "x.db") as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    con.close()


async def test_open_creates_parent_directories(tmp_path):
    path = tmp_path / "a" / "b" / "x.db"
    store = await CheckpointStore.open(path)
    await store.close()
    assert path.exists()


@pytest.mark.parametrize("version", [STORE_SCHEMA_VERSION + 1, 0, 42])
async def test_other_store_schema_version_is_refused(tmp_path, version):
    path = tmp_path / "x.db"
    store = await CheckpointStore.open(path)
    await store.close()
    con = sqlite3.connect(path)
    with con:
        con.execute("UPDATE meta SET value=? WHERE key='schema_version'", (str(version),))
    con.close()
    with pytest.raises(StoreError, match=f"v{version}"):
        await CheckpointStore.open(path)


async def test_reopen_same_version_keeps_data(tmp_path):
    path = tmp_path / "x.db"
    async with await CheckpointStore.open(path) as store:
        await store.commit([routed(ingested(1), "gen")])
    async with await CheckpointStore.open(path) as store:
        assert await count(store, "messages") == 1
        assert await rows(store, "SELECT value FROM meta WHERE key='schema_version'") == [(str(STORE_SCHEMA_VERSION),)]


async def test_submit_after_close_raises(tmp_path):
    store = await CheckpointStore.open(tmp_path / "x.db")
    await store.close()
    with pytest.raises(StoreClosed):
        await store.commit([routed(ingested(1), "gen")])


# -- journal ------------------------------------------------------------------------------------------

async def test_commit_returns_only_new_messages(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        a, b, c = ingested(1), ingested(2), ingested(3)
        assert new(await store.commit([routed(a, "gen"), routed(b, "gen")])) == [a, b]
        assert new(await store.commit([routed(b, "gen"), routed(c, "gen"), routed(a, "gen")])) == [c]
        assert await store.commit([routed(a, "gen")]) == []
        # the same message twice in one commit is new once
        d = ingested(4)
        assert new(await store.commit([routed(d, "gen"), routed(d, "gen")])) == [d]
        assert await count(store, "messages") == 4
        assert await count(store, "deliveries") == 4
        stored = await rows(store, "SELECT id, type, parent_id, schema_version FROM messages ORDER BY seq")
        assert [r[0] for r in stored] == [a.id, b.id, c.id, d.id]
        assert {r[1] for r in stored} == {"QuestionIngested"}
        loaded = await store.load(f"SELECT {MESSAGE_COLUMNS} FROM messages ORDER BY seq")
        assert [m for _, m in loaded] == [a, b, c, d]


async def test_concurrent_commits_of_one_message_deliver_it_once(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        m = ingested(1)
        results = await asyncio.gather(*(store.commit([routed(m, "gen", "other")]) for _ in range(10)))
        assert sum(len(r) for r in results) == 1
        assert await count(store, "messages") == 1
        assert await rows(store, "SELECT consumer, state FROM deliveries ORDER BY consumer") == [
            ("gen", "pending"), ("other", "pending")]


async def test_commit_with_ack_is_atomic_and_ack_is_final(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        q = ingested(1)
        await store.commit([routed(q, "gen", "audit")])
        out = [cot(1, "qwen_1"), cot(1, "qwen_2")]
        assert new(await store.commit([routed(m, "verify") for m in out], Ack(q.id, "gen"))) == out
        states = dict(await rows(store, "SELECT consumer, state FROM deliveries WHERE message_seq=(SELECT seq FROM messages WHERE id=?)", (q.id,)))
        assert states == {"gen": "done", "audit": "pending"}
        # a second ack (a redelivery failing this time) never reverts 'done'
        assert await store.commit([], Ack(q.id, "gen", ok=False)) == []
        assert dict(await rows(store, "SELECT consumer, state FROM deliveries WHERE message_seq=(SELECT seq FROM messages WHERE id=?)", (q.id,)))["gen"] == "done"
        await store.commit([], Ack(q.id, "audit", ok=False))
        assert dict(await rows(store, "SELECT consumer, state FROM deliveries WHERE message_seq=(SELECT seq FROM messages WHERE id=?)", (q.id,)))["audit"] == "failed"
        # an ack for a delivery that does not exist is a no-op
        await store.commit([], Ack("nope", "gen"))
        assert await count(store, "deliveries") == 4


async def test_an_ack_finds_its_delivery_whether_this_writer_stored_the_message_or_a_reopened_store_did(tmp_path):
    path = tmp_path / "x.db"
    state = "SELECT consumer, state FROM deliveries WHERE message_seq=(SELECT seq FROM messages WHERE id=?)"
    early, late = ingested(1), ingested(2)
    async with await CheckpointStore.open(path) as store:
        await store.commit([routed(early, "gen", "audit"), routed(late, "gen")])
        await store.commit([], Ack(late.id, "gen"))  # this writer stored it: found by its seq
        assert dict(await rows(store, state, (late.id,))) == {"gen": "done"}
    async with await CheckpointStore.open(path) as store:  # a resumed run: found by its message's id
        await store.commit([], Ack(early.id, "audit", ok=False))
        later = cot(1, "qwen_1")
        await store.commit([routed(later, "verify")], Ack(early.id, "gen"))
        await store.commit([], Ack(later.id, "verify"))
        assert dict(await rows(store, state, (early.id,))) == {"gen": "done", "audit": "failed"}
        assert dict(await rows(store, state, (later.id,))) == {"verify": "done"}
        assert await rows(store, "SELECT seq FROM messages ORDER BY seq") == [(1,), (2,), (3,)]


async def test_a_rolled_back_batch_gives_its_seqs_again_and_the_next_ones_follow_the_table(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        await store.commit([routed(ingested(1), "gen")])
        # one batch, rolled back whole and run again op by op: a new message (seq 2, given again) and a failing ack
        done = await asyncio.gather(store.commit([routed(ingested(2), "gen")]),
                                    store.commit([], Ack(ingested(1).id, None)), return_exceptions=True)
        assert new(done[0]) == [ingested(2)] and isinstance(done[1], sqlite3.IntegrityError)
        with pytest.raises(sqlite3.OperationalError):  # a failing operation alone in its batch: rolled back
            await store.execute("INSERT INTO no_such_table VALUES (1)")
        await store.execute("INSERT INTO meta(key, value) VALUES ('x', 'y')")
        await store.commit([routed(ingested(3), "gen")])
        await store.commit([], Ack(ingested(3).id, "gen"))
        assert await rows(store, "SELECT seq FROM messages ORDER BY seq") == [(1,), (2,), (3,)]
        assert await rows(store, "SELECT message_seq, state FROM deliveries ORDER BY message_seq") == [
            (1, "pending"), (2, "pending"), (3, "done")]


async def test_record_ready_fills_records_table(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        rr = RecordReady(run_id=RUN, question_id="q7", parent_id="s", question=question(7), tier="easy",
                         path=Path(name="qwen_2", cot="c"), response="yes", response_provenance=PROV,
                         record_id="rec-7")
        await store.commit([routed(rr)])
        await store.commit([routed(rr)])
        assert await rows(store, "SELECT record_id, run_id, question_id, ordinal, path, message_id FROM records") == [
            ("rec-7", RUN, "q7", 7, "qwen_2", rr.id)]
        assert await count(store, "deliveries") == 0  # routed to nobody


@pytest.mark.parametrize("n", [1, 50, 300])
async def test_group_commit_many_concurrent_commits_are_durable(tmp_path, n):
    path = tmp_path / "x.db"
    store = await CheckpointStore.open(path)
    try:
        messages = [ingested(i) for i in range(n)]
        results = await asyncio.gather(*(store.commit([routed(m, "gen")]) for m in messages))
        assert [new(r) for r in results] == [[m] for m in messages]
        assert store._committer.ops >= n
        if n >= 50:
            assert store._committer.batches < n  # grouped, not one transaction each
    finally:
        await store.close()
    async with await CheckpointStore.open(path) as store:
        assert await count(store, "messages") == n
        assert await rows(store, "SELECT COUNT(*) FROM deliveries WHERE state='pending'") == [(n,)]
        got = [m async for m in store.messages_of(RUN, ["QuestionIngested"])]
        assert got == messages


async def test_close_flushes_submitted_work(tmp_path):
    path = tmp_path / "x.db"
    store = await CheckpointStore.open(path)
    pending = [asyncio.ensure_future(store.commit([routed(ingested(i), "gen")])) for i in range(20)]
    await asyncio.sleep(0)
    await store.close()
    assert all(len(f.result()) == 1 for f in pending)
    async with await CheckpointStore.open(path) as store:
        assert await count(store, "messages") == 20


async def test_a_failing_operation_fails_alone_and_the_rest_of_its_batch_commits(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        good = [ingested(i) for i in range(3)]
        # all land in one batch: submitted before the writer task runs again
        bad = asyncio.ensure_future(store._committer.submit("no-such-op"))
        innocent = [asyncio.ensure_future(store.commit([routed(m, "gen")])) for m in good]
        done = await asyncio.gather(bad, *innocent, return_exceptions=True)
        assert isinstance(done[0], ValueError) and "no-such-op" in str(done[0])
        assert [new(d) for d in done[1:]] == [[m] for m in good], "the others were retried one by one and committed"
        assert await count(store, "messages") == 3
        # the writer survives: the next batch commits
        assert new(await store.commit([routed(ingested(9), "gen")])) == [ingested(9)]
        assert await count(store, "messages") == 4


async def test_a_database_that_cannot_grow_fails_commits_with_store_full_and_keeps_going(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        async with store._db.execute("PRAGMA page_count") as cur:
            (pages,) = await cur.fetchone()
        await store._db.execute(f"PRAGMA max_page_count={pages + 2}")
        # stems zstd cannot shrink (stored texts are compressed): each needs several pages of its own
        big = [Question(id=f"q{i}", stem=random.Random(i).randbytes(15_000).hex(), options=("a", "b"), answer=0)
               for i in range(4)]
        with pytest.raises(StoreFull, match=r"x\.db: the database cannot grow .*full") as raised:
            await asyncio.gather(*(store.commit([routed(QuestionIngested(run_id=RUN, question_id=q.id, question=q),
                                                        "gen")]) for q in big))
        assert raised.value.exit_code == 4
        await store._db.execute("PRAGMA max_page_count=1073741823")  # space freed: the same writer commits again
        assert new(await store.commit([routed(ingested(1), "gen")])) == [ingested(1)]


async def test_duplicate_run_fails_the_caller(tmp_path):
    run = {"id": RUN, "input_path": "in.jsonl", "input_digest": "d", "config_digest": "c", "config_json": "{}",
           "questions": 1}
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        await store.create_run(run, [("q1", 0, "generic")], [routed(ingested(1), "gen")])
        assert await rows(store, "SELECT id, status, questions FROM runs") == [(RUN, "running", 1)]
        assert await count(store, "questions") == 1
        with pytest.raises(sqlite3.IntegrityError):
            await store.create_run(run, [("q2", 1, "generic")], [routed(ingested(2), "gen")])
        assert await count(store, "questions") == 1
        assert await count(store, "messages") == 1
        await store.finish_run(RUN)
        assert (await rows(store, "SELECT status FROM runs"))[0][0] == "finished"


# -- backlog / pending ----------------------------------------------------------------------------

async def test_backlog_and_pending_in_seq_order_up_to_watermark(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        n = PAGE + 44  # more than one page
        messages = [ingested(i) for i in range(n)]
        await store.commit([routed(m, "gen", "odd" if i % 2 else "even") for i, m in enumerate(messages)])
        for m in messages[:10]:
            await store.commit([], Ack(m.id, "gen"))
        backlog = await store.backlog()
        assert backlog.counts == {"gen": n - 10, "odd": n // 2, "even": n - n // 2}
        assert backlog.total == sum(backlog.counts.values())
        assert backlog.watermark == (await rows(store, "SELECT MAX(message_seq) FROM deliveries"))[0][0]
        # committed after the backlog was taken: beyond the watermark
        late = ingested(10_000)
        await store.commit([routed(late, "gen")])
        gen = [m async for _, m in store.pending("gen", backlog.watermark)]
        assert gen == messages[10:]
        assert [m async for _, m in store.pending("odd", backlog.watermark)] == messages[1::2]
        assert [m async for _, m in store.pending("even", backlog.watermark)] == messages[0::2]
        assert [m async for _, m in store.pending("nobody", backlog.watermark)] == []
        watermark2 = (await store.backlog()).watermark
        assert [m async for _, m in store.pending("gen", watermark2)] == messages[10:] + [late]


async def test_pending_skips_deliveries_acknowledged_while_iterating(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        messages = [ingested(i) for i in range(PAGE * 2 + 5)]
        await store.commit([routed(m, "gen") for m in messages])
        wm = (await store.backlog()).watermark
        seen = []
        async for _, m in store.pending("gen", wm):
            seen.append(m)
            if len(seen) == 1:
                # ack the first message of the second page before it is read
                await store.commit([], Ack(messages[PAGE].id, "gen"))
        assert seen == messages[:PAGE] + messages[PAGE + 1:]


async def test_empty_backlog(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        backlog = await store.backlog()
        assert backlog.counts == {} and backlog.watermark == 0 and backlog.total == 0


async def test_one_process_drives_a_database_at_a_time(tmp_path):
    from pathlib import Path as FsPath

    from reasonmed_async.config import load_config
    from reasonmed_async.pipeline import Pipeline

    config = load_config(FsPath(__file__).resolve().parents[2] / "examples" / "sim.toml")
    db = tmp_path / "x.db"
    async with Pipeline.open(config, db):
        with pytest.raises(StoreError, match=r"in use by another reasonmed process \(pid \d+\)"):
            async with Pipeline.open(config, db):
                pass
        async with Pipeline.open(config, db, models=set(), agents=False):  # scoring and the like need no lock
            pass
    async with Pipeline.open(config, db):  # released on close
        pass
