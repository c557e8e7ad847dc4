"""The response cache keyed by its key's first 8 bytes (schema v8, ``store/cache_key.py``): a key that shares them
with a stored key of another call is a miss, never that call's answer; nothing is overwritten; a damaged key is
damage, and ``check`` names the row by its whole key."""

from __future__ import annotations

import hashlib
import sqlite3

import pytest

from e2e_support import run_cli
from fault_support import TIMEOUT_S
from reasonmed_async.store.cache_key import CACHE_KEY, split_key
from reasonmed_async.store.checkpoint import CheckpointStore
from reasonmed_async.store.errors import DamageError
from store_support import rows


def _key(name: str) -> str:
    """A cache key as ``ChatRequest.cache_key`` makes one: a SHA-256 hex digest."""
    return hashlib.sha256(name.encode()).hexdigest()


def _same_prefix(key: str) -> str:
    """Another call's key with the same first 8 bytes (what a SHA-256 prefix collision would give)."""
    rest = hashlib.sha256(b"another call" + key.encode()).hexdigest()[16:]
    return key[:16] + rest


def test_split_key_round_trips_through_the_sql_of_the_whole_key() -> None:
    con = sqlite3.connect(":memory:")
    for key in (_key("a"), _key("b"), "80" + "0" * 62, "0" * 64, "f" * 64, "7f" + "f" * 62):
        rowid, rest = split_key(key)
        assert -(2**63) <= rowid < 2**63 and len(rest) == 24
        assert con.execute(f"SELECT {CACHE_KEY} FROM (SELECT ? AS key, ? AS rest)", (rowid, rest)).fetchone() == (key,)


async def test_a_key_sharing_the_first_8_bytes_is_a_miss_and_overwrites_nothing(tmp_path) -> None:
    first = _key("the verifier's call")
    other = _same_prefix(first)
    assert other != first and split_key(other)[0] == split_key(first)[0]
    path = tmp_path / "x.db"
    async with await CheckpointStore.open(path) as store:
        await store.cache_put(first, "model-a", b'{"text":"first"}', "verify", "http://e", 10, 4)
        assert await store.cache_get(other) is None  # never the first call's answer
        await store.cache_put(other, "model-b", b'{"text":"other"}', "verify", "http://e", 7, 3)
        assert await store.cache_get(other) is None  # not stored: its rowid is taken (paid again if asked again)
        assert await store.cache_get(first) == b'{"text":"first"}'
        assert await rows(store, "SELECT COUNT(*) FROM llm_cache") == [(1,)]
        assert await rows(store, "SELECT outcome, calls FROM calls ORDER BY model") == [("ok", 1), ("ok", 1)]
    async with await CheckpointStore.open(path) as store:  # and so after a reopen (the rows, not a memo)
        assert await store.cache_get(first) == b'{"text":"first"}'
        assert await store.cache_get(other) is None
    check = run_cli("check", "--db", path, timeout=TIMEOUT_S)
    assert check.returncode == 0, check.stdout + check.stderr


async def test_a_damaged_rest_of_a_key_is_damage_to_a_look_up_and_check_names_the_row(tmp_path) -> None:
    """The row is found by its rowid and verified before its whole key is compared: a damaged rest fails its
    checksum (exit 5 naming it), never a silent miss that pays the call again over a damaged file."""
    key = _key("a summary")
    path = tmp_path / "x.db"
    async with await CheckpointStore.open(path) as store:
        await store.cache_put(key, "model-a", b'{"text":"a summary"}', "summarize", "http://e", 10, 4)
    rowid, rest = split_key(key)
    damaged = bytes([rest[0] ^ 0x01]) + rest[1:]
    con = sqlite3.connect(path)
    with con:
        con.execute("UPDATE llm_cache SET rest=? WHERE key=?", (damaged, rowid))
    con.close()
    seen = key[:16] + damaged.hex()  # the key the row now holds: the one it is named by
    async with await CheckpointStore.open(path) as store:
        with pytest.raises(DamageError, match=f"damaged row in llm_cache \\({seen}"):
            await store.cache_get(key)
    check = run_cli("check", "--db", path, timeout=TIMEOUT_S)
    assert check.returncode == 5, check.stdout + check.stderr
    assert f"llm_cache row {seen}" in check.stdout, check.stdout
