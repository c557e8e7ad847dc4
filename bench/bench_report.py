"""Machine description, derived figures and the printed table of a benchmark run."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

TARGET_RUNTIME_MS = 0.3   # the runtime's own CPU per LLM call (issue target)
TARGET_RSS_RATIO = 1.25   # peak RSS at the largest size over the smallest: "flat"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _mem_total_gib() -> float | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    return None


def _git(root: Path, *args: str) -> str | None:
    try:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None


def machine_info(root: Path) -> dict:
    return {
        "platform": platform.platform(),
        "cpu_model": _cpu_model(),
        "nproc": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "cpu_count": os.cpu_count(),
        "mem_total_gib": _mem_total_gib(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "loadavg_at_start": [round(x, 2) for x in os.getloadavg()],
        "git_commit": _git(root, "rev-parse", "--short", "HEAD"),
        "git_dirty": bool(_git(root, "status", "--porcelain", "--untracked-files=no")),
    }


def derive(r: dict) -> dict:
    """Rates and per-call costs of one size's raw measurements."""
    calls, wall, cpu = r["llm_calls"], r["wall_s"], r["cpu_s"]
    d = {
        "questions_per_s": r["questions"] / wall,
        "messages_per_s": r["messages"] / wall,
        "calls_per_s": calls / wall,
        "cpu_ms_per_call": cpu * 1e3 / calls if calls else None,
        "cpu_util": cpu / wall,
        "rss_peak_mib": r["rss_peak_kib"] / 1024,
        "rss_before_mib": r["rss_before_kib"] / 1024,
        "rss_run_growth_mib": (r["rss_peak_kib"] - r["rss_before_kib"]) / 1024,
    }
    if "sim" in r and calls:
        d["sim_ms_per_call"] = r["sim"]["ms_per_call"]
        d["runtime_ms_per_call"] = d["cpu_ms_per_call"] - d["sim_ms_per_call"]
        d["runtime_target_met"] = d["runtime_ms_per_call"] <= TARGET_RUNTIME_MS
    return d


def verdicts(sizes: list[dict]) -> dict:
    out: dict = {"runtime_ms_per_call_target": TARGET_RUNTIME_MS, "rss_ratio_target": TARGET_RSS_RATIO}
    own = [s["derived"].get("runtime_ms_per_call") for s in sizes]
    if own and all(v is not None for v in own):
        out["runtime_ms_per_call_max"] = max(own)
        out["runtime_target_met"] = max(own) <= TARGET_RUNTIME_MS
    if len(sizes) >= 2:
        small, large = min(sizes, key=lambda s: s["questions"]), max(sizes, key=lambda s: s["questions"])
        out["rss_ratio"] = large["rss_peak_kib"] / small["rss_peak_kib"]
        out["rss_ratio_sizes"] = [small["questions"], large["questions"]]
        out["rss_target_met"] = out["rss_ratio"] <= TARGET_RSS_RATIO
        grow = [s["rss_peak_kib"] - s["rss_before_kib"] for s in (small, large)]
        out["rss_run_growth_ratio"] = grow[1] / grow[0] if grow[0] > 0 else None
    return out


def _f(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def table(result: dict) -> str:
    m = result["machine"]
    lines = [f"reasonmed-async bench — sim backend, latency 0, checkpoints on ({result['config']})",
             f"machine: {m['cpu_model']}, {m['nproc']} cpu, {m['platform']}, Python {m['python']}, "
             f"load average at start {m['loadavg_at_start'][0]}", ""]
    head = ("size", "source", "wall s", "CPU s", "q/s", "msg/s", "calls/s", "calls", "CPU ms/call",
            "sim ms/call", "own ms/call", "RSS MiB", "(run +MiB)")
    rows = [head]
    for s in result["sizes"]:
        d = s["derived"]
        rows.append((str(s["questions"]), s["source"], _f(s["wall_s"], ".1f"), _f(s["cpu_s"], ".1f"),
                     _f(d["questions_per_s"], ".0f"), _f(d["messages_per_s"], ".0f"), _f(d["calls_per_s"], ".0f"),
                     str(s["llm_calls"]), _f(d["cpu_ms_per_call"], ".3f"), _f(d.get("sim_ms_per_call"), ".3f"),
                     _f(d.get("runtime_ms_per_call"), ".3f"), _f(d["rss_peak_mib"], ".1f"),
                     _f(d["rss_run_growth_mib"], "+.1f")))
    widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
    for i, r in enumerate(rows):
        lines.append("  ".join(c.rjust(w) for c, w in zip(r, widths)))
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    lines.append("")
    for s in result["sizes"]:
        lines.append(f"{s['questions']}: CPU user {s['cpu_user_s']:.1f} s + sys {s['cpu_sys_s']:.1f} s, "
                     f"CPU/wall {s['derived']['cpu_util']:.2f}, {s['messages']} messages, {s['records']} records, "
                     f"db {s['db_bytes'] / 2**20:.0f} MiB, RSS before run {s['derived']['rss_before_mib']:.1f} MiB")
    v = result["targets"]
    lines.append("")
    if "runtime_ms_per_call_max" in v:
        ok = "MET" if v["runtime_target_met"] else "NOT MET"
        lines.append(f"runtime's own CPU per LLM call: max {v['runtime_ms_per_call_max']:.3f} ms "
                     f"(target <= {v['runtime_ms_per_call_target']} ms): {ok}")
    if "rss_ratio" in v:
        ok = "MET" if v["rss_target_met"] else "NOT MET"
        a, b = v["rss_ratio_sizes"]
        lines.append(f"peak RSS {b}/{a} questions: x{v['rss_ratio']:.2f} (flat = <= x{v['rss_ratio_target']}): {ok}"
                     + (f"; growth during the run x{v['rss_run_growth_ratio']:.2f}" if v.get("rss_run_growth_ratio") else ""))
    incomplete = [str(s["questions"]) for s in result["sizes"] if not s["completed"]]
    if incomplete:
        lines.append(f"WARNING: the run did not complete for size(s) {', '.join(incomplete)}")
    return "\n".join(lines)
