"""``reasonmed merge --out merged.db shard*.db``: the shards of one run, checked, as one database.

Refused (exit 2, one line) unless every shard holds the same run with the same
fingerprint (config digest, template hashes, input digest, N), every shard
0..N-1 is there exactly once and finished, and no question is in two shards.
The merged database is built under a temporary name and renamed into place,
so a crash never leaves a half-merged ``--out``.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path

from reasonmed_async.commands.summaries import SUMMARIES
from reasonmed_async.scale.flags import add_network_fs_flag
from reasonmed_async.scale.fsguard import guard_database_location
from reasonmed_async.scale.shard import META_PREFIX, Fingerprint
from reasonmed_async.store.merge import ShardFacts, merge_into, read_facts
from reasonmed_async.store.schema import STORE_SCHEMA_VERSION
from reasonmed_async.store.sql import StoreError


class MergeRefused(StoreError):
    """The shards do not make up one run (exit 2)."""


def check_shards(facts: list[ShardFacts]) -> list[Fingerprint]:
    """The shards' fingerprints in index order; ``MergeRefused`` naming the first shard (and field) that is off."""
    prints: list[Fingerprint] = []
    for f in facts:
        if f.schema_version is None:
            raise MergeRefused(f"{f.path}: not a reasonmed database")
        if f.schema_version != str(STORE_SCHEMA_VERSION):
            raise MergeRefused(f"{f.path}: store schema v{f.schema_version}, this build merges v{STORE_SCHEMA_VERSION}")
        if len(f.runs) != 1:
            raise MergeRefused(f"{f.path}: holds {len(f.runs)} runs; a shard holds exactly one")
        if f.fingerprint is None:
            raise MergeRefused(f"{f.path}: run {f.runs[0][0]} was not started with --shard")
        if f.runs[0][3] != "finished":
            raise MergeRefused(f"{f.path}: run {f.runs[0][0]} is unfinished: `reasonmed resume --db {f.path}` first")
        prints.append(Fingerprint.from_json(f.fingerprint))
    first = prints[0].agreeing()
    for f, p in zip(facts, prints):
        for field, value in p.agreeing().items():
            if value != first[field]:
                raise MergeRefused(f"{f.path}: {field} {value!r} differs from {facts[0].path}'s {first[field]!r}:"
                                   " not a shard of the same run")
    seen: dict[int, Path] = {}
    for f, p in zip(facts, prints):
        if p.index in seen:
            raise MergeRefused(f"{f.path} and {seen[p.index]} are both shard {p.index}/{p.count}")
        seen[p.index] = f.path
    missing = sorted(set(range(prints[0].count)) - set(seen))
    if missing:
        raise MergeRefused(f"shard(s) {', '.join(f'{i}/{prints[0].count}' for i in missing)} missing:"
                           " run them (`reasonmed run --shard i/N ...`) and merge every shard")
    owner: dict[str, Path] = {}
    for f in facts:
        for qid in sorted(f.question_ids):
            if qid in owner:
                raise MergeRefused(f"question {qid!r} is in both {owner[qid]} and {f.path}: overlapping shards")
            owner[qid] = f.path
    return sorted(prints, key=lambda p: p.index)


def merge_shards(out: Path, shards: list[Path]) -> tuple[int, int]:
    """Check and merge; (shards, questions) merged."""
    if out.exists():
        raise MergeRefused(f"{out} exists: merge writes a new database")
    for shard in shards:
        if not shard.is_file():
            raise MergeRefused(f"{shard}: no such database")
    facts = [read_facts(s) for s in shards]
    prints = check_shards(facts)
    by_index = {Fingerprint.from_json(f.fingerprint).index: f.path for f in facts if f.fingerprint}
    ordered = [by_index[p.index] for p in prints]
    run_id = prints[0].run_id
    merged = {"merged:" + run_id: json.dumps({"shards": prints[0].count,
                                              "from": [str(p) for p in ordered]})}
    partial = out.with_name(out.name + ".partial")
    for leftover in (partial, Path(f"{partial}-wal"), Path(f"{partial}-shm"), Path(f"{partial}-journal")):
        leftover.unlink(missing_ok=True)
    merge_into(partial, ordered, merged)
    os.replace(partial, out)
    return len(ordered), sum(len(f.question_ids) for f in facts)


async def _merge(args: argparse.Namespace) -> int:
    out = Path(args.out)
    guard_database_location(out, allow_network_fs=args.allow_network_fs)
    shards, questions = await asyncio.to_thread(merge_shards, out, [Path(s) for s in args.shards])
    print(f"merged {shards} shards ({questions} questions) into {out}: "
          f"`reasonmed export --db {out} --out DIR` writes the whole run's data", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    m = sub.add_parser("merge", help=SUMMARIES["merge"])
    m.add_argument("--out", required=True, help="the merged database to create")
    m.add_argument("shards", nargs="+", help="every shard's database")
    add_network_fs_flag(m)
    m.set_defaults(handler=_merge)


__all__ = ["META_PREFIX", "MergeRefused", "check_shards", "merge_shards", "register"]
