"""Capacity test at the paper's scale: ``reasonmed run`` (a real subprocess, the CLI as users start it)
against 16 fake OpenAI-compatible replicas with served-70B latency scaled down in time, 2,000
requests in flight, on a stated fraction of 195k synthetic questions; then the real run projected.

    make bench-capacity                    # = .venv/bin/python bench/capacity.py (sizes 2,500 and 5,000)
    .venv/bin/python bench/capacity.py --sizes 300 --time-scale 4   # a quick look
    [--replicas 16] [--in-flight 2000] [--replica-tok-s 2616] [--gpus-per-replica 4] [--out FILE]

The replicas (``capacity_fakes.py``) run in their own process, so their CPU is never the
orchestrator's (reported apart).  Per size: the orchestrator's CPU (user + sys of the ``reasonmed``
process and its threads, from ``wait4``) per call, its peak RSS (``ru_maxrss``), event-loop lag
(``REASONMED_LOOP_LAG_FILE``), the database's size, calls/s, requests in flight (from the replicas'
side); calls and tokens counted by the replicas, not read from the project's store.  The latency
model and the serving assumptions are in ``capacity_model.py``.  Not part of the test suite.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from bench_report import machine_info
from capacity_model import REPLICA_TOK_S, Serving
from capacity_report import derive, report
from http_bench import _proc_cpu_s, pipeline_config
from synth_questions import write_questions

ROOT = Path(__file__).resolve().parents[1]
FAKES = ROOT / "bench" / "capacity_fakes.py"
MODEL_NAMES = {"qwen": "Qwen2.5-72B-Instruct", "deepseek": "DeepSeek-R1-Distill-Llama-70B",
               "huatuo": "HuatuoGPT-o1-70B", "gpt-4o-mini": "gpt-4o-mini", "o1-mini": "o1-mini", "gpt-4o": "gpt-4o"}


def capacity_config(urls: list[str], in_flight: int, generator_factor: float) -> str:
    """``examples/openai.toml`` over ``urls``: the in-flight cap split evenly per URL (fixed, not adaptive),
    agent workers enough to fill it, and a distinct served model name per role's model."""
    per_url = math.ceil(in_flight / len(urls))
    text = pipeline_config(in_flight, generator=math.ceil(in_flight / 9 * generator_factor))
    subs = [(r"^max_concurrency = \d+", f"max_concurrency = {per_url}"),
            (r"^base_urls = \[.*$", "base_urls = [" + ", ".join(json.dumps(u) for u in urls) + "]")]
    subs += [(rf"^(\[models\.{re.escape(k)}\]\nbackend = \"local\"\n)model = .*$", rf'\g<1>model = "{v}"')
             for k, v in MODEL_NAMES.items()]
    for pattern, new in subs:
        text, count = re.subn(pattern, new, text, count=1, flags=re.M)
        if count != 1:
            sys.exit(f"bench: examples/openai.toml has no line matching {pattern!r}; update bench/capacity.py")
    return text


def _start_fakes(args: argparse.Namespace, questions: Path, log: Path) -> tuple[subprocess.Popen, list[str]]:
    cmd = [sys.executable, str(FAKES), "--replicas", str(args.replicas), "--questions", str(questions),
           "--time-scale", str(args.time_scale), "--replica-tok-s", str(args.replica_tok_s),
           "--seqs-per-replica", str(math.ceil(args.in_flight / args.replicas))]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=log.open("wb"), text=True)
    line = proc.stdout.readline() if proc.stdout else ""  # blocks until listening (or the process died)
    if not line.startswith("PORTS "):
        proc.kill()
        sys.exit(f"bench: the fake replicas did not start: {line!r} {log.read_text()[-2000:]}")
    return proc, [f"http://127.0.0.1:{p}/v1" for p in line.split()[1].split(",")]


def _stats(url: str) -> dict:
    with urllib.request.urlopen(url.removesuffix("/v1") + "/stats", timeout=30) as r:
        return json.loads(r.read())


def _db_bytes(work: Path) -> int:
    """Everything the store wrote next to the database (the file, its WAL and any side files)."""
    return sum(p.stat().st_size for p in (work / "db").iterdir()  # (not the log, nor a rotated log: ``.log.1``)
               if p.is_file() and not p.name.endswith(".log") and ".log." not in p.name)


def _tally(stdout: str) -> dict:
    tiers = {t: int(n) for t, n in re.findall(r"^(easy|medium|difficult)\s+(\d+)\s", stdout, re.M)}
    records = re.search(r"^final records: (\d+)", stdout, re.M)
    failed = re.search(r"^failed\s+(\d+)", stdout, re.M)
    return {"tiers": tiers, "records": int(records.group(1)) if records else None,
            "question_failures": int(failed.group(1)) if failed else None}


