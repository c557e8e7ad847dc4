"""What a checkpoint database says about its runs: stages, tiers, calls, records."""

from __future__ import annotations

from dataclasses import dataclass, field

from reasonmed_async.config import AppConfig
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore

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
    records: int = 0
    calls: list[tuple[str, str, str, int, int, int]] = field(default_factory=list)
    costs: dict[tuple[str, str, str], float] = field(default_factory=dict)

    @property
    def finished(self) -> bool:
        return all(status == "finished" for _, status, _ in self.runs)


async def read_status(store: CheckpointStore, config: AppConfig | None = None) -> StatusReport:
    report = StatusReport()
    report.runs = [(r.id, r.status, r.questions) for r in await queries.runs(store)]
    for consumer, state, count in await queries.delivery_counts(store):
        setattr(report.stages.setdefault(consumer, StageCounts()), state, count)
    report.tiers = {t: 0 for t in TIERS} | await queries.tier_counts(store)
    report.question_failures = await queries.failed_questions(store)
    report.gates = await queries.gate_counts(store)
    report.records = await queries.record_count(store)
    report.calls = await queries.call_totals(store)
    if config is not None:
        report.costs = {(st, m, o): config.cost(m, p, c) for st, m, o, _, p, c in report.calls}
    return report


def render(report: StatusReport) -> str:
    lines = []
    for run_id, status, questions in report.runs:
        lines.append(f"run {run_id}: {status}, {questions} questions")
    lines.append("")
    lines.append(f"{'stage':<14}{'done':>9}{'in flight':>11}{'failed':>9}")
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
    lines.append("")
    lines.append(f"final records: {report.records}")
    if report.calls:
        lines.append("")
        lines.append(f"{'LLM calls':<12}{'model':<32}{'outcome':<22}{'calls':>8}{'prompt tok':>12}{'compl. tok':>12}"
                     f"{'cost $':>10}")
        for stage, model, outcome, calls, p, c in report.calls:
            cost = report.costs.get((stage, model, outcome), 0.0)
            lines.append(f"{stage:<12}{model:<32}{outcome:<22}{calls:>8}{p:>12}{c:>12}{cost:>10.2f}")
        lines.append(f"{'total':<66}{sum(r[3] for r in report.calls):>8}{'':>24}{sum(report.costs.values()):>10.2f}")
    return "\n".join(lines)
