"""The report as one self-contained HTML page: figures inline (base64 PNG), no external resource."""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from html import escape
from typing import Any

from reasonmed_async.reports.report.figures import Figure
from reasonmed_async.reports.report.paper import SCORES

_CSS = """
body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1100px;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}
th{background:#f3f3f3}td.n{text-align:right;font-variant-numeric:tabular-nums}
.paper{color:#555;background:#fafafa;font-style:italic}figure{margin:1em 0}img{max-width:100%}
.note{color:#666;font-size:12px}code{font-size:12px}
"""


def _cell(v: Any) -> str:
    if v is None:
        return "<td>-</td>"
    if isinstance(v, float):
        return f'<td class="n">{v:,.4g}</td>'
    if isinstance(v, int) and not isinstance(v, bool):
        return f'<td class="n">{v:,}</td>'
    return f"<td>{escape(str(v))}</td>"


def table(head: Sequence[str], rows: Iterable[Sequence[Any]], *, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    body = "".join("<tr>" + "".join(_cell(v) for v in row) + "</tr>" for row in rows)
    return f"<table{attr}><tr>{''.join(f'<th>{escape(h)}</th>' for h in head)}</tr>{body}</table>"


def _pct(p: dict[str, Any]) -> str:
    if not p["n"]:
        return "-"
    return f"{100 * p['rate']:.1f}% [{100 * p['ci95_low']:.1f}, {100 * p['ci95_high']:.1f}]"


def _figure(f: Figure) -> str:
    data = base64.b64encode(f.png).decode("ascii")
    return (f'<figure><img alt="{escape(f.title)}" data-figure="{escape(f.name)}" '
            f'src="data:image/png;base64,{data}"><figcaption class="note">{escape(f.title)}'
            f" ({escape(f.name)}.png / .svg)</figcaption></figure>")


def _complementarity(c: dict[str, Any], d: dict[str, Any]) -> str:
    p = d["paper"]
    out = [f"<h3>Rule: a generator answers correctly when {escape(c['rule'])} of its judged paths "
           f"are verified Correct ({c['questions']:,} questions judged for every generator)</h3>",
           table(["A", "B", "correct by A only", "%", "correct by B only", "%"],
                 [(r["a"], r["b"], r["only_a"], r["only_a_pct"], r["only_b"], r["only_b_pct"])
                  for r in c["one_vs_one"]]),
           table(["generator", "missed by it while both others correct", "%"],
                 [(r["generator"], r["missed_only_by"], r["pct"]) for r in c["one_vs_two"]])]
    if c["rule"] == "any":
        out += [f'<p class="paper">The paper\'s Tables 5 and 6 ({p["questions"]:,} questions):</p>',
                table(["A (paper)", "B (paper)", "by A only", "%", "by B only", "%"],
                      [(r["a"], r["b"], r["only_a"], r["only_a_pct"], r["only_b"], r["only_b_pct"])
                       for r in p["table5"]], cls="paper"),
                table(["generator (paper)", "missed while both others correct", "%"],
                      [(r["generator"], r["missed_only_by"], r["pct"]) for r in p["table6"]], cls="paper")]
    return "".join(out)


def _scores(s: dict[str, Any]) -> str:
    if not s["sets"]:
        return "<p>No scores in this database (<code>reasonmed score</code> adds them).</p>"
    out = [table(["set", "scorer", "n", "mean", "SE", "paper's mean"],
                 [(x["label"], x["model"], x["n"], x["mean"], x["se"], x["paper"]) for x in s["sets"]])]
    if s["paired"]:
        q = s["paired"]
        out.append(table(["paired (same targets)", "n", "mean", "SE", "paper"], [
            ("pre-refine", q["pre"]["n"], q["pre"]["mean"], q["pre"]["se"], q["paper"]["pre"]),
            ("post-refine", q["post"]["n"], q["post"]["mean"], q["post"]["se"], q["paper"]["post"]),
            ("post - pre", q["difference"]["n"], q["difference"]["mean"], q["difference"]["se"], None)]))
    out.append(table(["dataset (paper, GPT-4o, 1,000 samples)", "mean"], list(SCORES.items()), cls="paper"))
    return "".join(out)


def render(d: dict[str, Any], figures: Sequence[Figure]) -> str:
    figs = {f.name: _figure(f) for f in figures}
    t = d["tiers"]
    calls = d["calls"]
    parts = [
        "<h1>ReasonMed run report</h1>",
        table(["run", "status", "questions", "input", "config digest"],
              [(r["id"], r["status"], r["questions"], r["input"], r["config_digest"]) for r in d["runs"]]),
        "<h2>Tiers</h2>", figs.get("fig6_tiers", ""),
        table(["tier", "questions", "share"],
              [(k, v, d["tiers"]["shares"][k]) for k, v in t["counts"].items()]
              + [("not tiered (failed or in flight)", t["untiered"], None)]),
        f'<p class="paper">Paper: {escape(d["paper"]["tier_rule"])}; Fig 6 is a chart (no counts in the text).</p>',
        "<h2>Verdicts per model x temperature</h2>", figs.get("fig4_verdicts", ""), figs.get("pass_rate", ""),
        table(["path", "model", "Correct", "Error", "no verdict", "not generated", "pass rate [95% Wilson]"],
              [(r["label"], r["model"], r["correct"], r["error"], r["no_verdict"], r["not_generated"],
                _pct(r["pass_rate"])) for r in d["verdicts"]]),
        "<h2>Ranker picks, easy vs medium</h2>", figs.get("fig5_ranker", ""),
        table(["path", "model", "easy", "medium"],
              [(r["label"], r["model"], r["easy"], r["medium"]) for r in d["ranker"]["picks"]]),
        table(["tier", "ranker called", "questions"],
              [(r["tier"], r["called"], r["questions"]) for r in d["ranker"]["ranked"]]),
        "<h2>Model complementarity (paper Tables 5 and 6)</h2>", figs.get("table5_complementarity", ""),
        *(_complementarity(c, d) for c in d["complementarity"].values()),
        "<h2>Final records</h2>",
        table(["tier", "origin", "records"], [(r["tier"], r["origin"], r["records"]) for r in d["records"]]),
        "<h2>Scores</h2>", figs.get("scores", ""), _scores(d["scores"]),
        "<h2>LLM calls, tokens and cost (failed attempts included)</h2>",
        table(["stage", "model", "calls", "failed attempts", "prompt tokens", "completion tokens", "cost $"],
              [(r["stage"], r["model"], r["calls"], r["failed_attempts"], r["prompt_tokens"],
                r["completion_tokens"], r["cost_usd"]) for r in calls["by_stage_model"]]
              + [("total", "", calls["totals"]["calls"], calls["totals"]["failed_attempts"],
                  calls["totals"]["prompt_tokens"], calls["totals"]["completion_tokens"],
                  calls["totals"]["cost_usd"])]),
        table(["stage", "model", "outcome", "calls"],
              [(r["stage"], r["model"], r["outcome"], r["calls"]) for r in calls["rows"]]),
        figs.get("call_rate", ""),
        "<h2>Failures by stage and kind</h2>",
        table(["stage", "kind", "count"], [(r["stage"], r["kind"], r["count"]) for r in d["failures"]])
        if d["failures"] else "<p>No stage failed.</p>",
        "<h2>Rejections (re-verification and quality gates)</h2>",
        table(["re-verification attempt", "Correct (kept)", "Error (rejected)"],
              [(r["attempt"], r["correct"], r["error"]) for r in d["reverification"]]),
        table(["stage", "rejected"], [(r["stage"], r["count"]) for r in d["failures"] if r["kind"] == "rejected"]),
        table(["quality gate", "CoTs kept out of the export"], [(r["gate"], r["rejected"]) for r in d["quality_gates"]])
        if d["quality_gates"] else "<p>No quality gate rejected a CoT (or none is configured).</p>",
        "<h2>Benchmark contamination</h2>", _contamination(d["contamination"]),
        "<h2>Config and templates</h2>",
        f"<p>config digest(s): {escape(', '.join(d['config_digests']))}</p>",
        table(["role", "model", "template sha256[:12] (recorded in provenance)"],
              [(r["role"], r["model"], r["template"]) for r in d["templates"]["recorded"]]),
        table(["template", "sha256[:12] as configured now"], list(d["templates"]["configured_now"].items())),
        f'<p class="note">Figures labelled "paper" are from the {escape(d["paper"]["source"])}, not from this run.</p>',
    ]
    return (f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>ReasonMed run report</title>'
            f"<style>{_CSS}</style></head><body>{''.join(parts)}</body></html>")


def _contamination(c: dict[str, Any] | None) -> str:
    if c is None:
        return "<p>Not checked (<code>reasonmed decontam --db DB --against FILES</code>).</p>"
    k = c["checked"]
    return (f"<p>{c['flagged_questions']:,} of {k['questions']:,} question(s) flagged against "
            f"{k['benchmark_questions']:,} benchmark questions ({escape(', '.join(k['against']) or 'no file')}) and "
            f"{k['listed_ids']:,} listed ids; 8-gram threshold {k['ngram_threshold']:g}, fuzzy {k['fuzzy_threshold']:g}.</p>"
            + table(["method", "pairs", "questions"], [(r["method"], r["pairs"], r["questions"]) for r in c["by_method"]]))
