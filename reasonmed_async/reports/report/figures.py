"""The report's charts, drawn by matplotlib (Agg: no display) from ``report.json``'s numbers.

Each figure is returned as PNG bytes and SVG text; the page embeds the PNG.
matplotlib is the optional extra ``report``: without it, ``MissingPlotting`` says how to get it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

MISSING = "the report draws its charts with matplotlib: pip install 'reasonmed-async[report]'"


class MissingPlotting(RuntimeError):
    """matplotlib is not installed."""


@dataclass(frozen=True)
class Figure:
    name: str
    title: str
    png: bytes
    svg: str


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError:
        raise MissingPlotting(MISSING) from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _render(plt: Any, fig: Any, name: str, title: str) -> Figure:
    fig.tight_layout()
    png, svg = io.BytesIO(), io.StringIO()
    # Fixed metadata: the same numbers give the same bytes.
    fig.savefig(png, format="png", dpi=100, metadata={"Software": None})
    fig.savefig(svg, format="svg", metadata={"Date": None, "Creator": None})
    plt.close(fig)
    return Figure(name, title, png.getvalue(), svg.getvalue())


def _bars(ax: Any, labels: list[str], series: list[tuple[str, list[float], str]], *, stacked: bool) -> None:
    xs = list(range(len(labels)))
    width = 0.8 if stacked else 0.8 / max(1, len(series))
    bottom = [0.0] * len(labels)
    for i, (name, values, color) in enumerate(series):
        if stacked:
            ax.bar(xs, values, width, bottom=bottom, label=name, color=color)
            bottom = [b + v for b, v in zip(bottom, values)]
        else:
            ax.bar([x + (i - (len(series) - 1) / 2) * width for x in xs], values, width, label=name, color=color)
    ax.set_xticks(xs, labels, rotation=40, ha="right", fontsize=8)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def verdicts(data: dict[str, Any], plt: Any) -> Figure:
    rows = data["verdicts"]
    fig, ax = plt.subplots(figsize=(8, 4))
    _bars(ax, [r["label"] for r in rows], [
        ("Correct", [r["correct"] for r in rows], "#2e7d32"),
        ("Error", [r["error"] for r in rows], "#c62828"),
        ("no verdict / not generated", [r["no_verdict"] + r["not_generated"] for r in rows], "#9e9e9e"),
    ], stacked=True)
    ax.set_ylabel("paths")
    ax.set_title("Verifier verdicts per model x temperature (cf. paper Fig 4)")
    return _render(plt, fig, "fig4_verdicts", "Verdicts per model x temperature")


def pass_rate(data: dict[str, Any], plt: Any) -> Figure:
    rows = [r for r in data["verdicts"] if r["pass_rate"]["n"]]
    fig, ax = plt.subplots(figsize=(8, 4))
    xs = list(range(len(rows)))
    rates = [r["pass_rate"]["rate"] for r in rows]
    low = [r["pass_rate"]["rate"] - r["pass_rate"]["ci95_low"] for r in rows]
    high = [r["pass_rate"]["ci95_high"] - r["pass_rate"]["rate"] for r in rows]
    ax.errorbar(xs, rates, yerr=[low, high], fmt="o", capsize=4, color="#1565c0")
    ax.set_xticks(xs, [r["label"] for r in rows], rotation=40, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("share verified Correct")
    ax.set_title("Verifier pass rate per model x temperature, 95% Wilson intervals")
    return _render(plt, fig, "pass_rate", "Verifier pass rate with 95% intervals")


def ranker(data: dict[str, Any], plt: Any) -> Figure:
    rows = data["ranker"]["picks"]
    fig, ax = plt.subplots(figsize=(8, 4))
    _bars(ax, [r["label"] for r in rows], [("easy", [r["easy"] for r in rows], "#43a047"),
                                          ("medium", [r["medium"] for r in rows], "#fb8c00")], stacked=False)
    ax.set_ylabel("paths picked")
    ax.set_title("Ranker picks per model x temperature, easy vs medium (cf. paper Fig 5)")
    return _render(plt, fig, "fig5_ranker", "Ranker picks, easy vs medium")


def tiers(data: dict[str, Any], plt: Any) -> Figure:
    counts = data["tiers"]["counts"]
    fig, ax = plt.subplots(figsize=(5, 3.5))
    names = list(counts)
    bars = ax.bar(names, [counts[n] for n in names], color=["#43a047", "#fb8c00", "#e53935"])
    total = sum(counts.values()) or 1
    ax.bar_label(bars, [f"{counts[n]} ({counts[n] / total:.0%})" for n in names], fontsize=8)
    ax.set_ylabel("questions")
    ax.set_title("Questions per tier (cf. paper Fig 6)")
    return _render(plt, fig, "fig6_tiers", "Questions per tier")


def complementarity(data: dict[str, Any], plt: Any) -> Figure:
    run = data["complementarity"]["any"]["one_vs_one"]
    paper = {(r["a"], r["b"]): r for r in data["paper"]["table5"]}
    labels, ours, theirs = [], [], []
    for r in run:
        for x, y, key in ((r["a"], r["b"], "only_a_pct"), (r["b"], r["a"], "only_b_pct")):
            labels.append(f"{x} not {y}")
            ours.append(r[key] or 0.0)
            p = paper.get((x, y)) or paper.get((y, x))
            theirs.append(0.0 if p is None else (p["only_a_pct"] if (p["a"], p["b"]) == (x, y) else p["only_b_pct"]))
    fig, ax = plt.subplots(figsize=(8, 4))
    _bars(ax, labels, [("this run (rule: any path correct)", ours, "#1565c0"),
                       ("paper, Table 5", theirs, "#bdbdbd")], stacked=False)
    ax.set_ylabel("% of questions")
    ax.set_title("Correct by one generator and not the other (cf. paper Table 5)")
    return _render(plt, fig, "table5_complementarity", "Complementarity, run vs paper")


def call_rate(data: dict[str, Any], plt: Any) -> Figure:
    bins = data["call_rate"]["bins"]
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot([b["t_s"] for b in bins], [b["calls_per_s"] for b in bins], color="#6a1b9a", drawstyle="steps-post")
    ax.set_xlabel("seconds since the first paid call")
    ax.set_ylabel("calls/s")
    ax.set_title("Completed LLM calls per second over the run")
    return _render(plt, fig, "call_rate", "Calls per second over time")


def scores(data: dict[str, Any], plt: Any) -> Figure:
    sets = data["scores"]["sets"]
    fig, ax = plt.subplots(figsize=(7, 3.5))
    xs = list(range(len(sets)))
    ax.errorbar(xs, [s["mean"] for s in sets], yerr=[s["se"] or 0 for s in sets], fmt="o", capsize=4,
                label="this run (mean +- SE)")
    px = [x for x, s in zip(xs, sets) if s["paper"] is not None]
    if px:
        ax.scatter(px, [sets[x]["paper"] for x in px], marker="x", color="#757575", label="paper")
    ax.set_xticks(xs, [s["label"] for s in sets], rotation=20, ha="right", fontsize=8)
    ax.set_ylim(1, 10)
    ax.set_ylabel("score 1-10")
    ax.legend(fontsize=8)
    ax.set_title("Score Evaluator means")
    return _render(plt, fig, "scores", "Scores")


def draw_all(data: dict[str, Any]) -> list[Figure]:
    """Every figure the numbers allow (scores and the call rate only when there are any)."""
    plt = _pyplot()
    drawers: list[Callable[[dict[str, Any], Any], Figure]] = [verdicts, pass_rate, ranker, tiers, complementarity]
    if data["call_rate"]["bins"]:
        drawers.append(call_rate)
    if data["scores"]["sets"]:
        drawers.append(scores)
    return [draw(data, plt) for draw in drawers]
