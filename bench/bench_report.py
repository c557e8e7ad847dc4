"""Machine description, derived figures and the printed table of a benchmark run."""

from __future__ import annotations

import os
import platform
import subprocess
from pathlib import Path

TARGET_RUNTIME_MS = 0.25  # the runtime's own CPU per LLM call, at every size (issue target)
TARGET_FLAT = 1.15        # own CPU per call, largest size over smallest: "flat" (the harness's reading)
TARGET_RSS_MIB = 150      # peak RSS at the largest size, below (issue target: 200,000 questions)
TARGET_RSS_RATIO = 1.10   # peak RSS at the largest size over the smallest: "within 10 %"
TARGET_DB_OVER_TEXT = 1.5  # database bytes per question over its unique text bytes, at most
TARGET_PAGE_FILL = 0.80


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
    if "intake_cpu_s" in r and calls:  # the run alone: a stopped large size ingested far more than it ran
        d["run_cpu_ms_per_call"] = (cpu - r["intake_cpu_s"]) * 1e3 / calls
    if "sim" in r and calls:
        d["sim_ms_per_call"] = r["sim"]["ms_per_call"]
        d["runtime_ms_per_call"] = d["cpu_ms_per_call"] - d["sim_ms_per_call"]
        if "run_cpu_ms_per_call" in d:
            d["runtime_run_ms_per_call"] = d["run_cpu_ms_per_call"] - d["sim_ms_per_call"]
        d["runtime_target_met"] = d.get("runtime_run_ms_per_call", d["runtime_ms_per_call"]) <= TARGET_RUNTIME_MS
    return d


def verdicts(sizes: list[dict]) -> dict:
    """Each issue target beside its measured figure: ``{"name": (target text, measured text, met or None)}``."""
    out: dict = {}
    # per LLM call, the intake left out (it is per question: a stopped 200,000 ingested all, ran a quarter)
    own = [(s["questions"], s["derived"].get("runtime_run_ms_per_call", s["derived"].get("runtime_ms_per_call")))
           for s in sizes]
    own = [(n, v) for n, v in own if v is not None]
    if own:
        worst = max(v for _, v in own)
        out["runtime"] = (f"runtime's own CPU <= {TARGET_RUNTIME_MS} ms per call (sim, run after intake), every size",
                          ", ".join(f"{v:.3f} ms at {n:,}" for n, v in own), worst <= TARGET_RUNTIME_MS)
        if len(own) >= 2:
            ratio = own[-1][1] / own[0][1]
            out["flat"] = (f"own CPU per call flat: largest ÷ smallest size <= {TARGET_FLAT}",
                           f"{ratio:.2f} ({own[-1][0]:,} ÷ {own[0][0]:,})", ratio <= TARGET_FLAT)
    if sizes:
        small, large = min(sizes, key=lambda s: s["questions"]), max(sizes, key=lambda s: s["questions"])
        rss = large["rss_peak_kib"] / 1024
        out["rss"] = (f"peak RSS < {TARGET_RSS_MIB} MiB at the largest size", f"{rss:.1f} MiB at {large['questions']:,}"
                      + (f" (stopped after {large['stopped_after_s']:.0f} s of running)" if large.get("stopped_after_s")
                         else ""), rss < TARGET_RSS_MIB)
        if large is not small:
            ratio = large["rss_peak_kib"] / small["rss_peak_kib"]
            out["rss_flat"] = (f"peak RSS largest ÷ smallest size <= {TARGET_RSS_RATIO}",
                               f"{ratio:.2f} ({rss:.1f} ÷ {small['rss_peak_kib'] / 1024:.1f} MiB)",
                               ratio <= TARGET_RSS_RATIO)
    for s in sizes:
        if not s.get("completed") or s.get("db_over_unique_text") is None:
            continue
        n = s["questions"]
        out[f"db_{n}"] = (f"DB bytes per question <= {TARGET_DB_OVER_TEXT} × unique text bytes, {n:,} questions",
                          f"{s['db_bytes_per_question'] / 1024:.1f} KiB vs {s['unique_text_bytes_per_question'] / 1024:.1f}"
                          f" KiB = {s['db_over_unique_text']:.1f} ×", s["db_over_unique_text"] <= TARGET_DB_OVER_TEXT)
        out[f"fill_{n}"] = (f"page fill >= {TARGET_PAGE_FILL:.0%}, {n:,} questions", f"{s['page_fill']:.1%}",
                            s["page_fill"] >= TARGET_PAGE_FILL)
    return out


def targets_table(targets: dict) -> list[str]:
    rows = [("target", "measured", "")] + [(t, m, "-" if ok is None else "met" if ok else "NOT MET")
                                          for t, m, ok in targets.values()]
    widths = [max(len(r[i]) for r in rows) for i in range(3)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return lines


def _f(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def table(result: dict) -> str:
    m = result["machine"]
    lines = [f"reasonmed-async bench — sim backend, latency 0, checkpoints on ({result['config']})",
             f"machine: {m['cpu_model']}, {m['nproc']} cpu, {m['platform']}, Python {m['python']}, "
             f"load average at start {m['loadavg_at_start'][0]}", ""]
    head = ("size", "source", "wall s", "CPU s", "q/s", "msg/s", "calls/s", "calls", "CPU ms/call",
            "sim ms/call", "own ms/call", "own, run only", "RSS MiB", "(run +MiB)")
    rows = [head]
    for s in result["sizes"]:
        d = s["derived"]
        rows.append((str(s["questions"]), s["source"], _f(s["wall_s"], ".1f"), _f(s["cpu_s"], ".1f"),
                     _f(d["questions_per_s"], ".0f"), _f(d["messages_per_s"], ".0f"), _f(d["calls_per_s"], ".0f"),
                     str(s["llm_calls"]), _f(d["cpu_ms_per_call"], ".3f"), _f(d.get("sim_ms_per_call"), ".3f"),
                     _f(d.get("runtime_ms_per_call"), ".3f"), _f(d.get("runtime_run_ms_per_call"), ".3f"),
                     _f(d["rss_peak_mib"], ".1f"),
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
                     f"db {s['db_bytes'] / 2**20:.0f} MiB, RSS before run {s['derived']['rss_before_mib']:.1f} MiB"
                     + (f", intake {s['intake_cpu_s']:.1f} s CPU ({s['intake_cpu_s'] * 1e3 / s['questions']:.2f} ms"
                        " a question)" if "intake_cpu_s" in s else ""))
    for s in result["sizes"]:
        z = s.get("zstd")
        if z:
            lines.append(f"{s['questions']}: zstd {z['version']} level {z['level']} on {z['sample']} stored texts:"
                         f" ×{z['ratio']:.2f} smaller, {z['compress_us_per_payload']:.1f} µs to compress and "
                         f"{z['decompress_us_per_payload']:.1f} µs to decompress one; tables by bytes: "
                         + ", ".join(f"{k} {v / 2**20:.1f} MiB" for k, v in s.get("bytes_by_table", {}).items()))
    lines.append("")
    lines.extend(targets_table(result["targets"]))
    incomplete = [str(s["questions"]) for s in result["sizes"] if not s["completed"] and not s.get("stopped_after_s")]
    if incomplete:
        lines.append(f"WARNING: the run did not complete for size(s) {', '.join(incomplete)}")
    return "\n".join(lines)