def run_size(args: argparse.Namespace, questions: Path, n: int, work: Path) -> dict:
    (work / "db").mkdir(parents=True)
    fakes, urls = _start_fakes(args, questions, work / "fakes.log")
    try:
        config = work / "capacity.toml"
        config.write_text(capacity_config(urls, args.in_flight, args.generator_factor), encoding="utf-8")
        lag = work / "loop-lag.json"
        env = {**os.environ, "REASONMED_OPENAI_API_KEY": "bench-key", "REASONMED_LOOP_LAG_FILE": str(lag),
               "REASONMED_LOOP_LAG_INTERVAL_MS": str(args.lag_interval_ms)}
        cmd = [str(Path(sys.executable).with_name("reasonmed")), "run", "--config", str(config), "--input",
               str(questions), "--limit", str(n), "--db", str(work / "db" / "capacity.db")]
        load0, fakes_cpu0, t0, spawned = os.getloadavg(), _proc_cpu_s(fakes.pid), time.perf_counter(), time.monotonic()
        print(f"bench: capacity: {n:,} questions, {len(urls)} replicas, {args.in_flight} in flight, "
              f"time scale {args.time_scale} (load {load0[0]:.2f}) ...", file=sys.stderr, flush=True)
        with (work / "stdout.txt").open("wb") as out, (work / "stderr.txt").open("wb") as err:
            proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=err)
            _, status, ru = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        fakes_cpu = _proc_cpu_s(fakes.pid) - fakes_cpu0
        stats = _stats(urls[0])
    finally:
        fakes.terminate()
        fakes.wait(30)
    code = os.waitstatus_to_exitcode(status)
    stdout = (work / "stdout.txt").read_text(encoding="utf-8", errors="replace")
    r = {"questions": n, "exit_code": code, "wall_s": wall, "cpu_user_s": ru.ru_utime, "cpu_sys_s": ru.ru_stime,
         "cpu_s": ru.ru_utime + ru.ru_stime, "peak_rss_kib": ru.ru_maxrss, "fakes_cpu_s": fakes_cpu,
         "db_bytes": _db_bytes(work), "loadavg_start": load0, "loadavg_end": os.getloadavg(),
         "loop_lag": json.loads(lag.read_text()) if lag.is_file() else None, "fakes": stats, **_tally(stdout)}
    if stats.get("first_s") is not None:  # CLOCK_MONOTONIC is one clock for every process of the machine
        r["first_call_after_s"] = stats["t0_monotonic"] + stats["first_s"] - spawned
        r["exit_after_last_call_s"] = wall - (stats["t0_monotonic"] + stats["last_s"] - spawned)
    if code != 0:
        r["warning"] = f"exit {code}: {(work / 'stderr.txt').read_text(errors='replace')[-600:]}"
    return derive(r, args.in_flight)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Capacity test: reasonmed run against 16 fake 70B replicas.")
    p.add_argument("--sizes", default="2500,5000", help="question counts, comma-separated (default 2500,5000)")
    p.add_argument("--replicas", type=int, default=16)
    p.add_argument("--in-flight", type=int, default=2000)
    p.add_argument("--time-scale", type=float, default=4.0, help="real latency ÷ this (default 4)")
    p.add_argument("--replica-tok-s", type=float, default=REPLICA_TOK_S)
    p.add_argument("--gpus-per-replica", type=int, default=Serving.gpus_per_replica)
    p.add_argument("--generator-factor", type=float, default=2.0,
                   help="generator workers = in-flight ÷ 9 × this (a question holds its worker until its slowest path)")
    p.add_argument("--lag-interval-ms", type=float, default=50)
    p.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "capacity.json")
    p.add_argument("--report", type=Path, metavar="FILE", help="only print the tables of a saved result")
    args = p.parse_args(argv)
    if args.report is not None:
        saved = json.loads(args.report.read_text(encoding="utf-8"))
        saved["runs"] = [derive(r, saved["in_flight"]) for r in saved["runs"]]  # figures of an older harness too
        print(report(saved))
        return 0
    sizes = sorted({int(s) for s in args.sizes.split(",") if s.strip()})
    started, machine = dt.datetime.now(dt.timezone.utc), machine_info(ROOT)  # the tree as it was at the start
    with tempfile.TemporaryDirectory(prefix="reasonmed-capacity-") as tmp:
        questions = write_questions(Path(tmp) / "synthetic.jsonl", max(sizes))
        runs = [run_size(args, questions, n, Path(tmp) / f"size-{n}") for n in sizes]
    result = {"benchmark": "capacity: reasonmed run against fake 70B replicas, latency scaled down",
              "started_utc": started.isoformat(timespec="seconds"), "machine": machine, "replicas": args.replicas, "in_flight": args.in_flight,
              "time_scale": args.time_scale, "generator_factor": args.generator_factor,
              "serving": {"replica_tok_s": args.replica_tok_s, "gpus_per_replica": args.gpus_per_replica,
                          "seqs_per_replica": math.ceil(args.in_flight / args.replicas)},
              "runs": runs}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(report(result))
    print(f"\nwritten: {args.out}")
    return 0 if all(r["exit_code"] == 0 for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
