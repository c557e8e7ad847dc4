"""The capacity benchmark's figures and tables: per size measured, per-call flatness, the paper-scale
projection (``capacity_model.project``) for several replica counts."""

from __future__ import annotations

from capacity_model import (ISSUE_CALLS, PAPER_PATHS, PAPER_QUESTIONS, Measured, Serving, marginal_per_call,
                            project)

PROJECT_REPLICAS = (16, 32, 64, 128)


def in_flight_mean(area: list[float], first_s: float, last_s: float, lo: float = 0.1, hi: float = 0.9) -> float:
    """Mean requests in flight between ``lo`` and ``hi`` of the active span (whole seconds of ``area``)."""
    span = last_s - first_s
    a, b = int(first_s + lo * span), max(int(first_s + hi * span), int(first_s + lo * span) + 1)
    window = area[a:b]
    return sum(window) / len(window) if window else 0.0


def steady_window(done_per_s: list[int], lo: float = 0.1, hi: float = 0.9) -> tuple[int, int]:
    """The whole seconds [a, b) from the one in which the ``lo`` share of all calls had been answered to
    the one in which the ``hi`` share had: the run at full tilt, without its ramp and its tail (the
    last questions wait on their slowest generation)."""
    total, seen, a, b = sum(done_per_s), 0, None, None
    for second, n in enumerate(done_per_s):
        seen += n
        if a is None and seen >= lo * total:
            a = second
        if b is None and seen >= hi * total:
            b = second + 1
    return (a or 0), max(b or len(done_per_s), (a or 0) + 1)


def derive(r: dict, in_flight: int) -> dict:
    f = r["fakes"]
    calls = sum(f["calls"].values())
    span = (f["last_s"] - f["first_s"]) if f.get("first_s") is not None and f.get("last_s") is not None else 0.0
    lag = r.get("loop_lag") or {}
    gen_calls = f["calls"].get("generate", 0)
    r.update({
        "calls": calls, "active_s": span, "calls_per_s": calls / span if span else None,
        "cpu_ms_per_call": r["cpu_s"] * 1e3 / calls if calls else None,
        "cpu_util": r["cpu_s"] / r["wall_s"], "peak_rss_mib": r["peak_rss_kib"] / 1024,
        "db_bytes_per_question": r["db_bytes"] / r["questions"],
        "fakes_cpu_ms_per_call": r["fakes_cpu_s"] * 1e3 / calls if calls else None,
        "lag_p50_ms": lag.get("p50_ms"), "lag_p99_ms": lag.get("p99_ms"), "lag_max_ms": lag.get("max_ms"),
        "in_flight_mid": in_flight_mean(f["in_flight_area"], f["first_s"], f["last_s"]) if span else 0.0,
        "in_flight_all": sum(f["in_flight_area"]) / span if span else 0.0, "in_flight_cap": in_flight,
        "output_tokens": sum(f["output_tokens"].values()), "prompt_tokens": sum(f["prompt_tokens"].values()),
        "cot_bytes_mean": f["output_bytes"].get("generate", 0) / gen_calls if gen_calls else None,
        "calls_per_question": calls / r["questions"],
    })
    if f.get("done_per_s"):  # steady state: between 10 % and 90 % of the calls answered
        a, b = steady_window(f["done_per_s"])
        window = f["in_flight_area"][a:b]
        r["steady_s"] = b - a
        r["steady_calls_per_s"] = sum(f["done_per_s"][a:b]) / (b - a)
        r["in_flight_mid"] = sum(window) / len(window) if window else 0.0
    r["in_flight_used"] = r["in_flight_mid"] / in_flight
    return r


def _f(v, fmt: str) -> str:
    return "-" if v is None else format(v, fmt)


