"""The HTTP benchmark: the whole pipeline against a local zero-latency OpenAI-compatible server,
next to a raw aiohttp loop (the ceiling) and ``AsyncOpenAI`` loops, same server, same concurrency.

The server (``tests/fake_llm_server.py``, no faults, no latency) runs in its own
process on a free port of 127.0.0.1; each client runs in a fresh subprocess
(``http_client.py``) that measures its own CPU, so the server's CPU is never
counted as a client's.  The pipeline runs ``examples/openai.toml`` with the
backend's cap fixed at the loops' concurrency (``max_concurrency = C``,
``adaptive = false``) and agent workers enough to keep C requests in flight;
checkpoints on.  See BENCHMARKS.md.
"""

from __future__ import annotations

import json
import sqlite3
import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from http_process import ThreadCPU, phases

ROOT = Path(__file__).resolve().parents[1]
PUBMEDQA = ROOT.parent / "shared" / "data" / "pubmedqa_ori_pqal.json"
SERVER = ROOT / "tests" / "fake_llm_server.py"
CLIENT = ROOT / "bench" / "http_client.py"
MODES = ("raw", "openai", "openai-aiohttp", "pipeline", "cli")
LABELS = {"raw": "raw aiohttp (ceiling)", "openai": "AsyncOpenAI (httpx)", "openai-aiohttp": "AsyncOpenAI (aiohttp)",
          "pipeline": "pipeline (checkpoints on)", "cli": "`reasonmed run` (whole process)"}
