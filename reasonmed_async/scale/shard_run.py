"""The I/O around a sharded run: ``run --shard i/N [--quota-share F]`` selects, records; ``resume`` re-applies."""

from __future__ import annotations

import argparse
from fractions import Fraction
from pathlib import Path

from agents.prompts import Templates
from bus.messages import Question

from reasonmed_async.config import AppConfig
from reasonmed_async.pipeline import RunConflict, run_id_for
from reasonmed_async.scale.shard import (META_PREFIX, Fingerprint, parse_share, parse_shard, select,
                                         templates_digest, with_quota_share)
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore


async def prepare_shard(args: argparse.Namespace, config: AppConfig, questions: list[Question], input_digest: str,
                        db: Path) -> tuple[AppConfig, list[Question]]:
    """The config and questions of this shard (unchanged without ``--shard``); the fingerprint recorded in ``db``.

    ``ValueError`` for a bad ``--shard`` / ``--quota-share``; ``RunConflict`` if ``db`` holds another shard."""
    if args.shard is None:
        if args.quota_share is not None:
            raise ValueError("--quota-share goes with --shard")
        return config, questions
    shard = parse_shard(args.shard)
    share = parse_share(args.quota_share) if args.quota_share is not None else Fraction(1, shard.count)
    run_id = run_id_for(input_digest, config.digest, args.limit)
    fingerprint = Fingerprint(run_id, config.digest, templates_digest(Templates.load(config.templates_dir).hashes()),
                              input_digest, shard.count, shard.index, str(share))
    async with await CheckpointStore.open(db, synchronous=config.synchronous) as store:
        key = META_PREFIX + run_id
        stored = await queries.meta_value(store, key)
        if stored is not None and stored != fingerprint.to_json():
            was = Fingerprint.from_json(stored)
            raise RunConflict(f"{db} holds shard {was.index}/{was.count} of run {run_id} (quota share"
                              f" {was.quota_share}); each shard needs its own database")
        await store.execute("INSERT OR IGNORE INTO meta(key, value) VALUES (?, ?)", (key, fingerprint.to_json()))
    return with_quota_share(config, share), select(questions, shard)


async def resumed_config(store: CheckpointStore, config: AppConfig) -> AppConfig:
    """The stored config of the unfinished run with its shard's quota share applied again (if it is a shard)."""
    for run_id, _digest in await queries.unfinished_run_digests(store):
        stored = await queries.meta_value(store, META_PREFIX + run_id)
        if stored is not None:
            return with_quota_share(config, Fraction(Fingerprint.from_json(stored).quota_share))
    return config
