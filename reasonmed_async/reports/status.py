"""What a checkpoint database says about its runs: stages, tiers, calls, records.

A run in the database is *finished*, *running* (a process holds the owner lock
and drives it) or *stopped* (unfinished and nobody drives it: killed, crashed or
stopped — ``reasonmed resume`` continues it).  A stage's ``failed`` counts every
delivery whose handling ended in a ``StageFailed`` (made by the bus or returned
by the agent for a lost path); ``pending`` is work waiting in the journal — which
of it is out on the wire only the driving process knows.  Each question is in
one tier row or in the failed row."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

from reasonmed_async.config import AppConfig
from reasonmed_async.llm.cache import CACHED
from reasonmed_async.reports.live import live_snapshot, open_circuits
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore
from reasonmed_async.store.lock import OwnerLock

TIERS = ("easy", "medium", "difficult")


@dataclass
class StageCounts:
    done: int = 0
    pending: int = 0
    failed: int = 0


@dataclass
class StatusReport:
    runs: list[tuple[str, str, int]] = field(default_factory=list)
    stages: dict[str, StageCounts] = field(default_factory=dict)
    tiers: dict[str, int] = field(default_factory=dict)
    question_failures: int = 0
    gates: dict[str, int] = field(default_factory=dict)
    ranker_fallbacks: int = 0
    records: int = 0
    calls: list[tuple[str, str, str, int, int, int]] = field(default_factory=list)
    costs: dict[tuple[str, str, str], float] = field(default_factory=dict)
    driving: bool = False  # a process holds the owner lock now
    db: str = ""
    started_at: float | None = None
    last_activity: float | None = None
    cache_hits: dict[str, int] = field(default_factory=dict)  # per model: calls the cache answered (not paid again)
    retries: dict[str, int] = field(default_factory=dict)  # per model: failed attempts sent again
    open_circuits: list[dict[str, Any]] = field(default_factory=list)  # model, endpoint, error class
    live: dict[str, Any] | None = None  # the driving process's snapshot (reports/live.py): calls on the wire

    @property
    def finished(self) -> bool:
        return all(status == "finished" for _, status, _ in self.runs)

    def state(self, status: str) -> str:
        """finished, running (driven now) or stopped (unfinished, nobody driving it)."""
        return "finished" if status == "finished" else "running" if self.driving else "stopped"

    @property
    def running(self) -> bool:
        return self.driving and not self.finished

    @property
    def stopped(self) -> bool:
        return bool(self.runs) and not self.finished and not self.driving

    def elapsed_s(self, now: float | None = None) -> float | None:
        """From the first run's start to now while running, else to the last message written."""
        if self.started_at is None:
            return None
        end = (now or time.time()) if self.running else (self.last_activity or self.started_at)
        return max(0.0, end - self.started_at)

    @property
    def in_flight(self) -> dict[str, Any] | None:
        """Calls out on the wire, attempts waiting to be resent and messages being handled now (None: not running)."""
        if self.live is None or not self.running:
            return None
        return {"calls": self.live.get("in_flight", 0), "queued": self.live.get("queued", 0),
                "waiting": self.live.get("backing_off", 0), "handlers_busy": self.live.get("handlers_busy", 0),
                "age_s": round(max(0.0, time.time() - float(self.live.get("at", time.time()))), 3)}

    @property
    def attempt_errors(self) -> dict[str, int]:
        """Failed attempts (retried or final) by error class; ``RateLimited`` are the 429s."""
        errors: dict[str, int] = {}
        for _, _, outcome, calls, _, _ in self.calls:
            if outcome.startswith("error:"):
                errors[outcome[6:]] = errors.get(outcome[6:], 0) + calls
        return errors

    def to_json(self) -> dict[str, Any]:
        """Everything ``render`` shows, for scripts (``status --json``)."""
        return {
            "runs": [{"id": r, "status": self.state(s), "questions": n} for r, s, n in self.runs],
            "state": "finished" if self.finished else "running" if self.driving else "stopped",
            "elapsed_s": self.elapsed_s(),
            "stages": {name: asdict(c) for name, c in self.stages.items()},
            "tiers": dict(self.tiers), "failed_questions": self.question_failures, "gates": dict(self.gates),
            "records": self.records,
            "calls": [{"stage": st, "model": m, "outcome": o, "calls": n, "prompt_tokens": p,
                       "completion_tokens": c, "cost_usd": round(self.costs.get((st, m, o), 0.0), 6)}
                      for st, m, o, n, p, c in self.calls],
            "failed_attempts": self.attempt_errors,
            "rate_limited": self.attempt_errors.get("RateLimited", 0),
            "retries": sum(self.retries.values()), "cache_hits": sum(self.cache_hits.values()),
            "cache_hits_by_model": dict(self.cache_hits), "open_circuits": list(self.open_circuits),
            "in_flight": self.in_flight,
            "cost_usd": round(sum(self.costs.values()), 6),
        }


