"""Every number of the run report, read from a checkpoint database by read-only queries.

``collect`` returns plain JSON-able data (``report.json`` is exactly it); the figures
and the page are drawn from it, never from the database again.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from agents.prompts import TEMPLATE_NAMES, Templates

from reasonmed_async.config import AppConfig, ConfigError, parse_config
from reasonmed_async.reports.report import paper
from reasonmed_async.reports.report.tally import RULES, Tally, path_keys
from reasonmed_async.store import queries
from reasonmed_async.store.queries import Reader as Source

TIERS = ("easy", "medium", "difficult")
_TYPES = ("Verdict", "StageFailed", "Ranked", "RecordReady")
RATE_BINS = 60


async def _runs(db: Source) -> tuple[list[dict[str, Any]], AppConfig | None]:
    rows = await queries.runs_in_full(db)
    runs = [{"id": r[0], "status": r[1], "questions": r[2], "input": r[3], "config_digest": r[4],
             "started_at": r[6], "finished_at": r[7]} for r in rows]
    config = None
    if rows:
        try:
            config = parse_config(rows[-1][5], source=f"run {rows[-1][0]} (stored config)", env={})
        except ConfigError:
            config = None
    return runs, config


async def _tally(db: Source, tally: Tally) -> None:
    async for m in queries.messages_of_types(db, _TYPES):
        tally.add(m)


async def _tiers(db: Source) -> dict[str, Any]:
    counts = {t: 0 for t in TIERS} | await queries.tier_counts(db)  # type: ignore[arg-type]
    questions = await queries.question_count(db)
    total = sum(counts.values())
    return {"counts": counts, "tiered": total, "questions": questions, "untiered": questions - total,
            "shares": {t: (round(n / total, 6) if total else None) for t, n in counts.items()}}


async def _calls(db: Source, config: AppConfig | None) -> dict[str, Any]:
    out = []
    for stage, model, outcome, calls, p, c in await queries.call_totals(db):  # type: ignore[arg-type]
        cost = config.cost(model, p, c) if config else 0.0
        out.append({"stage": stage, "model": model, "outcome": outcome, "calls": calls, "prompt_tokens": p,
                    "completion_tokens": c, "cost_usd": round(cost, 6), "failed": outcome != "ok"})
    per: dict[tuple[str, str], dict[str, Any]] = {}
    for r in out:
        agg = per.setdefault((r["stage"], r["model"]), {"stage": r["stage"], "model": r["model"], "calls": 0,
                                                        "failed_attempts": 0, "prompt_tokens": 0,
                                                        "completion_tokens": 0, "cost_usd": 0.0})
        agg["calls"] += r["calls"]
        agg["failed_attempts"] += r["calls"] if r["failed"] else 0
        agg["prompt_tokens"] += r["prompt_tokens"]
        agg["completion_tokens"] += r["completion_tokens"]
        agg["cost_usd"] = round(agg["cost_usd"] + r["cost_usd"], 6)
    totals = {k: sum(a[k] for a in per.values()) for k in ("calls", "failed_attempts", "prompt_tokens",
                                                            "completion_tokens")}
    totals["cost_usd"] = round(sum(a["cost_usd"] for a in per.values()), 6)
    return {"rows": out, "by_stage_model": list(per.values()), "totals": totals}


async def _rate(db: Source) -> dict[str, Any]:
    """Completed (paid) calls per second over the run: the response cache stamps each one as it returns."""
    lo, width, counts = await queries.paid_call_times(db, RATE_BINS)
    if lo is None:
        return {"bins": [], "bin_s": None, "calls": 0}
    return {"bin_s": width, "calls": sum(counts), "start": lo,
            "bins": [{"t_s": round(i * width, 3), "calls": k, "calls_per_s": round(k / width, 3)}
                     for i, k in enumerate(counts)]}


def _summary(values: list[int]) -> dict[str, Any]:
    n = len(values)
    mean = statistics.fmean(values) if n else math.nan
    se = statistics.stdev(values) / math.sqrt(n) if n > 1 else math.nan
    return {"n": n, "mean": None if not n else round(mean, 4), "se": None if n < 2 else round(se, 4)}


async def _scores(db: Source, tables: set[str]) -> dict[str, Any]:
    if "scores" not in tables:
        return {"sets": [], "paired": None}
    by: dict[tuple[str, str], dict[str, int]] = {}
    for label, target, model, score in await queries.all_scores(db):
        by.setdefault((label, model), {})[target] = score
    sets = [{"label": label, "model": model, **_summary(list(s.values())),
             "paper": paper.SCORE_BY_LABEL.get(label)} for (label, model), s in sorted(by.items())]
    paired = None
    pre = {m: s for (lab, m), s in by.items() if lab == "pre-refine"}
    post = {m: s for (lab, m), s in by.items() if lab == "post-refine"}
    for model in sorted(set(pre) & set(post)):
        common = sorted(set(pre[model]) & set(post[model]))
        diffs = [post[model][t] - pre[model][t] for t in common]
        paired = {"model": model, "pre": _summary([pre[model][t] for t in common]),
                  "post": _summary([post[model][t] for t in common]), "difference": _summary(diffs),
                  "paper": {"pre": 7.37, "post": 8.17}}
    return {"sets": sets, "paired": paired}


async def _contamination(db: Source, tables: set[str]) -> dict[str, Any] | None:
    if "contamination" not in tables or "meta" not in tables:
        return None
    return await queries.contamination_counts(db)


def _templates(config: AppConfig | None, tally: Tally) -> dict[str, Any]:
    now: dict[str, str] = {}
    if config is not None:
        try:
            t = Templates.load(config.templates_dir)
            now = {name: t.hash(name) for name in TEMPLATE_NAMES}
        except (OSError, ValueError) as exc:
            now = {"error": str(exc)}
    return {"recorded": tally.template_rows(), "configured_now": now}


async def collect(db: Source) -> dict[str, Any]:
    """All of the report's numbers: JSON-able, deterministic for one database."""
    tables = await queries.table_names(db)
    runs, config = await _runs(db)
    tally = Tally(path_keys(config.flow.generators) if config else {})
    await _tally(db, tally)
    return {
        "runs": runs,
        "config_digests": sorted({r["config_digest"] for r in runs}),
        "templates": _templates(config, tally),
        "tiers": await _tiers(db),
        "verdicts": tally.verdict_rows(),
        "ranker": {"picks": tally.pick_rows(),
                   "ranked": [{"tier": t, "called": c, "questions": n} for (t, c), n in sorted(tally.ranked.items())]},
        "complementarity": {rule: tally.complementarity(rule) for rule in RULES},
        "records": tally.record_rows(),
        "reverification": tally.reverify_rows(),
        "quality_gates": tally.gate_rows(),
        "failures": tally.failure_rows(),
        "calls": await _calls(db, config),
        "call_rate": await _rate(db),
        "scores": await _scores(db, tables),
        "contamination": await _contamination(db, tables),
        "unknown_paths": sorted(tally.unknown_paths),
        "paper": {
            "source": paper.PAPER, "questions": paper.PAPER_QUESTIONS, "tier_rule": paper.TIER_RULE,
            "table5": paper.complementarity_rows(),
            "table6": [{"generator": g, "missed_only_by": n, "pct": round(100 * n / paper.PAPER_QUESTIONS, 2)}
                       for g, n in paper.COMPLEMENTARITY_1V2.items()],
            "scores": paper.SCORES,
        },
    }
