"""``status`` and ``export``: the commands that read a database (read-only) and never drive it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from reasonmed_async.commands.common import UsageError, existing_db
from reasonmed_async.exit_codes import ExitCode
from reasonmed_async.pipeline import stored_config
from reasonmed_async.reports.status import render
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore


async def status(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from reasonmed_async.reports.progress import Reading, estimate, read, run_ended, run_started, watch

    async with await CheckpointStore.open(existing_db(args.db), read_only=True) as store:
        runs = await queries.runs(store)
        config = await stored_config(store, unfinished=False) if runs else None
        if args.watch:
            await watch(store, config, every_s=args.every)
            return ExitCode.OK
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
            return ExitCode.OK
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
    return ExitCode.OK


async def export(args: argparse.Namespace) -> int:
    from reasonmed_async.reports.atomic import export_atomically  # the exporters: not for `status`

    out = Path(args.out)
    async with await CheckpointStore.open(existing_db(args.db), read_only=True) as store:
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
    return ExitCode.OK