async def read_status(store: CheckpointStore, config: AppConfig | None = None) -> StatusReport:
    report = StatusReport()
    report.runs = [(r.id, r.status, r.questions) for r in await queries.runs(store)]
    for consumer, state, count in await queries.delivery_counts(store):
        setattr(report.stages.setdefault(consumer, StageCounts()), state, count)
    failed = await queries.failed_deliveries(store)
    for consumer, c in report.stages.items():
        settled = c.done + c.failed
        c.failed = min(settled, failed.get(consumer, 0))
        c.done = settled - c.failed
    report.driving = OwnerLock(store.path).held_elsewhere()
    report.db = str(store.path)
    report.started_at, _, _ = await queries.run_span(store)
    report.last_activity = await queries.last_activity(store)
    report.tiers = {t: 0 for t in TIERS} | await queries.tier_counts(store)
    report.question_failures = await queries.failed_questions(store)
    report.gates = await queries.gate_counts(store)
    report.ranker_fallbacks = await queries.ranker_fallbacks(store)
    report.records = await queries.record_count(store)
    report.calls = await queries.call_totals(store)
    for model, event, count in await queries.call_events(store):
        (report.cache_hits if event == CACHED else report.retries)[model] = count
    report.open_circuits = await open_circuits(store)
    report.live = await live_snapshot(store) if report.driving else None  # nothing is out while nobody drives
    if config is not None:
        report.costs = {(st, m, o): config.cost(m, p, c) for st, m, o, _, p, c in report.calls}
    return report


def render(report: StatusReport) -> str:
    lines = []
    for run_id, status, questions in report.runs:
        state = report.state(status)
        hint = f" (resumable: `reasonmed resume --db {report_db(report)}`)" if state == "stopped" else ""
        lines.append(f"run {run_id}: {state}, {questions} questions{hint}")
    if (elapsed := report.elapsed_s()) is not None:
        lines.append(f"elapsed: {_clock(elapsed)}{'' if report.running else ' (not running now)'}")
    lines.append("")
    lines.append(f"{'stage':<14}{'done':>9}{'pending':>11}{'failed':>9}")
    for name, c in report.stages.items():
        lines.append(f"{name:<14}{c.done:>9}{c.pending:>11}{c.failed:>9}")
    lines.append("")
    total = sum(report.tiers.values()) or 1
    lines.append(f"{'tier':<14}{'questions':>9}{'share':>9}")
    for tier in TIERS:
        n = report.tiers.get(tier, 0)
        lines.append(f"{tier:<14}{n:>9}{n / total:>9.1%}")
    lines.append(f"{'failed':<14}{report.question_failures:>9}")
    for gate, n in report.gates.items():
        lines.append(f"{'rejected by gate ' + gate:<30}{n:>9}")
    if report.ranker_fallbacks:  # the ranker's answers never parsed: the first two correct paths were kept
        lines.append(f"{'ranker fallbk':<14}{report.ranker_fallbacks:>9}")
    lines.append("")
    lines.append(f"final records: {report.records}")
    lines.extend(_call_rows(report))
    if report.calls:
        lines.append("")
        lines.append(f"{'LLM calls':<12}{'model':<32}{'outcome':<22}{'calls':>8}{'prompt tok':>12}{'compl. tok':>12}"
                     f"{'cost $':>10}")
        for stage, model, outcome, calls, p, c in report.calls:
            cost = report.costs.get((stage, model, outcome), 0.0)
            lines.append(f"{stage:<12}{model:<32}{outcome:<22}{calls:>8}{p:>12}{c:>12}{cost:>10.2f}")
        lines.append(f"{'total':<66}{sum(r[3] for r in report.calls):>8}{'':>24}{sum(report.costs.values()):>10.2f}")
        if errors := report.attempt_errors:
            lines.append("failed attempts (retried or final): " + ", ".join(f"{k} {v}" for k, v in sorted(errors.items()))
                         + f"; 429s: {errors.get('RateLimited', 0)}")
    return "\n".join(lines)


def _call_rows(report: StatusReport) -> list[str]:
    """In flight (apart from pending), retries, 429s, cache hits and open circuits: a row each."""
    if (flight := report.in_flight) is not None:
        row = (f"in flight: {flight['calls']} LLM calls on the wire, {flight['queued']} queued for a replica slot,"
               f" {flight['waiting']} waiting to be sent again")
        rows = [row + f"; {flight['handlers_busy']} messages being handled (as of {flight['age_s']:.0f} s ago)"]
    else:
        rows = ["in flight: 0 (no process drives this database)"]
    rows.append(f"retries: {sum(report.retries.values())} attempts sent again; "
                f"429s: {report.attempt_errors.get('RateLimited', 0)}")
    rows.append(f"cache hits: {sum(report.cache_hits.values())} calls answered by the cache (not paid again)")
    circuits = "; ".join(f"{c['model']} at {c.get('endpoint') or 'its endpoint'} ({c.get('error', '?')})"
                         for c in report.open_circuits)
    rows.append(f"open circuits: {circuits or 'none'}"
                + (f" (fix the key or URL, then `reasonmed resume --db {report_db(report)}`)" if circuits else ""))
    return rows


def report_db(report: StatusReport) -> str:
    return report.db or "DB"


def _clock(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600}h{s % 3600 // 60:02d}m{s % 60:02d}s"