CLI_QUESTIONS = 300  # the whole-process measurement
TARGET_RATIO = 0.5  # `reasonmed run`'s calls/s over the raw loop's (issue target)
SDK_TARGET = 6.0  # issue 13: '>= 6 x an SDK loop', implied by 0.5 x raw where raw is >= 12 x the SDK loop
TARGET_CPU = 2.0  # `reasonmed run`'s CPU per call over the raw loop's, at most (issue target)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(log: Path, sampling: bool = True) -> tuple[subprocess.Popen, str]:
    """The fake in its own process; ``sampling``: it words each answer anew, as a sampling model does (the
    nine CoTs of a question differ), instead of one text per prompt (then the response cache and
    single-flight answer ~40% of the pipeline's requests, which a real server's answers never let them)."""
    port = _free_port()
    with log.open("wb") as err:
        proc = subprocess.Popen([sys.executable, str(SERVER), "--port", str(port), *["--sampling"] * sampling],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            sys.exit(f"bench: the fake server exited ({proc.returncode}): {log.read_text()[-2000:]}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return proc, f"http://127.0.0.1:{port}/v1"
        except OSError:
            time.sleep(0.1)
    proc.kill()
    sys.exit("bench: the fake server did not start listening within 30 s")


def pipeline_config(concurrency: int, source: Path = ROOT / "examples" / "openai.toml", **override: int) -> str:
    """``examples/openai.toml`` with the backend capped at ``concurrency`` (fixed); its agents sized to fill it
    as a user's run is (``reasonmed_async/workers.py``), but for ``override`` (agent -> workers)."""
    text = source.read_text(encoding="utf-8")
    subs = [(r"^max_concurrency = \d+", f"max_concurrency = {concurrency}\nadaptive = false")]
    subs += [(rf"^(# )?{k} = \d+", f"{k} = {v}") for k, v in override.items()]
    for pattern, new in subs:
        text, count = re.subn(pattern, new, text, count=1, flags=re.M)
        if count != 1:
            sys.exit(f"bench: {source} has no line matching {pattern!r}; update bench/http_bench.py")
    return text


def _cli(base_url: str, server: subprocess.Popen, work: Path, tag: str, *, c: int, questions: int, env: dict) -> dict:
    """``reasonmed run`` as a user starts it: the whole process (start-up, imports, intake, run, shutdown),
    its CPU from the kernel (``wait4``), its calls the server's count (``answered``; the database's beside it)."""
    config, db = work / "openai-bench.toml", work / f"{tag}.db"
    config.write_text(pipeline_config(c), encoding="utf-8")
    cmd = [str(Path(sys.executable).with_name("reasonmed")), "run", "--config", str(config),
           "--input", str(PUBMEDQA), "--limit", str(questions), "--db", str(db)]
    server0, answered0 = _proc_cpu_s(server.pid), answered(base_url)
    t0, spawned = time.perf_counter(), time.time()
    with (work / f"{tag}.err").open("wb") as err:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        threads = ThreadCPU(proc.pid)
        _, status, ru = os.wait4(proc.pid, 0)
    wall, exited = time.perf_counter() - t0, time.time()
    proc.returncode = os.waitstatus_to_exitcode(status)
    server1 = _proc_cpu_s(server.pid)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    calls = con.execute("SELECT SUM(calls) FROM calls WHERE outcome='ok'").fetchone()[0] or 0
    records = con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    con.close()
    r = {"mode": "cli", "llm_calls": answered(base_url) - answered0, "client_calls": calls, "records": records, "questions": questions, "wall_s": wall,
         "cpu_s": ru.ru_utime + ru.ru_stime, "cpu_user_s": ru.ru_utime, "cpu_sys_s": ru.ru_stime,
         "peak_rss_kib": ru.ru_maxrss, "completed": proc.returncode == 0,
         "server_cpu_s": None if server0 is None or server1 is None else server1 - server0,
         "threads": threads.stop(), **phases(Path(f"{db}.log"), spawned, exited)}
    if proc.returncode != 0:
        r["warning"] = f"exit {proc.returncode}: {(work / f'{tag}.err').read_text()[-300:]}"
    return r


def answered(base_url: str) -> int:
    """How many chat completions the fake server has answered (200) so far: the one count of calls that every
    client is measured on (a raw loop's, an SDK loop's and the pipeline's own counts are kept beside it)."""
    with urllib.request.urlopen(base_url.removesuffix("/v1") + "/fake/stats", timeout=10) as response:
        return json.load(response)["answered"]


def _proc_cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _client(mode: str, base_url: str, server: subprocess.Popen, work: Path, tag: str, *, n: int, c: int,
            questions: int, env: dict, cli_questions: int = CLI_QUESTIONS) -> dict:
    if mode == "cli":
        return _derive(_cli(base_url, server, work, tag, c=c, questions=cli_questions, env=env))
    out = work / f"{tag}.json"
    cmd = [sys.executable, str(CLIENT), "--mode", mode, "--base-url", base_url, "--concurrency", str(c),
           "--requests", str(n), "--questions", str(questions), "--server-pid", str(server.pid), "--out", str(out)]
    if mode == "pipeline":
        config = work / "openai-bench.toml"
        config.write_text(pipeline_config(c), encoding="utf-8")
        cmd += ["--config", str(config), "--db", str(work / f"{tag}.db")]
    answered0 = answered(base_url)
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    server_calls = answered(base_url) - answered0
    if not out.is_file():
        sys.stderr.write((proc.stdout + proc.stderr)[-4000:])
        sys.exit(f"bench: the {mode} client failed (exit {proc.returncode})")
    r = json.loads(out.read_text(encoding="utf-8"))
    if "llm_calls" in r:
        r["client_calls"], r["llm_calls"] = r["llm_calls"], server_calls
    if proc.returncode != 0:
        r["warning"] = f"exit {proc.returncode}: {(proc.stderr or proc.stdout).strip()[-300:]}"
    return _derive(r)


def _derive(r: dict) -> dict:
    calls = r.get("llm_calls") or 0
    if calls:
        r["calls_per_s"] = calls / r["wall_s"]
        r["cpu_ms_per_call"] = r["cpu_s"] * 1e3 / calls
        if r.get("server_cpu_s") is not None:
            r["server_cpu_ms_per_call"] = r["server_cpu_s"] * 1e3 / calls
        if r.get("cache_hits") is not None:  # agent requests answered from the response cache, never sent
            r["cpu_ms_per_request"] = r["cpu_s"] * 1e3 / (calls + r["cache_hits"])
    return r


def bytecode_cached(env: dict, *trees: Path) -> dict:
    """``env`` for runs that start as a user's install does, with the trees' bytecode written (once, here), not
    compiled on every start (this VM sets ``PYTHONDONTWRITEBYTECODE``: ~0.1 s more CPU a run otherwise)."""
    for tree in trees:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(tree / "reasonmed_async"), str(tree / "agents"),
                        str(tree / "bus")], check=True, stdout=subprocess.DEVNULL)
    return {k: v for k, v in env.items() if k != "PYTHONDONTWRITEBYTECODE"}


