"""Resume on a big database: seconds from starting `reasonmed resume` to its first new LLM call.

    python bench/resume_bench.py [--calls 1000000] [--questions 200] [--out FILE]

Builds, in a temporary directory, a database holding an unfinished run (the
first ``--questions`` PubMedQA questions ingested, nothing delivered yet) and
``--calls`` completed LLM calls in the response cache (realistic payloads: a
Completion of ~600 bytes of text, keys as the cache makes them) with their
accounting.  Then starts `reasonmed resume --db DB` as a user would and watches
the simulator's call log (``call_log``, one line per call made) for its first
line: the time from the process's start to that line is the figure.  The
process is then stopped with SIGINT and waited for.  Not part of the test suite.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PUBMEDQA = ROOT.parent / "shared" / "data" / "pubmedqa_ori_pqal.json"
TARGET_S = 2.0
TEXT = ("Let me reason step by step. The patient presents with findings that point to the option given; "
        "the abstract reports the association with a significant effect. ") * 4


def _build(work: Path, calls: int, questions: int) -> tuple[Path, Path]:
    from reasonmed_async.config import parse_config
    from reasonmed_async.loaders.stream import QuestionSource
    from reasonmed_async.pipeline import Pipeline, file_digest
    from reasonmed_async.store.cache_key import split_key

    call_log, db = work / "calls.log", work / "big.db"
    text = (ROOT / "examples" / "sim.toml").read_text(encoding="utf-8")
    text = text.replace("[backends.sim]\n", f"[backends.sim]\ncall_log = {json.dumps(str(call_log))}\n", 1)
    config = parse_config(text, source="bench")

    async def start() -> None:
        async with Pipeline.open(config, db) as p:
            await p.start_run(QuestionSource(PUBMEDQA, limit=questions), str(PUBMEDQA), file_digest(PUBMEDQA),
                              questions)

    asyncio.run(start())
    con = sqlite3.connect(db)
    now_ms = int(time.time() * 1000)
    with con:
        con.execute("INSERT OR IGNORE INTO names(name) VALUES ('qwen2.5-72b-instruct')")
        (model,) = con.execute("SELECT code FROM names WHERE name='qwen2.5-72b-instruct'").fetchone()
        for start_i in range(0, calls, 50_000):
            rows = []
            for i in range(start_i, min(calls, start_i + 50_000)):
                rowid, rest = split_key(hashlib.sha256(f"done-{i}".encode()).hexdigest())  # v8: rowid + rest
                payload = json.dumps({"text": f"{TEXT} #{i}", "finish_reason": "stop", "prompt_tokens": 812,
                                      "completion_tokens": 160, "latency_s": 1.2, "endpoint": "sim://local",
                                      "backend": "sim"}).encode()
                rows.append((rowid, rest, model, payload, now_ms))
            con.executemany("INSERT OR IGNORE INTO llm_cache(key, rest, model, payload, created_ms) VALUES (?,?,?,?,?)",
                            rows)
        con.execute("INSERT INTO calls(stage, model, endpoint, outcome, calls) VALUES "
                    "('generate', 'qwen2.5-72b-instruct', 'sim://local', 'ok', ?)", (calls,))
    con.close()
    return db, call_log


def _startup_s() -> float:
    """`reasonmed --help`: the interpreter's start and the CLI's imports, the floor under any command."""
    t0 = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("reasonmed")), "--help"], stdout=subprocess.DEVNULL, check=True)
    return time.perf_counter() - t0


def _first_call_s(db: Path, call_log: Path) -> tuple[float, int]:
    reasonmed = Path(sys.executable).with_name("reasonmed")
    t0 = time.perf_counter()
    proc = subprocess.Popen([str(reasonmed), "resume", "--db", str(db)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        while not (call_log.exists() and call_log.stat().st_size > 0):
            if proc.poll() is not None:
                sys.exit(f"bench: resume exited {proc.returncode} before its first call")
            if time.perf_counter() - t0 > 120:
                sys.exit("bench: no call within 120 s")
            time.sleep(0.005)
        first = time.perf_counter() - t0
    finally:
        proc.send_signal(signal.SIGINT)
        rc = proc.wait(120)
    return first, rc


def run_resume(calls: int, questions: int, repeat: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="reasonmed-bench-resume-") as tmp:
        t0 = time.perf_counter()
        db, call_log = _build(Path(tmp), calls, questions)
        size = sum(p.stat().st_size for p in db.parent.glob(db.name + "*"))
        print(f"bench: resume: built {calls:,} completed calls ({size / 2**20:.0f} MiB) in "
              f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        firsts, floors = [], []
        for _ in range(repeat):  # interleaved: the start-up floor, then a resume
            floors.append(_startup_s())
            call_log.unlink(missing_ok=True)
            first, rc = _first_call_s(db, call_log)
            firsts.append(first)
            print(f"bench: resume: first new call after {first:.2f} s; `reasonmed --help` {floors[-1]:.2f} s"
                  f" (exit {rc} after SIGINT)", file=sys.stderr)
    return {"completed_calls": calls, "db_bytes": size, "first_new_call_s": firsts, "help_s": floors,
            "target_s": TARGET_S, "met": max(firsts) < TARGET_S, "loadavg_at_start": os.getloadavg()[0]}


def resume_target(result: dict) -> tuple[str, str, bool]:
    return (f"first new LLM call < {TARGET_S} s after `reasonmed resume`, {result['completed_calls']:,} calls done",
            ", ".join(f"{f:.2f} s" for f in result["first_new_call_s"]) + " (`reasonmed --help` alone: "
            + ", ".join(f"{f:.2f} s" for f in result["help_s"]) + ")", result["met"])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=1_000_000)
    ap.add_argument("--questions", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "resume.json")
    args = ap.parse_args()
    result = run_resume(args.calls, args.questions, args.repeat)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    target, measured, met = resume_target(result)
    print(f"{target}: {measured}: {'met' if met else 'NOT MET'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