def _table(head: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    widths = [max(len(row[i]) for row in [head, *rows]) for i in range(len(head))]
    out = ["  ".join(c.rjust(w) for c, w in zip(head, widths)), "  ".join("-" * w for w in widths)]
    out += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    return out


def report(result: dict) -> str:
    m, runs, s = result["machine"], result["runs"], result["serving"]
    serving = Serving(replica_tok_s=s["replica_tok_s"], seqs_per_replica=s["seqs_per_replica"],
                      gpus_per_replica=s["gpus_per_replica"])
    lines = [f"reasonmed-async capacity bench — {result['replicas']} fake replicas (one process), "
             f"{result['in_flight']} in flight ({s['seqs_per_replica']} per replica, fixed), latency ÷ "
             f"{result['time_scale']:g}; commit {m.get('git_commit')}{' (dirty)' if m.get('git_dirty') else ''}",
             f"machine: {m.get('cpu_model')}, {m.get('nproc')} cpu, started {result['started_utc']}", ""]
    head = ("questions", "calls", "exit", "active s", "calls/s", "steady calls/s", "in flight steady", "used",
            "CPU ms/call",
            "user+sys s", "CPU/wall", "lag p50 ms", "lag p99 ms", "lag max ms", "peak RSS MiB", "DB MiB",
            "DB KiB/q", "fakes ms/call", "load start-end")
    rows = [(f"{r['questions']:,}", f"{r['calls']:,}", str(r["exit_code"]), _f(r["active_s"], ".0f"),
             _f(r["calls_per_s"], ".0f"), _f(r.get("steady_calls_per_s"), ".0f"),
             f"{r['in_flight_mid']:.0f} / {r['in_flight_cap']}",
             f"{r['in_flight_used']:.0%}", _f(r["cpu_ms_per_call"], ".3f"),
             f"{r['cpu_user_s']:.0f}+{r['cpu_sys_s']:.0f}", f"{r['cpu_util']:.2f}", _f(r["lag_p50_ms"], ".1f"),
             _f(r["lag_p99_ms"], ".1f"), _f(r["lag_max_ms"], ".0f"), f"{r['peak_rss_mib']:.0f}",
             f"{r['db_bytes'] / 2**20:.0f}", f"{r['db_bytes_per_question'] / 1024:.0f}",
             _f(r["fakes_cpu_ms_per_call"], ".3f"), f"{r['loadavg_start'][0]:.1f}-{r['loadavg_end'][0]:.1f}")
            for r in runs]
    lines += _table(head, rows)
    for r in runs:
        f = r["fakes"]
        lines.append(f"{r['questions']:,} q: calls by stage {dict(sorted(f['calls'].items()))}; tiers {r['tiers']}, "
                     f"records {r['records']}, failed {r['question_failures']}; mean CoT {_f(r['cot_bytes_mean'], '.0f')}"
                     f" bytes; {r['calls_per_question']:.2f} calls/q; max in flight {f['max_in_flight']}; "
                     f"truncated {f['truncated']}; gold misses {f['gold_misses']}; calls per replica "
                     f"{min(f['per_port'].values(), default=0):,}-{max(f['per_port'].values(), default=0):,}; "
                     f"first call {_f(r.get('first_call_after_s'), '.1f')} s after spawning, exit "
                     f"{_f(r.get('exit_after_last_call_s'), '.1f')} s after the last; worst loop stalls [s, ms] "
                     f"{[[round(t), round(ms)] for t, ms in (r.get('loop_lag') or {}).get('worst', [])]}")
        if r.get("warning"):
            lines.append(f"WARNING {r['questions']:,} q: {r['warning']}")
    ok = [r for r in runs if r["calls"]]
    if not ok:
        return "\n".join(lines)
    slope, fixed = marginal_per_call([(r["calls"], r["cpu_s"]) for r in ok])
    lines += ["", "CPU per call by size: " + ", ".join(f"{r['questions']:,} q {r['cpu_ms_per_call']:.3f} ms" for r in ok)
              + (f"; fit over sizes: {slope * 1e3:.3f} ms per call + {fixed:.1f} s fixed (start-up, imports)"
                 if len(ok) > 1 else "")]
    big = max(ok, key=lambda r: r["questions"])
    measured = Measured(questions=big["questions"], calls=big["calls"], output_tokens=big["output_tokens"],
                        prompt_tokens=big["prompt_tokens"], orchestrator_cpu_s_per_call=slope if slope > 0 else
                        big["cpu_s"] / big["calls"], db_bytes=big["db_bytes"])
    rate = big.get("steady_calls_per_s") or big["calls_per_s"]
    real_rate = rate / result["time_scale"] if rate else None
    need16 = project(measured, serving, result["replicas"]).calls_per_s
    lines += [f"the {big['questions']:,}-question run sustained {_f(rate, '.0f')} calls/s (steady) with latency ÷ "
              f"{result['time_scale']:g}: {_f(real_rate, '.0f')} calls/s in real time; the real run on "
              f"{result['replicas']} replicas needs {need16:.0f} calls/s (projection below)", "",
              f"Projection to the paper's run: {PAPER_QUESTIONS:,} questions ({PAPER_PATHS:,} paths), linear in "
              f"questions from the {big['questions']:,}-question run; one replica = {serving.gpus_per_replica} GPUs "
              f"decoding {serving.replica_tok_s:,.0f} tok/s, prefill {serving.prefill_tok_s:,.0f} tok/s; orchestrator "
              f"{measured.orchestrator_cpu_s_per_call * 1e3:.3f} ms CPU per call"]
    rows = []
    for n in PROJECT_REPLICAS:
        pr = project(measured, serving, n)
        rows.append((str(n), f"{pr.calls / 1e6:.2f} M", f"{pr.output_tokens / 1e9:.2f} G", f"{pr.wall_h:.1f}",
                     f"{pr.gpu_hours:,.0f}", f"{pr.calls_per_s:.0f}", f"{pr.orchestrator_core_h:.2f}",
                     f"{pr.orchestrator_core_fraction:.1%}", f"{pr.db_gib:.0f}"))
    lines += _table(("replicas", "calls", "output tok", "wall h", "GPU-h", "calls/s", "orch. core-h",
                     "of one core", "DB GiB"), rows)
    lines.append(f"(the issue's 'about {ISSUE_CALLS / 1e6:.1f} M calls' is below the {big['calls_per_question']:.2f} "
                 f"calls per question measured here: nine generations and nine verifications alone are 18)")
    gen = big["fakes"]["output_tokens"].get("generate", 0) / max(1, big["fakes"]["calls"].get("generate", 0))
    if gen:
        longer = Measured(**{**measured.__dict__, "output_tokens": measured.output_tokens
                             + big["fakes"]["calls"]["generate"] * (2000 - gen)})
        lines.append(f"GPU-hours follow the CoT length: generated CoTs here average {gen:,.0f} tokens; at 2,000 "
                     f"(long R1-style thinking) the same run takes {project(longer, serving, 16).gpu_hours:,.0f} GPU-h")
    per_core = 1 / measured.orchestrator_cpu_s_per_call
    need = project(measured, serving, 1).calls_per_s
    lines.append(f"one orchestrator core handles ~{per_core:,.0f} calls/s; each replica asks for {need:.1f} calls/s: "
                 f"one core feeds ~{per_core / need:,.0f} replicas before the orchestrator is the bottleneck")
    return "\n".join(lines)
