"""Accuracy per benchmark and in total, laid out as the paper's Table 4, ReasonMed-7B beside it.

Accuracy is over every question asked: an answer that could not be extracted counts in the
denominator and never as a letter; a call that failed for good is not scored at all (rerun).
The total is over all questions (the paper's 69.6 is that micro-average of its rows).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from reasonmed_async.evaluate import benchmarks
from reasonmed_async.evaluate.runner import Answer
from reasonmed_async.reports.intervals import wilson
from reasonmed_async.reports.report.paper import TABLE4_ROWS, TABLE4_TOTAL

_PAPER = {key: (acc, se, n) for key, _, n, acc, se in TABLE4_ROWS}


def _row(key: str, label: str, answers: list[Answer]) -> dict[str, Any]:
    scored = [a for a in answers if a.text is not None]
    n = len(scored)
    strict_ok = sum(a.strict == a.gold for a in scored)
    lenient_ok = sum(a.lenient == a.gold for a in scored)
    paper = _PAPER.get(key)
    return {
        "benchmark": key, "label": label, "questions": len(answers), "scored": n,
        "strict": wilson(strict_ok, n).as_dict(), "lenient": wilson(lenient_ok, n).as_dict(),
        "strict_extraction_failures": sum(a.strict is None for a in scored),
        "lenient_extraction_failures": sum(a.lenient is None for a in scored),
        "call_failures": len(answers) - n, "truncated": sum(a.truncated for a in scored),
        "mean_completion_tokens": round(sum(a.completion_tokens for a in scored) / n, 1) if n else None,
        "paper_reasonmed_7b": None if paper is None else {"accuracy": paper[0], "se": paper[1], "questions": paper[2]},
    }


def summarise(answers: list[Answer], *, model: str) -> dict[str, Any]:
    by: dict[str, list[Answer]] = defaultdict(list)
    for a in answers:
        by[a.item.benchmark].append(a)
    rows = [_row(k, benchmarks.label(k), by[k]) for k in sorted(by, key=benchmarks.order)]
    total = _row("total", "Total", answers)
    total["paper_reasonmed_7b"] = {"accuracy": TABLE4_TOTAL["ReasonMed-7B"][0], "se": None,
                                   "mean_output_tokens": TABLE4_TOTAL["ReasonMed-7B"][1]}
    return {"model": model, "protocol": "simple-evals (strict: first 'Answer: X'); lenient reported beside",
            "rows": rows, "total": total,
            "paper": "ReasonMed-7B, the paper's Table 4 (accuracy % +- SE, lm-evaluation-harness)"}


def _pct(p: dict[str, Any]) -> str:
    if not p["n"]:
        return "-"
    return f"{100 * p['rate']:5.1f} [{100 * p['ci95_low']:4.1f}, {100 * p['ci95_high']:4.1f}]"


def render(summary: dict[str, Any]) -> str:
    head = (f"{'benchmark':<28}{'n':>6}  {'strict % [95% CI]':<21}{'lenient % (labelled)':<22}"
            f"{'no letter':>10}{'failed':>8}   {'paper ReasonMed-7B':<18}")
    lines = [f"zero-shot accuracy of {summary['model']} ({summary['protocol']})", head, "-" * len(head)]
    for r in [*summary["rows"], summary["total"]]:
        p = r["paper_reasonmed_7b"]
        paper = "-" if p is None else f"{p['accuracy']:.1f}" + (f" +- {p['se']:.1f}" if p.get("se") else "")
        lines.append(f"{r['label']:<28}{r['scored']:>6}  {_pct(r['strict']):<21}{_pct(r['lenient']):<22}"
                     f"{r['strict_extraction_failures']:>10}{r['call_failures']:>8}   {paper:<18}")
    lines.append(f"paper column: {summary['paper']}; not this run's figures")
    return "\n".join(lines)
