"""The tierer's join in the checkpoint store: ``gather`` waits for the expected items, once, across a reopen."""

from __future__ import annotations

import asyncio

import pytest

from reasonmed_async.store.checkpoint import CheckpointStore, StoreError
from store_support import count, cot, routed


async def test_gather_waits_for_expected_distinct_items_and_survives_reopen(tmp_path):
    path = tmp_path / "x.db"
    items = [cot(1, f"p{i}") for i in range(4)]
    async with await CheckpointStore.open(path) as store:
        await store.commit([routed(m, "tier") for m in items])  # the bus only delivers journalled messages
        assert await store.gather("k", "p0", items[0], 4) is None
        assert await store.gather("k", "p0", items[0], 4) is None  # same item twice counts once
        assert await store.gather("k", "p1", items[1], 4) is None
        assert await store.gather("other", "p2", items[2], 1) == [items[2]]  # keys are separate
    async with await CheckpointStore.open(path) as store:
        assert await store.gather("k", "p2", items[2], 4) is None
        assert await store.gather("k", "p2", items[2], 4) is None
        assert await store.gather("k", "p3", items[3], 4) == items  # ordered by item_id
        # redelivered after completion: the same full answer again
        assert await store.gather("k", "p1", items[1], 4) == items
        assert await count(store, "joins") == 5


async def test_gather_concurrent_items_complete_exactly_once(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        items = [cot(2, f"p{i}") for i in range(9)]
        await store.commit([routed(m, "tier") for m in items])
        results = await asyncio.gather(*(store.gather("q2", f"p{i}", m, 9) for i, m in enumerate(items)))
        complete = [r for r in results if r is not None]
        assert complete == [items]


async def test_gather_of_a_message_not_in_the_journal_fails(tmp_path):
    async with await CheckpointStore.open(tmp_path / "x.db") as store:
        known, unknown = cot(3, "p0"), cot(3, "p1")
        await store.commit([routed(known, "tier")])
        assert await store.gather("k", "p0", known, 2) is None
        with pytest.raises(StoreError, match="not in the journal"):
            await store.gather("k", "p1", unknown, 2)
        # rolled back: committing it and gathering again completes the join
        await store.commit([routed(unknown, "tier")])
        assert await store.gather("k", "p1", unknown, 2) == [known, unknown]


async def test_gather_hands_back_the_items_it_was_given_and_the_journal_s_where_they_differ(tmp_path):
    path = tmp_path / "x.db"
    items = [cot(4, f"p{i}") for i in range(3)]
    other = cot(5, "p1")  # an item id given twice with another message: the journal keeps the first
    async with await CheckpointStore.open(path) as store:
        await store.commit([routed(m, "tier") for m in [*items, other]])
        assert await store.gather("k", "p0", items[0], 3) is None
        assert await store.gather("k", "p1", items[1], 3) is None
        assert await store.gather("k", "p1", other, 3) is None
        done = await store.gather("k", "p2", items[2], 3)
        assert done == items
        assert done[0] is items[0] and done[2] is items[2]  # held, not read back
        assert done[1] is not other  # the journal's item p1 is items[1], read back
    async with await CheckpointStore.open(path) as store:  # a resumed run holds nothing: all read back
        again = await store.gather("k", "p2", items[2], 3)
        assert again == items and again[0] is not items[0]
