"""Throughput and CPU cost of the runtime with the simulated LLM (zero latency, checkpoints on).

    make bench                                  # = .venv/bin/python bench/run.py
    .venv/bin/python bench/run.py --quick       # 300 questions only
    .venv/bin/python bench/run.py --sizes 1000,10000

Each size runs the whole pipeline in a fresh subprocess (``size_run.py``), so
peak RSS is per size.  Sizes up to 1,000 take the first N real PubMedQA
questions, read in place from ``../shared/data/pubmedqa_ori_pqal.json``;
larger sizes use synthetic multiple-choice questions written to a temporary
JSONL file.  Results are printed and written to ``bench/results/latest.json``.
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

from bench_report import derive, machine_info, table, verdicts
from synth_questions import write_questions

ROOT = Path(__file__).resolve().parents[1]
PUBMEDQA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmedqa_ori_pqal.json"
PUBMEDQA_SIZE = 1000
SYNTH_SEED = 20250611


def _sizes(text: str) -> list[int]:
    try:
        sizes = [int(s) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--sizes wants comma-separated integers, got {text!r}") from None
    if not sizes or any(n < 1 for n in sizes):
        raise argparse.ArgumentTypeError(f"--sizes wants positive integers, got {text!r}")
    return sizes


def _run_size(n: int, config: Path, work: Path, baseline: bool) -> dict:
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=_sizes, default=[1000, 10000], help="comma-separated (default 1000,10000)")
    ap.add_argument("--quick", action="store_true", help="one small size (300 questions)")
    ap.add_argument("--config", type=Path, default=ROOT / "examples" / "sim.toml")
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "latest.json")
    ap.add_argument("--no-baseline", action="store_true", help="skip timing the simulator's own CPU per call")
    args = ap.parse_args(argv)
    sizes = [300] if args.quick else args.sizes

    started = dt.datetime.now(dt.timezone.utc)
    with tempfile.TemporaryDirectory(prefix="reasonmed-bench-") as tmp:
        runs = [_run_size(n, args.config.resolve(), Path(tmp), not args.no_baseline) for n in sizes]
    result = {
        "benchmark": "reasonmed-async pipeline, sim backend at zero latency, SQLite checkpoints on",
        "started_utc": started.isoformat(timespec="seconds"),
        "command": shlex.join([sys.executable, *sys.argv]) if argv is None else shlex.join(["bench/run.py", *argv]),
        "config": str(args.config.resolve().relative_to(ROOT)) if args.config.resolve().is_relative_to(ROOT)
        else str(args.config),
        "machine": machine_info(ROOT),
        "sizes": runs,
    }
    result["targets"] = verdicts(runs)
    print(table(result))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"\nresults: {args.out}")
    return 0 if all(r["completed"] for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
