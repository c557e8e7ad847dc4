"""Interleaved A/B pairs of ``reasonmed run`` over HTTP, the whole process, for two source trees.

    .venv/bin/python bench/http_ab.py --a /tmp/base-tree [--b .] [--pairs 3] [--questions 300]

One zero-latency fake server (``tests/fake_llm_server.py``, its own process) serves every run; each
pair runs the raw aiohttp loop (the ceiling, ``http_client.py``) and then both trees' ``reasonmed
run`` on the same questions with ``http_bench.py``'s configuration, the order of A and B alternated
from pair to pair (the machine's speed drifts by minutes).  Each tree is imported through
``PYTHONPATH`` by this venv's ``reasonmed`` entry point (a tree from ``git archive`` needs no install).
CPU is the kernel's (``wait4``: user + sys of every thread), calls are the database's.  Prints
one row per run and the mean B ÷ A of CPU per call and of calls/s.  Not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_bench import ROOT, _cli, _client, _start_server, bytecode_cached  # noqa: E402


def _load() -> str:
    return os.getloadavg()[0].__format__(".2f")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--a", required=True, type=Path, help="tree A (e.g. `git archive BASE | tar -x -C DIR`)")
    ap.add_argument("--b", type=Path, default=ROOT, help="tree B (default: this one)")
    ap.add_argument("--pairs", type=int, default=3)
    ap.add_argument("--questions", type=int, default=300)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--out", type=Path, help="also write the rows as JSON here")
    ap.add_argument("--plain-server", action="store_true", help="the fake answers one text per prompt (not --sampling)")
    args = ap.parse_args()
    trees = {"A": args.a.resolve(), "B": args.b.resolve()}
    env = bytecode_cached({**os.environ, "REASONMED_OPENAI_API_KEY": "bench-key", "REASONMED_OPENAI_MODEL": "bench-model"},
                          *trees.values())  # compiled once, so that no run pays for compiling a tree's modules
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="http-ab-") as tmp:
        work = Path(tmp)
        server, base_url = _start_server(work / "server.log", not args.plain_server)
        env["REASONMED_OPENAI_BASE_URL"] = base_url
        try:
            _client("raw", base_url, server, work, "warmup", n=500, c=args.concurrency, questions=150, env=env)
            for k in range(1, args.pairs + 1):
                raw = _client("raw", base_url, server, work, f"raw-{k}", n=3000, c=args.concurrency,
                              questions=150, env=env)
                rows.append({"pair": k, "tree": "raw", "load": _load(), **raw})
                for tag in ("AB" if k % 2 else "BA"):
                    r = _cli(base_url, server, work, f"{tag}-{k}", c=args.concurrency, questions=args.questions,
                             env={**env, "PYTHONPATH": str(trees[tag])})
                    if not r["completed"]:
                        sys.exit(f"http_ab: tree {tag} failed: {r.get('warning')}")
                    r.update(calls_per_s=r["llm_calls"] / r["wall_s"], cpu_ms_per_call=r["cpu_s"] * 1e3 / r["llm_calls"])
                    rows.append({"pair": k, "tree": tag, "load": _load(), **r})
                    print(f"pair {k} {tag}: {r['llm_calls']} calls, CPU {r['cpu_s']:.2f} s = "
                          f"{r['cpu_ms_per_call']:.3f} ms/call, {r['calls_per_s']:.0f} calls/s "
                          f"(raw {raw['cpu_ms_per_call']:.3f} ms/call, {raw['calls_per_s']:.0f} calls/s), "
                          f"load {rows[-1]['load']}", file=sys.stderr, flush=True)
        finally:
            server.terminate()
            server.wait(10)
    print(table(rows))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    return 0


def table(rows: list[dict]) -> str:
    lines = ["| pair | raw ms/call | raw calls/s | A ms/call | B ms/call | B ÷ A CPU | A calls/s | B calls/s |"
             " B ÷ A calls/s | A × raw CPU | B × raw CPU | load |", "|" + "---:|" * 12]
    cpu, rate = [], []
    for k in sorted({r["pair"] for r in rows}):
        by = {r["tree"]: r for r in rows if r["pair"] == k}
        raw, a, b = by["raw"], by["A"], by["B"]
        cpu.append(b["cpu_ms_per_call"] / a["cpu_ms_per_call"])
        rate.append(b["calls_per_s"] / a["calls_per_s"])
        lines.append(f"| {k} | {raw['cpu_ms_per_call']:.3f} | {raw['calls_per_s']:,.0f} | {a['cpu_ms_per_call']:.3f}"
                     f" | {b['cpu_ms_per_call']:.3f} | {cpu[-1]:.3f} | {a['calls_per_s']:,.0f} | {b['calls_per_s']:,.0f}"
                     f" | {rate[-1]:.3f} | {a['cpu_ms_per_call'] / raw['cpu_ms_per_call']:.2f}"
                     f" | {b['cpu_ms_per_call'] / raw['cpu_ms_per_call']:.2f} | {raw['load']} |")
    lines.append(f"mean B ÷ A: CPU per call {sum(cpu) / len(cpu):.3f}, calls/s {sum(rate) / len(rate):.3f}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
