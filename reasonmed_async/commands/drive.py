"""Driving a run to its end or its stop (``run``, ``resume``, ``retry``): progress, the spend cap, the outcome."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from reasonmed_async import signals
from reasonmed_async.config import AppConfig
from reasonmed_async.llm.credentials import reload_all
from reasonmed_async.loaders.stream import QuestionSource
from reasonmed_async.logs.setup import configure_for
from reasonmed_async.pipeline import ConfigFromStore, Pipeline
from reasonmed_async.reports.live import forget_open_circuits, publish as publish_live
from reasonmed_async.reports.outcome import settle
from reasonmed_async.reports.status import read_status, render
from reasonmed_async.run_guards import cap_stop_reason, preflight_for, stop_at_cap
from reasonmed_async.store import queries


async def drive(config: AppConfig | ConfigFromStore, db: Path,
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
        await forget_open_circuits(pipeline.store)  # this process starts with its circuits closed
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
                ticker = tg.create_task(progress(pipeline))
            live = tg.create_task(publish_live(pipeline))  # calls on the wire, for `status`
            cap = pipeline.spend_cap
            if cap is not None and cap.reached:
                stop.set()  # already spent when it started: deliver nothing
            capper = tg.create_task(stop_at_cap(cap, stop)) if cap is not None else None
            done = await pipeline.drive(stop)
            ticker.cancel()
            live.cancel()
            if capper is not None:
                capper.cancel()
        report = await read_status(pipeline.store, config)
        outcome = await settle(pipeline.store, db, driven, done=done, signum=received[0] if received else None,
                               stop_reason=cap_stop_reason(cap, done, db))
    print(render(report))
    print(f"\nreasonmed: {outcome.message}")
    return outcome.code


async def progress(pipeline: Pipeline, every_s: float = 5.0) -> None:
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