def run_http(work: Path, *, requests: int, questions: int, concurrency: int, rounds: int = 1,
             cli_questions: int = CLI_QUESTIONS, sampling: bool = True) -> dict:
    """Every client against one server, ``rounds`` times in ``MODES`` order; ratios against each round's raw loop."""
    env = bytecode_cached({**os.environ, "REASONMED_OPENAI_API_KEY": "bench-key", "REASONMED_OPENAI_MODEL": "bench-model"},
                          ROOT)
    server, base_url = _start_server(work / "server.log", sampling)
    env["REASONMED_OPENAI_BASE_URL"] = base_url
    runs: list[dict] = []
    try:
        print(f"bench: http: fake server at {base_url} (pid {server.pid}); warm-up ...", file=sys.stderr, flush=True)
        _client("raw", base_url, server, work, "warmup", n=min(500, requests), c=concurrency, questions=questions,
                env=env)
        for k in range(1, rounds + 1):
            for mode in MODES:
                print(f"bench: http: round {k}: {LABELS[mode]} ...", file=sys.stderr, flush=True)
                r = _client(mode, base_url, server, work, f"{mode}-{k}", n=requests, c=concurrency,
                            questions=questions, env=env, cli_questions=cli_questions)
                r["round"] = k
                runs.append(r)
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
    for r in runs:
        raw = next(x for x in runs if x["mode"] == "raw" and x["round"] == r["round"])
        if r.get("calls_per_s") and raw.get("calls_per_s"):
            r["calls_per_s_vs_raw"] = r["calls_per_s"] / raw["calls_per_s"]
            r["cpu_per_call_vs_raw"] = r["cpu_ms_per_call"] / raw["cpu_ms_per_call"]
    pipes = [r for r in runs if r["mode"] == "cli" and "calls_per_s_vs_raw" in r]
    target: dict = {"calls_per_s_vs_raw_target": TARGET_RATIO, "cpu_per_call_vs_raw_target": TARGET_CPU}
    if pipes:
        target["calls_per_s_vs_raw"] = [r["calls_per_s_vs_raw"] for r in pipes]
        target["cpu_per_call_vs_raw"] = [r["cpu_per_call_vs_raw"] for r in pipes]
        target["met"] = all(v >= TARGET_RATIO for v in target["calls_per_s_vs_raw"])
        target["cpu_met"] = all(v <= TARGET_CPU for v in target["cpu_per_call_vs_raw"])
    sdk = [r for r in runs if r["mode"] == "openai" and r.get("calls_per_s")]
    cli = [r for r in runs if r["mode"] == "cli" and r.get("calls_per_s")]
    if sdk and cli:
        target["cli_calls_per_s_vs_sdk"] = [c["calls_per_s"] / s_["calls_per_s"] for c, s_ in zip(cli, sdk)]
        target["sdk_target"] = SDK_TARGET
        target["sdk_met"] = all(v >= SDK_TARGET for v in target["cli_calls_per_s_vs_sdk"])
        raw = [r for r in runs if r["mode"] == "raw" and r.get("calls_per_s")]
        # the ceiling's own ratio in the same rounds: >= 6 x the SDK loop is out of reach where raw is below it
        target["raw_calls_per_s_vs_sdk"] = [r["calls_per_s"] / s_["calls_per_s"] for r, s_ in zip(raw, sdk)]
    return {"benchmark": "HTTP: pipeline vs raw aiohttp vs AsyncOpenAI against a local zero-latency fake server",
            "server": f"tests/fake_llm_server.py (own process, no faults, latency 0, "
                      f"{'answers worded anew per request (--sampling)' if sampling else 'one text per prompt'})",
            "calls_counted": "chat completions the server answered (200) during each client's run",
            "base_url": base_url,
            "concurrency": concurrency, "requests": requests, "pipeline_questions": questions,
            "cli_questions": cli_questions,
            "pipeline_config": "examples/openai.toml with max_concurrency = C, adaptive = false, agent workers"
                               " sized to fill it (reasonmed_async/workers.py)",
            "pipeline_logging": "as `reasonmed run`: JSON lines to <db>.log, an llm.call line per call",
            "runs": runs, "target": target}


