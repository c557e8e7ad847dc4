"""Instructions per LLM call, per thread, under valgrind's callgrind: an A/B measure a loaded machine cannot blur.

    .venv/bin/python bench/ir_per_call.py --tree DIR [--tree DIR2 ...] [--mode sim|http] [--sizes 50,150]

CPU seconds on a shared 2-core VM drift by 20-30 % from minute to minute; instructions executed do not.
Each tree runs twice under ``valgrind --tool=callgrind --separate-threads=yes`` (sim: ``bench/size_run.py
--no-baseline`` on the first N PubMedQA questions; http: ``reasonmed run`` against the sampling fake
server, which runs natively in its own process), at two sizes; the difference of the instruction counts
over the difference of the calls (the database's) is the per-call figure, start-up and shutdown taken
out.  Thread 1 is the event loop; "all" sums every thread.  Caveats: valgrind runs one thread at a time
(group commits batch differently than natively), and counts instructions, not cycles (sha256 is several
times heavier here than on a CPU with SHA extensions).  Needs ``valgrind`` on the PATH; ~1-4 minutes a
tree.  Not part of the test suite or ``make bench``; see BENCHMARKS.md (issue 13, seventh pass).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from http_bench import PUBMEDQA, _start_server, bytecode_cached, pipeline_config  # noqa: E402

VENV = Path(sys.executable).parent


def _ir(out: Path) -> dict[int, int]:
    """Thread number -> instructions, from callgrind's per-thread files ``out-NN``."""
    found = {}
    for name in glob.glob(f"{out}-*"):
        match = re.search(r"^(?:summary|totals): (\d+)", Path(name).read_text(errors="replace"), re.M)
        if match:
            found[int(name.rsplit("-", 1)[1])] = int(match.group(1))
    return found


def _run(tree: Path, mode: str, n: int, work: Path, env: dict[str, str]) -> tuple[int, dict[int, int]]:
    db, out = work / f"{mode}-{n}.db", work / f"{mode}-{n}.cg"
    grind = ["valgrind", "--tool=callgrind", "--separate-threads=yes", f"--callgrind-out-file={out}"]
    if mode == "sim":
        cmd = [str(VENV / "python"), "bench/size_run.py", "--input", str(PUBMEDQA), "--limit", str(n), "--db",
               str(db), "--config", "examples/sim.toml", "--out", str(work / f"sim-{n}.json"), "--no-baseline"]
    else:
        cmd = [str(VENV / "reasonmed"), "run", "--config", str(work / "http.toml"), "--input", str(PUBMEDQA),
               "--limit", str(n), "--db", str(db)]
    subprocess.run(grind + cmd, cwd=tree, env={**env, "PYTHONPATH": str(tree)}, check=True,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    con = sqlite3.connect(db)
    calls = con.execute("SELECT SUM(calls) FROM calls").fetchone()[0] or 0
    con.close()
    return calls, _ir(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", action="append", type=Path, required=True, help="a source tree (repeat for A/B)")
    ap.add_argument("--mode", choices=("sim", "http"), default="sim")
    ap.add_argument("--sizes", default="50,150", help="the two question counts (default 50,150)")
    args = ap.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("ir_per_call: valgrind is not installed")
    small, large = (int(s) for s in args.sizes.split(","))
    # every tree's bytecode written first: a tree's first run would otherwise compile it, and the smaller size
    # would carry that cost (the per-call figure would come out low by it)
    env = bytecode_cached(dict(os.environ), *(tree.resolve() for tree in args.tree))
    with tempfile.TemporaryDirectory(prefix="ir-per-call-") as tmp:
        server = None
        if args.mode == "http":
            server, base_url = _start_server(Path(tmp) / "server.log")
            (Path(tmp) / "http.toml").write_text(pipeline_config(64), encoding="utf-8")
            env.update(REASONMED_OPENAI_BASE_URL=base_url, REASONMED_OPENAI_API_KEY="bench-key",
                       REASONMED_OPENAI_MODEL="bench-model")
        try:
            for tree in args.tree:
                work = Path(tempfile.mkdtemp(dir=tmp))
                if args.mode == "http":
                    shutil.copy(Path(tmp) / "http.toml", work / "http.toml")
                (ca, a), (cb, b) = (_run(tree.resolve(), args.mode, n, work, env) for n in (small, large))
                per = {t: (b.get(t, 0) - a.get(t, 0)) / (cb - ca) for t in sorted(set(a) | set(b))}
                print(f"{tree}: {args.mode}, {ca} -> {cb} calls: event loop {per.get(1, 0):,.0f} instructions a call,"
                      f" all threads {sum(per.values()):,.0f}", flush=True)
        finally:
            if server is not None:
                server.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main())
