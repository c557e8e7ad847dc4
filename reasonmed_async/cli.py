"""The ``reasonmed`` command: run, resume, status, export, and the commands registered below.

Exit codes (``exit_codes.ExitCode``, the same for every command): 0 done, 1 internal
error, 2 bad usage / input / config / failed preflight, 3 completed with failed
questions, 4 stopped but resumable, 5 damage found, 130 / 143 interrupted by
SIGINT / SIGTERM with work left.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from bus import first_stop
from reasonmed_async.cli_errors import classify, quiet_broken_pipe, report_internal
from reasonmed_async.config import AppConfig, load_config
from reasonmed_async.exit_codes import HELP as EXIT_CODES_HELP
from reasonmed_async.exit_codes import ExitCode
from reasonmed_async.outcome import RunStopped
from reasonmed_async.reports.atomic import export_atomically
from reasonmed_async.loaders.dedup import describe_duplicates
from reasonmed_async.loaders.dispatch import SOURCE_FORMATS
from reasonmed_async.loaders.stream import QuestionSource
from reasonmed_async.run_guards import cap_stop_reason, preflight_for, stop_at_cap, with_budget
from reasonmed_async.llm.preflight import PreflightFailed
from reasonmed_async.logs import tail as logtail
from reasonmed_async.logs.setup import configure_for
from reasonmed_async.reports.scoring import register as _register_score
from reasonmed_async.reports.report.command import register as _register_report
from reasonmed_async.decontam.command import register as _register_decontam
from reasonmed_async.evaluate.command import register as _register_eval
from reasonmed_async.llm.credentials import reload_all
from reasonmed_async.pipeline import ConfigFromStore, Pipeline, RunConflict, file_digest, stored_config
from reasonmed_async import signals
from reasonmed_async.reports.outcome import settle
from reasonmed_async.scale import batch_cli as _batch_command, merge as _merge_command
from reasonmed_async.scale.fsguard import add_network_fs_flag, guard_database_location
from reasonmed_async.scale.shard_run import add_scale_flags, prepare_shard, resumed_config
from reasonmed_async.reports.status import read_status, render
from reasonmed_async.store import queries
from reasonmed_async.store.check_command import register as _register_check
from reasonmed_async.store.checkpoint import CheckpointStore

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = ExitCode.OK, ExitCode.INTERNAL, ExitCode.USAGE


class UsageError(Exception):
    """Bad arguments or bad input: exit 2."""


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="reasonmed", description="Build ReasonMed-style medical CoT data, resumably.",
                                epilog=EXIT_CODES_HELP)
    p.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start a run: ingest questions and process them to the end")
    run.add_argument("--config", required=True, help="TOML configuration (see examples/)")
    run.add_argument("--input", required=True, help="questions: generic JSON/JSONL or PubMedQA ori_pqal.json")
    run.add_argument("--db", default="reasonmed.db", help="checkpoint database (default: reasonmed.db)")
    run.add_argument("--limit", type=int, default=None, help="only the first N questions")
    run.add_argument("--source-format", choices=SOURCE_FORMATS, default=None,
                     help="input format (default: detected from the content)")
    run.add_argument("--allow-test-split", action="store_true",
                     help="accept a file that looks like a test split (the paper never generated from them)")
    run.add_argument("--cop-base", type=int, choices=(0, 1), default=None,
                     help="MedMCQA: whether `cop` counts from 0 (Hugging Face) or 1 (official release)")
    run.add_argument("--keep-duplicates", action="store_true",
                     help="keep questions whose normalised text, options and answer repeat an earlier one"
                          " (default: merged into it, both ids in its records)")
    resume = sub.add_parser("resume", help="continue the unfinished run of a database after a crash or stop")
    resume.add_argument("--db", required=True)
    resume.add_argument("--max-cost-usd", type=float, help="raise (or set) the run's [budget] max_cost_usd")
    resume.add_argument("--max-tokens", type=int, help="raise (or set) the run's [budget] max_tokens")
    retry = sub.add_parser("retry", help="make failed work pending again, re-issue its failing calls, and finish")
    retry.add_argument("--db", required=True)
    retry.add_argument("--stage", help="only failures of this stage (generate, verify, rank, refine, ...)")
    retry.add_argument("--kind", help="only failures of this kind (call_failed, unparseable, truncated, ...)")
    retry.add_argument("--question", help="only the failures of this question id")
    retry.add_argument("--max-tokens", type=int, help="send the re-issued calls with this max_tokens (truncations)")
    status = sub.add_parser("status", help="per stage and per tier progress of a database")
    status.add_argument("--db", required=True)
    status.add_argument("--watch", action="store_true", help="redraw live until every run is finished")
    status.add_argument("--every", type=float, default=2.0, help="seconds between redraws with --watch")
    status.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    exp = sub.add_parser("export", help="write the ReasonMed / CoTMed / ResponseMed files and records.jsonl")
    exp.add_argument("--db", required=True)
    exp.add_argument("--out", required=True, help="a new or empty directory (written whole, then swapped in)")
    exp.add_argument("--force", action="store_true", help="replace the contents of a non-empty --out")
    exp.add_argument("--run", dest="run_id", default=None,
                     help="export this run only (default: every question once, from the latest run that settled it)")
    exp.add_argument("--exclude-contaminated", action="store_true",
                     help="leave out the questions `reasonmed decontam` flagged")
    for name, handler in COMMANDS.items():
        sub.choices[name].set_defaults(handler=handler)
    add_scale_flags(run, resume, retry)  # --allow-network-fs, --shard, --quota-share, --ingest-only
    for register in EXTRA_COMMANDS:
        register(sub)  # each adds its subparser with set_defaults(handler=async fn(args) -> exit code)
    for command in sub.choices.values():
        command.epilog = EXIT_CODES_HELP
    for name in (n for n in PREFLIGHT_COMMANDS if n in sub.choices):
        sub.choices[name].add_argument("--no-preflight", action="store_true",
                                       help="skip the one cheap request per model and endpoint made before starting")
    return p


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("reasonmed-async")
    except PackageNotFoundError:
        return "unknown (not installed)"


def _existing_db(path: str) -> Path:
    db = Path(path)
    if not db.is_file():
        raise UsageError(f"{db}: no such database")
    return db




async def _drive(config: AppConfig | ConfigFromStore, db: Path,
                 start: tuple[QuestionSource, str, str, int | None] | None, args: argparse.Namespace) -> int:
    """``config`` may be read from the store the pipeline opens (resume)."""
    stop = asyncio.Event()
    opened: list[Pipeline] = []  # SIGHUP re-reads its backends' key files (none: it stops the run)
    received = signals.install(stop, reload_keys=lambda: bool(opened) and reload_all(opened[0].backends))
    async with Pipeline.open(config, db) as pipeline:
        opened.append(pipeline)
        from_store = not isinstance(config, AppConfig)
        if from_store:  # resume: the run's own, read from the store
            config = pipeline.config
            configure_for(config, db)
        for notice in pipeline.store.notices:
            print(f"reasonmed: warning: {notice}", file=sys.stderr)
        if from_store:
            await preflight_for(args, config)  # before anything more is delivered
        driven = [r.id for r in await queries.runs(pipeline.store) if r.status == "running"]
        if "sim" in pipeline.backend_types:
            print("reasonmed: using the SIMULATED LLM backend (sim): the data is synthetic", file=sys.stderr)
        if start is not None:
            questions, input_path, digest, limit = start
            run_id = await pipeline.start_run(questions, input_path, digest, limit)
            driven.append(run_id)
            print(f"reasonmed: run {run_id}: {len(questions)} questions from {input_path}", file=sys.stderr)
        async with asyncio.TaskGroup() as tg:
            if sys.stderr.isatty():
                from rich.console import Console

                from reasonmed_async.reports.progress import watch

                ticker = tg.create_task(watch(pipeline.store, pipeline.config, console=Console(stderr=True)))
            else:
                ticker = tg.create_task(_progress(pipeline))
            cap = pipeline.spend_cap
            if cap is not None and cap.reached:
                stop.set()  # already spent when it started: deliver nothing
            capper = tg.create_task(stop_at_cap(cap, stop)) if cap is not None else None
            done = await pipeline.drive(stop)
            ticker.cancel()
            if capper is not None:
                capper.cancel()
        report = await read_status(pipeline.store, config)
        outcome = await settle(pipeline.store, db, driven, done=done, signum=received[0] if received else None,
                               stop_reason=cap_stop_reason(cap, done, db))
    print(render(report))
    print(f"\nreasonmed: {outcome.message}")
    return outcome.code


async def _progress(pipeline: Pipeline, every_s: float = 5.0) -> None:
    """One plain line of progress every few seconds, on stderr: questions settled of all, ETA, cost."""
    from reasonmed_async.reports.progress import estimate, read

    loop = asyncio.get_running_loop()
    start = loop.time()
    _, first = await read(pipeline.store, pipeline.config)
    while True:
        await asyncio.sleep(every_s)
        report, now = await read(pipeline.store, pipeline.config)
        est = estimate(first, now)
        eta = "unknown" if est.eta_s is None else f"{est.eta_s / 60:.1f} min"
        print(f"reasonmed: {loop.time() - start:7.0f}s  questions {now.settled:,}/{now.questions:,}"
              f" ({est.fraction:.1%})  records {report.records:,}  failed {report.question_failures:,}"
              f"  calls {now.calls:,}  ETA {eta}  cost ${now.cost:,.2f} (projected ${est.projected_cost:,.2f})",
              file=sys.stderr)


async def _run(args: argparse.Namespace) -> int:
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
    return await _drive(config, db, (questions, str(args.input), digest, args.limit), args)


async def _resume(args: argparse.Namespace) -> int:
    db = _existing_db(args.db)
    guard_database_location(db, allow_network_fs=args.allow_network_fs)

    async def config_of(store: CheckpointStore) -> AppConfig:
        try:
            return with_budget(args, await resumed_config(store, await stored_config(store)))
        except RunConflict as exc:  # nothing to resume: say why (a WAL gone missing; failures left to retry)
            if store.notices:
                raise RunConflict(f"{exc}; {'; '.join(store.notices)}") from None
            if failed := await queries.failure_count(store):
                raise RunConflict(f"{exc}; {failed} failure(s) remain: `reasonmed retry --db {db}` re-issues"
                                  " them") from None
            raise

    return await _drive(config_of, db, None, args)  # the store is opened once, by the pipeline


async def _retry(args: argparse.Namespace) -> int:
    """``reasonmed retry``: failed deliveries pending again (``store/reissue.py``), then driven to the end."""
    from reasonmed_async.store.lock import OwnerLock
    from reasonmed_async.store.reissue import reissue

    db = _existing_db(args.db)
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
        return EXIT_OK
    print(f"reasonmed: {done.describe()}", file=sys.stderr)
    return await _resume(args)


async def _status(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from reasonmed_async.reports.progress import Reading, estimate, read, run_ended, run_started, watch

    async with await CheckpointStore.open(_existing_db(args.db), read_only=True) as store:
        runs = await queries.runs(store)
        config = await stored_config(store, unfinished=False) if runs else None
        if args.watch:
            await watch(store, config, every_s=args.every)
            return EXIT_OK
        report, now = await read(store, config)
        ended = await run_ended(store)
        if ended is not None or report.stopped:  # rates of a run nobody drives stop where it stopped
            now = replace(now, at=ended or report.last_activity or now.at)
        est = estimate(Reading(await run_started(store), 0, 0, 0, 0, 0.0), now)
        if args.json:
            progress = {"questions": now.questions, "settled": now.settled, "fraction": round(est.fraction, 6),
                        "calls_per_s": round(est.calls_per_s, 3), "tokens": now.tokens,
                        "projected_tokens": est.projected_tokens, "projected_cost_usd": round(est.projected_cost, 6),
                        "eta_s": est.eta_s if report.running else None}
            print(json.dumps({**report.to_json(), "progress": progress}, ensure_ascii=False))
            return EXIT_OK
        print(render(report))
        if est.eta_s == 0:
            eta = "done"
        elif not report.running:
            eta = "none (not running)"
        else:
            eta = "unknown" if est.eta_s is None else f"{est.eta_s / 60:.1f} min"
        span = "since the start" if report.running else "over the run"
        print(f"\nprogress: {now.settled:,} of {now.questions:,} questions settled ({est.fraction:.1%}),"
              f" {est.calls_per_s:,.1f} LLM calls/s {span}, ETA {eta}")
        print(f"tokens: {now.tokens:,} (projected {est.projected_tokens:,}); "
              f"cost: ${now.cost:,.2f} (projected ${est.projected_cost:,.2f})")
    return EXIT_OK


async def _export(args: argparse.Namespace) -> int:
    out = Path(args.out)
    async with await CheckpointStore.open(_existing_db(args.db), read_only=True) as store:
        runs = await queries.runs(store)
        if not runs:
            raise UsageError(f"{args.db}: holds no run")
        if args.run_id is not None and args.run_id not in {r.id for r in runs}:
            raise UsageError(f"{args.db}: no run {args.run_id} (runs: {', '.join(r.id for r in runs)})")
        config = await stored_config(store, unfinished=False)
        exclude = frozenset(await queries.contaminated_questions(store)) if args.exclude_contaminated else frozenset()
        exported = [r.id for r in runs if args.run_id in (None, r.id)]
        summary, dropped = await export_atomically(store, out, config, exported, force=args.force, run_id=args.run_id,
                                                   exclude=exclude)
    unfinished = [r.id for r in runs if r.status != "finished" and args.run_id in (None, r.id)]
    also = ", the same as .parquet" if summary.parquet else ""
    print(f"exported {summary.records} records of {summary.questions} questions to {out}/ "
          f"(reasonmed.jsonl, cotmed.jsonl, responsemed.jsonl, records.jsonl{also}, dataset_info.json, manifest.json;"
          f" {summary.failures} failures and {summary.rejected} rejected CoTs in failures.jsonl)")
    if dropped:
        print(f"note: not written, having no rows: {', '.join(dropped)}", file=sys.stderr)
    if args.exclude_contaminated:
        print(f"left out {summary.excluded} question(s) flagged by `reasonmed decontam`", file=sys.stderr)
    if unfinished:
        print(f"note: run {', '.join(unfinished)} is unfinished: this export is partial", file=sys.stderr)
    return EXIT_OK


async def _daemon(args: argparse.Namespace) -> int:
    from reasonmed_async.daemon.service import Daemon, DaemonOptions, parse_listen
    from reasonmed_async.daemon.token import announce_token, daemon_token

    try:
        listen = parse_listen(args.listen) if args.listen else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    db = Path(args.db)
    guard_database_location(db, allow_network_fs=args.allow_network_fs)
    config = load_config(args.config)
    token, written = daemon_token(args, listen, db)
    configure_for(config, db, secrets=[token] if token else [])
    announce_token(args, listen, written)
    options = DaemonOptions(Path(args.config), db, Path(args.inbox) if args.inbox else None, listen, token)
    await preflight_for(args, config)
    return await Daemon(options).run()


def _register_daemon(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = sub.add_parser("daemon", help="run until stopped: resume, then take jobs from an inbox and an HTTP API")
    d.add_argument("--config", required=True)
    d.add_argument("--db", required=True)
    d.add_argument("--inbox", help="directory watched for question files")
    d.add_argument("--listen", help="HOST:PORT of the control API (127.0.0.1 unless you mean otherwise)")
    d.add_argument("--token-env", help="environment variable holding the API's bearer token"
                                       " (default: REASONMED_DAEMON_TOKEN if set)")
    d.add_argument("--token-file", help="file holding the API's bearer token"
                                        " (none given: one is generated into <db>.token, mode 0600)")
    d.add_argument("--no-auth", action="store_true", help="an API without a token (loopback only; logged)")
    add_network_fs_flag(d)
    d.set_defaults(handler=_daemon)


PREFLIGHT_COMMANDS = ("run", "resume", "retry", "daemon")
COMMANDS = {"run": _run, "resume": _resume, "retry": _retry, "status": _status, "export": _export}
EXTRA_COMMANDS: list = [_register_daemon, _register_score, logtail.register, _merge_command.register, _register_report,
                        _register_decontam, _register_eval, _register_check]  # registrars of commands in their own modules
EXTRA_COMMANDS.append(_batch_command.register)  # batch export / import (scale/batch_cli.py)


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code = asyncio.run(args.handler(args))
        sys.stdout.flush()  # here, not at exit: a reader gone (`status | head`) is a quiet end, not a traceback
        return code
    except KeyboardInterrupt:  # a Ctrl-C before the handlers were installed (or after they were removed)
        return ExitCode.SIGINT
    except BrokenPipeError:
        return quiet_broken_pipe()
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, the right exit code
        stopped = first_stop(exc)  # a typed stop (outage, open circuit, disk full), maybe inside a TaskGroup's group
        if isinstance(stopped, RunStopped):
            db = getattr(args, "db", None)
            print(f"reasonmed: stopped: {stopped}", file=sys.stderr)
            print(f"reasonmed: nothing was marked failed; once fixed, continue with `reasonmed resume --db {db}`",
                  file=sys.stderr)
            return int(stopped.exit_code)
        known = classify(exc, (UsageError, PreflightFailed))
        if known is not None:
            print(known[1], file=sys.stderr)
            return known[0]
        if os.environ.get("REASONMED_DEBUG"):
            raise
        return report_internal(exc, args.command, getattr(args, "db", None))


if __name__ == "__main__":
    sys.exit(main())
