"""One HTTP benchmark client in a fresh process: raw aiohttp, AsyncOpenAI, or the whole pipeline.

    python bench/http_client.py --mode raw|openai|openai-aiohttp|pipeline --base-url URL/v1 \\
        --concurrency C --out RESULT.json [--requests N] [--questions Q --config CFG --db DB] [--server-pid PID]

Every client sends what the pipeline's generator sends: a chat body with the
generate prompt of one of the first PubMedQA questions (~2.5 KB, abstract
included), cycling through them, to the same zero-latency server.  Imports,
loading the questions and building the bodies happen before the clock; the
timed part is opening the client, N requests at concurrency C (or the
pipeline's ``open`` → ``start_run`` → ``drive`` → close) and closing it.  CPU
is this process's (``time.process_time``, every thread; user / sys from
``getrusage``); with ``--server-pid`` the server's CPU over the same interval
is read from ``/proc`` too.  The pipeline logs as ``reasonmed run`` does (JSON
lines to ``<db>.log``, one ``llm.call`` line per call; ``--log off``: warnings
only), its cycle collector too (``commands/heap.py``).  Not part of the test suite.  See BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sqlite3
import sys
import time
from pathlib import Path

PUBMEDQA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmedqa_ori_pqal.json"
MODEL = os.environ.get("REASONMED_OPENAI_MODEL", "bench-model")
API_KEY = os.environ.get("REASONMED_OPENAI_API_KEY", "bench-key")


def _server_cpu_s(pid: int | None) -> float | None:
    """utime + stime of another process, from /proc (Linux); None if unreadable."""
    if pid is None:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _bodies(questions: int) -> list[dict]:
    """The generate bodies (as ``wire.build_body`` writes them) of the first ``questions`` PubMedQA questions."""
    from agents.prompts import Templates, generator_messages
    from reasonmed_async.loaders.dispatch import load_questions

    templates = Templates.load(None)
    return [{"model": MODEL, "max_completion_tokens": 8192, "temperature": 0.7, "top_p": 0.9,
             "messages": [{"role": m.role, "content": m.content} for m in generator_messages(templates, q)]}
            for q in load_questions(str(PUBMEDQA), limit=questions)]


async def _loop(n: int, c: int, send) -> int:
    """``send(i)`` for i in 0..n-1 with ``c`` in flight; returns how many failed."""
    todo, failed = iter(range(n)), 0

    async def worker() -> None:
        nonlocal failed
        for i in todo:
            try:
                if not await send(i):
                    failed += 1
            except Exception as exc:  # noqa: BLE001 - counted, and the first one is reported
                failed += 1
                if failed == 1:
                    print(f"http_client: request {i} failed: {type(exc).__name__}: {exc}", file=sys.stderr)

    await asyncio.gather(*(worker() for _ in range(c)))
    return failed


async def _raw(base_url: str, bodies: list[dict], n: int, c: int) -> dict:
    import aiohttp

    url, headers = f"{base_url}/chat/completions", {"Authorization": f"Bearer {API_KEY}"}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        async def send(i: int) -> bool:
            async with session.post(url, json=bodies[i % len(bodies)], headers=headers) as response:
                data = await response.json()
            return response.status == 200 and bool(data["choices"][0]["message"]["content"])

        failed = await _loop(n, c, send)
    return {"llm_calls": n - failed, "failed": failed}


async def _openai(base_url: str, bodies: list[dict], n: int, c: int, aiohttp_transport: bool) -> dict:
    import openai

    extra = {}
    if aiohttp_transport:
        if not hasattr(openai, "DefaultAioHttpClient"):
            return {"unavailable": f"openai {openai.__version__} has no DefaultAioHttpClient"}
        extra["http_client"] = openai.DefaultAioHttpClient()
    async with openai.AsyncOpenAI(base_url=base_url, api_key=API_KEY, max_retries=0, **extra) as client:
        async def send(i: int) -> bool:
            response = await client.chat.completions.create(**bodies[i % len(bodies)])
            return bool(response.choices[0].message.content)

        failed = await _loop(n, c, send)
    return {"llm_calls": n - failed, "failed": failed, "openai_version": openai.__version__}


def _logging(config: str, db: str, how: str) -> None:
    """``cli``: as ``reasonmed run`` (JSON lines to ``<db>.log``, per-call events included); ``off``: warnings only."""
    import logging

    import structlog

    from reasonmed_async.config import load_config
    from reasonmed_async.logs.setup import configure, log_path_for

    if how == "cli":
        configure(log_file=log_path_for(db), secret_envs=load_config(config).secret_env_names())
        from reasonmed_async.commands import heap

        heap.tune_collector()  # and the cycle collector as the `reasonmed` executable sets it
    else:
        structlog.configure(wrapper_class=structlog.make_filtering_bound_logger(logging.WARNING))


async def _pipeline(config: str, db: str, questions, digest: str) -> dict:
    from reasonmed_async.config import load_config
    from reasonmed_async.pipeline import Pipeline

    samples: list[int] = []

    async def sample_in_flight(pipeline) -> None:  # the backend's outstanding requests, every 20 ms
        while True:
            samples.append(sum(r["outstanding"] for b in pipeline.backends.values()
                               if hasattr(b, "replica_stats") for r in b.replica_stats()))
            await asyncio.sleep(0.02)

    async with Pipeline.open(load_config(config), db) as pipeline:
        sampler = asyncio.create_task(sample_in_flight(pipeline))
        await pipeline.start_run(questions, str(PUBMEDQA), digest, len(questions))
        completed = await pipeline.drive()
        sampler.cancel()
        # answered without a call: from the cache, or by an identical request in flight (single-flight)
        hits = sum(getattr(c, "hits", 0) + getattr(c, "shared", 0) for c in pipeline.clients.values())
    con = sqlite3.connect(db)
    calls = con.execute("SELECT SUM(calls) FROM calls WHERE outcome = 'ok'").fetchone()[0] or 0  # made, answered
    stage_calls = dict(con.execute("SELECT stage, SUM(calls) FROM calls GROUP BY stage ORDER BY stage").fetchall())
    records = con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    con.close()
    busy = [s for s in samples if s > 0]
    return {"llm_calls": calls, "cache_hits": hits, "completed": completed, "questions": len(questions),
            "records": records,
            "stage_calls": stage_calls, "in_flight_mean": sum(busy) / len(busy) if busy else 0.0,
            "in_flight_max": max(samples, default=0)}


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", required=True, choices=("raw", "openai", "openai-aiohttp", "pipeline"))
    ap.add_argument("--base-url", required=True, help="http://127.0.0.1:PORT/v1")
    ap.add_argument("--concurrency", type=int, required=True)
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--questions", type=int, default=150)
    ap.add_argument("--config")
    ap.add_argument("--db")
    ap.add_argument("--log", choices=("cli", "off"), default="cli", help="pipeline logging (default: as the CLI)")
    ap.add_argument("--server-pid", type=int)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    n, c, base = args.requests, args.concurrency, args.base_url.rstrip("/")

    if args.mode == "pipeline":
        from reasonmed_async.loaders.dispatch import load_questions
        from reasonmed_async.pipeline import file_digest

        questions = load_questions(str(PUBMEDQA), limit=args.questions)
        digest = file_digest(PUBMEDQA)
        _logging(args.config, args.db, args.log)
        work = _pipeline(args.config, args.db, questions, digest)
    else:
        bodies = _bodies(min(args.questions, n))
        work = (_raw(base, bodies, n, c) if args.mode == "raw"
                else _openai(base, bodies, n, c, aiohttp_transport=args.mode == "openai-aiohttp"))

    server0, ru0 = _server_cpu_s(args.server_pid), resource.getrusage(resource.RUSAGE_SELF)
    wall0, cpu0 = time.perf_counter(), time.process_time()
    result = asyncio.run(work)
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    ru1, server1 = resource.getrusage(resource.RUSAGE_SELF), _server_cpu_s(args.server_pid)

    result.update(mode=args.mode, concurrency=c, wall_s=wall, cpu_s=cpu, cpu_user_s=ru1.ru_utime - ru0.ru_utime,
                  cpu_sys_s=ru1.ru_stime - ru0.ru_stime, rss_peak_kib=ru1.ru_maxrss,
                  server_cpu_s=None if server0 is None or server1 is None else server1 - server0)
    if args.mode != "pipeline" and "unavailable" not in result:
        result.update(requests=n, body_bytes_mean=sum(len(json.dumps(b)) for b in bodies) / len(bodies))
    Path(args.out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0 if not result.get("failed") and result.get("completed", True) else 1


if __name__ == "__main__":
    sys.exit(main())