def _f(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def http_table(result: dict) -> str:
    m = result.get("machine", {})
    lines = [f"reasonmed-async HTTP bench — {result['server']}, concurrency {result['concurrency']}, "
             f"{result['requests']} requests per loop, pipeline on {result['pipeline_questions']} PubMedQA questions",
             f"machine: {m.get('cpu_model')}, {m.get('nproc')} cpu (server and client share them), "
             f"load average at start {(m.get('loadavg_at_start') or ['?'])[0]}", ""]
    head = ("round", "client", "calls", "wall s", "calls/s", "CPU s", "user", "sys", "CPU ms/call",
            "server ms/call", "calls/s ÷ raw", "CPU/call × raw")
    rows = [head]
    for r in result["runs"]:
        if "unavailable" in r:
            rows.append((str(r["round"]), LABELS[r["mode"]], *"------", r["unavailable"], "", "", ""))
            continue
        rows.append((str(r["round"]), LABELS[r["mode"]], str(r["llm_calls"]), _f(r["wall_s"], ".2f"),
                     _f(r.get("calls_per_s"), ".0f"), _f(r["cpu_s"], ".2f"), _f(r["cpu_user_s"], ".2f"),
                     _f(r["cpu_sys_s"], ".2f"), _f(r.get("cpu_ms_per_call"), ".3f"),
                     _f(r.get("server_cpu_ms_per_call"), ".3f"), _f(r.get("calls_per_s_vs_raw"), ".2f"),
                     _f(r.get("cpu_per_call_vs_raw"), ".2f")))
    widths = [max(len(row[i]) for row in rows) for i in range(len(head))]
    for i, row in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if j == 1 else c.rjust(w) for j, (c, w) in enumerate(zip(row, widths))))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    for r in result["runs"]:
        if r["mode"] == "pipeline":
            lines.append(f"pipeline round {r['round']}: {r['questions']} questions, {r['records']} records, "
                         f"completed {r['completed']}, {r['cache_hits']} requests answered without a call (cache, "
                         f"single-flight; CPU {r['cpu_ms_per_request']:.3f} ms per request, those included), in flight mean "
                         f"{r['in_flight_mean']:.1f} / max {r['in_flight_max']} (cap {result['concurrency']}), "
                         f"stage calls {r['stage_calls']}")
        if r["mode"] == "cli" and r.get("threads"):
            t = r["threads"]
            lines.append(f"`reasonmed run` round {r['round']}: CPU by thread: event loop {t['main_s']:.2f} s, the others "
                         f"{' / '.join(f'{x:.2f}' for x in t['others_s'])} s (SQLite writer, reader, log flush); wall: "
                         f"start-up to the first answer {r.get('startup_s', 0):.2f} s, run {r.get('run_s', 0):.2f} s, "
                         f"shutdown {r.get('shutdown_s', 0):.2f} s; {r.get('cache_hits', 0)} agent requests answered"
                         " without a call (cache, single-flight)")
        if r.get("warning"):
            lines.append(f"WARNING {LABELS[r['mode']]} round {r['round']}: {r['warning']}")
    t = result["target"]
    if "met" in t:
        lines.append(f"target `reasonmed run` (whole process, {result['cli_questions']} questions) calls/s ÷ raw >= "
                     f"{t['calls_per_s_vs_raw_target']}: measured {', '.join(f'{v:.2f}' for v in t['calls_per_s_vs_raw'])}"
                     f": {'met' if t['met'] else 'NOT MET'}")
        lines.append(f"target `reasonmed run` CPU per call × raw <= {t['cpu_per_call_vs_raw_target']}: measured "
                     f"{', '.join(f'{v:.2f}' for v in t['cpu_per_call_vs_raw'])}: {'met' if t['cpu_met'] else 'NOT MET'}")
    if "cli_calls_per_s_vs_sdk" in t:
        lines.append(f"`reasonmed run` calls/s ÷ AsyncOpenAI (httpx) loop: "
                     f"{', '.join(f'{v:.2f}' for v in t['cli_calls_per_s_vs_sdk'])} (the issue's implied target >= "
                     f"{t['sdk_target']:g}); the raw aiohttp loop itself, the ceiling: "
                     f"{', '.join(f'{v:.2f}' for v in t['raw_calls_per_s_vs_sdk'])} × the SDK loop on this server and "
                     f"machine" + (f": below {t['sdk_target']:g} ×, so no client can meet the implied target here"
                                   if max(t["raw_calls_per_s_vs_sdk"], default=0) < t["sdk_target"] else ""))
    return "\n".join(lines)
