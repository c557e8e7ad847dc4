"""One benchmark size in a fresh process: the whole pipeline, then the sim baseline.

    python bench/size_run.py --input FILE [--limit N] --db DB --config CFG --out RESULT.json

The input is validated (``QuestionSource``, as ``reasonmed run`` does: one pass
that keeps no question) and hashed before the clock starts; the timed part is
``Pipeline.open`` → ``start_run`` (which reads the file again, ingesting in
batches) → ``drive`` → close, with the log and the cycle collector set as
``reasonmed run`` sets them.  ``--stop-after S`` stops the run after S seconds
(a long size: RSS with all questions ingested and the run going, without waiting
hours).  Peak RSS is read right after, before the sim baseline runs, so it is
the pipeline's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import sqlite3
import sys
import time
from itertools import islice
from pathlib import Path

from reasonmed_async.commands import heap
from reasonmed_async.config import load_config
from reasonmed_async.loaders.stream import QuestionSource
from reasonmed_async.pipeline import Pipeline, file_digest
from sim_baseline import sim_cost  # bench/ is on sys.path: this script's own directory
from storage_figures import storage_figures


INTAKE_DONE: dict[str, float] = {}  # CPU and wall clock when the intake had finished


def _rss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


async def _pipeline(config_path: str, db: str, questions, input_path: str, digest: str, limit: int | None,
                    stop_after: float | None) -> bool:
    async with Pipeline.open(load_config(config_path), db) as pipeline:
        await pipeline.start_run(questions, input_path, digest, limit)
        INTAKE_DONE.update(cpu=time.process_time(), wall=time.perf_counter())  # the run's own part starts here
        stop = asyncio.Event()
        if stop_after is not None:
            asyncio.get_running_loop().call_later(stop_after, stop.set)
        return await pipeline.drive(stop)


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--input", required=True)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--db", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--no-baseline", action="store_true")
    ap.add_argument("--stop-after", type=float, default=None, help="stop the run after this many seconds")
    args = ap.parse_args()

    # Log as `reasonmed run` does (JSON lines to <db>.log, per-call events included): that is what is measured.
    from reasonmed_async.logs.setup import configure, log_path_for

    configure(log_file=log_path_for(args.db), secret_envs=load_config(args.config).secret_env_names())
    heap.tune_collector()  # the cycle collector as the `reasonmed` executable sets it (commands/heap.py)
    questions = QuestionSource(args.input, limit=args.limit)
    digest = file_digest(args.input)
    rss_before = _rss_kib()

    ru0 = resource.getrusage(resource.RUSAGE_SELF)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    completed = asyncio.run(_pipeline(args.config, args.db, questions, args.input, digest, args.limit,
                                      args.stop_after))
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    ru1 = resource.getrusage(resource.RUSAGE_SELF)
    rss_peak = _rss_kib()

    con = sqlite3.connect(args.db)
    calls = con.execute("SELECT SUM(calls) FROM calls").fetchone()[0] or 0
    messages = con.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
    stage_calls = dict(con.execute("SELECT stage, SUM(calls) FROM calls GROUP BY stage ORDER BY stage").fetchall())
    records = con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    con.close()

    result = {
        "questions": len(questions), "stopped_after_s": args.stop_after, **storage_figures(args.db), "input": args.input, "completed": completed,
        "wall_s": wall, "cpu_s": cpu, "intake_cpu_s": INTAKE_DONE["cpu"] - cpu0, "intake_wall_s": INTAKE_DONE["wall"] - wall0, "cpu_user_s": ru1.ru_utime - ru0.ru_utime, "cpu_sys_s": ru1.ru_stime - ru0.ru_stime,
        "rss_before_kib": rss_before, "rss_peak_kib": rss_peak,
        "llm_calls": calls, "messages": messages, "records": records, "stage_calls": stage_calls,
    }
    if not args.no_baseline:
        cpu_b = time.process_time()
        result["sim"] = sim_cost(load_config(args.config), list(islice(questions, 3000)), stage_calls)
        result["sim"]["baseline_cpu_s"] = time.process_time() - cpu_b
    Path(args.out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if completed or args.stop_after is not None else 1


if __name__ == "__main__":
    sys.exit(main())
