"""``run``, ``resume`` and ``retry``: the commands that drive a run (``drive.py``)."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from reasonmed_async.commands.common import UsageError, existing_db
from reasonmed_async.commands.drive import drive
from reasonmed_async.config import AppConfig, load_config
from reasonmed_async.corrected_config import config_to_resume
from reasonmed_async.exit_codes import ExitCode
from reasonmed_async.loaders.dedup import describe_duplicates
from reasonmed_async.loaders.stream import QuestionSource
from reasonmed_async.logs.setup import configure_for
from reasonmed_async.pipeline import RunConflict, file_digest, stored_config
from reasonmed_async.run_guards import preflight_for, with_budget
from reasonmed_async.scale import batch_cli as _batch_command
from reasonmed_async.scale.fsguard import guard_database_location
from reasonmed_async.scale.shard_run import prepare_shard, resumed_config
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore


async def run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if args.limit is not None and args.limit < 1:
        raise UsageError("--limit must be >= 1")
    # validated whole now, read again while it is ingested: the questions are never all in memory
    questions = QuestionSource(args.input, limit=args.limit, source_format=args.source_format,
                               allow_test_split=args.allow_test_split, cop_base=args.cop_base,
                               merge_duplicates=not args.keep_duplicates, limits=config.input_limits())
    if questions.duplicates:
        print(f"reasonmed: {args.input}: {describe_duplicates(questions.duplicates)} (--keep-duplicates keeps them)",
              file=sys.stderr)
    db = Path(args.db)
    guard_database_location(db, allow_network_fs=args.allow_network_fs)
    digest = file_digest(args.input)
    try:
        config, questions = await prepare_shard(args, config, questions, digest, db)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    configure_for(config, db)
    if args.ingest_only:  # no call is made: no server needs to be up
        return await _batch_command.ingest_only(config, db, questions, str(args.input), digest, args.limit)
    await preflight_for(args, config)  # before the database is even opened
    return await drive(config, db, (questions, str(args.input), digest, args.limit), args)


async def resume(args: argparse.Namespace) -> int:
    db = existing_db(args.db)
    guard_database_location(db, allow_network_fs=args.allow_network_fs)

    async def config_of(store: CheckpointStore) -> AppConfig:
        try:
            config = await config_to_resume(store, await stored_config(store), getattr(args, "config", None))
            return with_budget(args, await resumed_config(store, config))
        except RunConflict as exc:  # nothing to resume: say why (a WAL gone missing; failures left to retry)
            if store.notices:
                raise RunConflict(f"{exc}; {'; '.join(store.notices)}") from None
            if failed := await queries.failure_count(store):
                raise RunConflict(f"{exc}; {failed} failure(s) remain: `reasonmed retry --db {db}` re-issues"
                                  " them") from None
            raise

    return await drive(config_of, db, None, args)  # the store is opened once, by the pipeline


async def retry(args: argparse.Namespace) -> int:
    """``reasonmed retry``: failed deliveries pending again (``store/reissue.py``), then driven to the end."""
    from reasonmed_async.store.lock import OwnerLock
    from reasonmed_async.store.reissue import reissue

    db = existing_db(args.db)
    if args.max_tokens is not None and args.max_tokens < 1:
        raise UsageError("--max-tokens must be >= 1")
    if OwnerLock(db).held_elsewhere():
        raise UsageError(f"{db} is being driven by another reasonmed process: stop it first")
    async with await CheckpointStore.open(db):  # a database of this build (its schema checked, reissues there)
        pass
    done = await asyncio.to_thread(reissue, db, stage=args.stage, kind=args.kind, question=args.question,
                                   max_tokens=args.max_tokens)
    if not done.failures:
        print(f"reasonmed: {db}: no failure matches; nothing to retry", file=sys.stderr)
        return ExitCode.OK
    print(f"reasonmed: {done.describe()}", file=sys.stderr)
    return await resume(args)
