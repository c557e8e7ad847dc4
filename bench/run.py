"""Throughput and CPU cost of the runtime with the simulated LLM (zero latency, checkpoints on),
then over HTTP against a local zero-latency OpenAI-compatible server.

    make bench                                  # = .venv/bin/python bench/run.py
    .venv/bin/python bench/run.py --quick       # 300 questions only, and a small HTTP pass
    .venv/bin/python bench/run.py --sizes 1000,10000
    .venv/bin/python bench/run.py --http-only   # only the HTTP benchmark (bench/http_bench.py)

Each size runs the whole pipeline in a fresh subprocess (``size_run.py``), so
peak RSS is per size.  Sizes up to 1,000 take the first N real PubMedQA
questions, read in place from ``../shared/data/pubmedqa_ori_pqal.json``;
larger sizes use synthetic multiple-choice questions written to a temporary
JSONL file.  Results are printed and written to ``bench/results/latest.json``.
The HTTP benchmark (``http_bench.py``: the pipeline next to a raw aiohttp loop
and ``AsyncOpenAI`` loops, same server, same concurrency) writes
``bench/results/http.json``.
Not part of the test suite.  See BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench_report import derive, machine_info, table, targets_table, verdicts
from http_bench import http_table, run_http
from resume_bench import resume_target, run_resume
from synth_questions import write_questions

ROOT = Path(__file__).resolve().parents[1]
PUBMEDQA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmedqa_ori_pqal.json"
PUBMEDQA_SIZE = 1000
SYNTH_SEED = 20250611
DEFAULT_SIZES = "1000,10000,200000@90"


def _sizes(text: str) -> list[tuple[int, float | None]]:
    """``1000,10000,200000@90``: sizes, each optionally stopped after that many seconds of running."""
    try:
        sizes = [(int(n), float(t) if t else None) for n, _, t in (s.strip().partition("@") for s in text.split(",")
                                                                    if s.strip())]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes wants comma-separated integers[@seconds], got {text!r}") from None
    if not sizes or any(n < 1 or (t is not None and t <= 0) for n, t in sizes):
        raise argparse.ArgumentTypeError(f"--sizes wants positive integers, got {text!r}")
    return sizes


def _run_size(n: int, stop_after: float | None, config: Path, work: Path, baseline: bool) -> dict:
    if n <= PUBMEDQA_SIZE:
        if not PUBMEDQA.is_file():
            sys.exit(f"bench: {PUBMEDQA} not found (sizes <= {PUBMEDQA_SIZE} read the real PubMedQA file)")
        source, path, limit = "pubmedqa", PUBMEDQA, (None if n == PUBMEDQA_SIZE else n)
    else:
        source, limit = "synthetic", None
        path = write_questions(work / f"synthetic-{n}.jsonl", n, seed=SYNTH_SEED)
    out = work / f"result-{n}.json"
    cmd = [sys.executable, str(ROOT / "bench" / "size_run.py"), "--input", str(path), "--db", str(work / f"run-{n}.db"),
           "--config", str(config), "--out", str(out)]
    if limit is not None:
        cmd += ["--limit", str(limit)]
    if not baseline:
        cmd.append("--no-baseline")
    if stop_after is not None:
        cmd += ["--stop-after", str(stop_after)]
    print(f"bench: {n} {source} questions ...", file=sys.stderr, flush=True)
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    if proc.returncode not in (0, 1) or not out.is_file():
        sys.stderr.write((proc.stdout + proc.stderr)[-4000:])
        sys.exit(f"bench: the {n}-question run failed (exit {proc.returncode})")
    result = json.loads(out.read_text(encoding="utf-8"))
    result.update(source=source, input=str(path) if source == "pubmedqa" else f"<temp>/synthetic-{n}.jsonl (seed {SYNTH_SEED})")
    result["derived"] = derive(result)
    print(f"bench: {n} done in {time.perf_counter() - t0:.0f} s (pipeline {result['wall_s']:.1f} s)",
          file=sys.stderr, flush=True)
    return result


def _command(argv: list[str] | None) -> str:
    return shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join(["bench/run.py", *argv])


def _sim(args: argparse.Namespace, argv: list[str] | None) -> bool:
    sizes = [(300, None)] if args.quick else args.sizes
    if args.quick and args.resume_calls:
        args.resume_calls = 20_000
    started = dt.datetime.now(dt.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="reasonmed-bench-") as tmp:
        runs = [_run_size(n, t, args.config.resolve(), Path(tmp), not args.no_baseline) for n, t in sizes]
    result = {
        "benchmark": "reasonmed-async pipeline, sim backend at zero latency, SQLite checkpoints on",
        "started_utc": started.isoformat(timespec="seconds"),
        "command": _command(argv),
        "config": str(args.config.resolve().relative_to(ROOT)) if args.config.resolve().is_relative_to(ROOT)
        else str(args.config),
        "machine": machine_info(ROOT),
        "sizes": runs,
    }
    result["targets"] = verdicts(runs)
    if args.resume_calls:
        result["resume"] = run_resume(args.resume_calls, 200, 2)
        result["targets"]["resume"] = resume_target(result["resume"])
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults: {args.out}")
    return all(r["completed"] or r.get("stopped_after_s") for r in runs)


def _http(args: argparse.Namespace, argv: list[str] | None) -> bool:
    if not PUBMEDQA.is_file():
        sys.exit(f"bench: {PUBMEDQA} not found (the HTTP benchmark reads the real PubMedQA file)")
    requests, questions = (600, 30) if args.quick else (args.http_requests, args.http_questions)
    started, machine = dt.datetime.now(dt.timezone.utc), machine_info(ROOT)
    with tempfile.TemporaryDirectory(prefix="reasonmed-bench-http-") as tmp:
        result = run_http(Path(tmp), requests=requests, questions=questions, concurrency=args.http_concurrency,
                          rounds=args.http_rounds, cli_questions=30 if args.quick else args.cli_questions,
                          sampling=not args.http_plain_server)
    result = {"started_utc": started.isoformat(timespec="seconds"), "command": _command(argv),
              "machine": machine, **result}
    print(http_table(result))
    t = result["target"]
    if "met" in t:
        print()
        print("\n".join(targets_table({
            "http": (f"`reasonmed run` calls/s >= {t['calls_per_s_vs_raw_target']} × raw aiohttp loop's",
                     ", ".join(f"{v:.2f}" for v in t["calls_per_s_vs_raw"]), t["met"]),
            "http_cpu": (f"`reasonmed run` CPU per call <= {t['cpu_per_call_vs_raw_target']} × raw loop's",
                         ", ".join(f"{v:.2f}" for v in t["cpu_per_call_vs_raw"]), t["cpu_met"]),
            **({"http_sdk": (f"`reasonmed run` calls/s >= {t['sdk_target']:g} × AsyncOpenAI (httpx) loop's (implied)",
                             ", ".join(f"{v:.2f} (raw: {r:.2f})" for v, r in zip(t["cli_calls_per_s_vs_sdk"],
                                                                               t["raw_calls_per_s_vs_sdk"])),
                             t["sdk_met"])} if "sdk_met" in t else {})})))
    args.http_out.parent.mkdir(parents=True, exist_ok=True)
    args.http_out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults: {args.http_out}")
    return all(r.get("completed", True) and not r.get("failed") for r in result["runs"])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=_sizes, default=_sizes(DEFAULT_SIZES),
                    help=f"comma-separated, N@S stops N after S s of running (default {DEFAULT_SIZES})")
    ap.add_argument("--quick", action="store_true", help="one small size (300 questions) and a small HTTP pass")
    ap.add_argument("--config", type=Path, default=ROOT / "examples" / "sim.toml")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    ap.add_argument("--no-baseline", action="store_true", help="skip timing the simulator's own CPU per call")
    which = ap.add_mutually_exclusive_group()
    which.add_argument("--http-only", action="store_true", help="only the HTTP benchmark")
    which.add_argument("--no-http", action="store_true", help="only the sim benchmark")
    ap.add_argument("--http-requests", type=int, default=3000, help="requests per raw / AsyncOpenAI loop (3000)")
    ap.add_argument("--http-questions", type=int, default=150, help="PubMedQA questions the pipeline runs (150)")
    ap.add_argument("--http-concurrency", type=int, default=64, help="requests in flight, every client (64)")
    ap.add_argument("--resume-calls", type=int, default=1_000_000,
                    help="completed calls in the resume benchmark's database (0: skip it; --quick: 20,000)")
    ap.add_argument("--cli-questions", type=int, default=300, help="questions `reasonmed run` runs over HTTP (300)")
    ap.add_argument("--http-rounds", type=int, default=1, help="repeat every client this many times, interleaved")
    ap.add_argument("--http-out", type=Path, default=ROOT / "bench" / "results" / "http.json")
    ap.add_argument("--http-plain-server", action="store_true",
                    help="the fake answers one text per prompt (before issue 13's sixth pass), not worded anew per request")
    args = ap.parse_args(argv)
    if min(args.http_requests, args.http_questions, args.http_concurrency, args.http_rounds) < 1:
        ap.error("--http-requests, --http-questions, --http-concurrency and --http-rounds must be >= 1")

    ok = True
    if not args.http_only:
        ok = _sim(args, argv)
    if not args.no_http:
        if not args.http_only:
            print()
        ok = _http(args, argv) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
