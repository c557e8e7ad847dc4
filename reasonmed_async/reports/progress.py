"""Progress of a database's runs: how far, how fast, what it will cost, when it ends.

``estimate`` is pure arithmetic over two readings; ``watch`` redraws it live
(rich) until interrupted or until every run is finished.  rich is imported by
``render`` and ``watch`` alone: `reasonmed run` off a terminal prints plain lines
(``estimate`` and ``read``) and has no use for it.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from reasonmed_async.config import AppConfig
from reasonmed_async.reports.status import TIERS, StatusReport, read_status
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore

if TYPE_CHECKING:
    from rich.console import Console, Group


@dataclass(frozen=True)
class Reading:
    at: float
    questions: int  # in all runs
    settled: int  # with nothing left pending
    calls: int
    tokens: int
    cost: float


@dataclass(frozen=True)
class Estimate:
    fraction: float
    calls_per_s: float
    projected_tokens: int
    projected_cost: float
    eta_s: float | None


def estimate(first: Reading, now: Reading) -> Estimate:
    """Rates from the change between two readings; projections from the fraction of questions settled."""
    fraction = now.settled / now.questions if now.questions else 1.0
    elapsed = max(now.at - first.at, 1e-9)
    calls_per_s = (now.calls - first.calls) / elapsed
    done_since = now.settled - first.settled
    eta = None
    if fraction >= 1.0:
        eta = 0.0
    elif done_since > 0:
        eta = (now.questions - now.settled) * elapsed / done_since
    scale = 1.0 / fraction if fraction > 0 else 0.0
    return Estimate(fraction, calls_per_s, int(now.tokens * scale), now.cost * scale, eta)


async def read(store: CheckpointStore, config: AppConfig | None) -> tuple[StatusReport, Reading]:
    report = await read_status(store, config)
    unsettled = await queries.unsettled_questions(store)  # a question is settled once nothing of it is pending
    calls = sum(row[3] for row in report.calls)
    tokens = sum(row[4] + row[5] for row in report.calls)
    questions = sum(n for _, _, n in report.runs)
    reading = Reading(time.time(), questions, questions - unsettled, calls, tokens,
                      sum(report.costs.values()))
    return report, reading


async def run_ended(store: CheckpointStore) -> float | None:
    """When the last run finished, if every run has: rates of a finished database stop there."""
    _, last, finished = await queries.run_span(store)
    return None if not finished or last is None else float(last)


async def run_started(store: CheckpointStore) -> float:
    started, _, _ = await queries.run_span(store)
    return float(started or time.time())


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "unknown"
    seconds = int(seconds)
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m{seconds % 60:02d}s"


def render(report: StatusReport, reading: Reading, est: Estimate) -> Group:
    from rich.console import Group
    from rich.progress import BarColumn, Progress, TextColumn
    from rich.table import Table

    bars = Progress(TextColumn("{task.description:<14}"), BarColumn(), TextColumn("{task.completed:>9,} / {task.total:,}"),
                    TextColumn("{task.fields[extra]}"))
    bars.add_task("questions", total=max(reading.questions, 1), completed=reading.settled,
                  extra=f"ETA {_duration(est.eta_s)}")
    for name, c in report.stages.items():
        total = c.done + c.pending + c.failed
        bars.add_task(name, total=max(total, 1), completed=c.done + c.failed,
                      extra=f"pending {c.pending:,}  failed {c.failed:,}")
    tiers = Table(title="tiers", show_edge=False)
    for tier in (*TIERS, "failed"):
        tiers.add_column(tier, justify="right")
    tiers.add_row(*(f"{report.tiers.get(t, 0):,}" for t in TIERS), f"{report.question_failures:,}")
    money = Table(show_header=False, show_edge=False)
    money.add_row("LLM calls", f"{reading.calls:,}", f"{est.calls_per_s:,.1f}/s")
    money.add_row("tokens", f"{reading.tokens:,}", f"projected {est.projected_tokens:,}")
    money.add_row("cost", f"${reading.cost:,.2f}", f"projected ${est.projected_cost:,.2f}")
    return Group(bars, tiers, money)


async def watch(store: CheckpointStore, config: AppConfig | None, *, every_s: float = 2.0,
                console: Console | None = None) -> None:
    """Redraw the progress every ``every_s`` seconds until every run is finished (or Ctrl-C)."""
    from rich.console import Console
    from rich.live import Live

    console = console or Console()
    report, first = await read(store, config)
    first = Reading(await run_started(store), 0, 0, 0, 0, 0.0) if first.settled == 0 else first
    with Live(render(report, first, estimate(first, first)), console=console, refresh_per_second=4) as live:
        while True:
            report, now = await read(store, config)
            live.update(render(report, now, estimate(first, now)))
            if report.runs and report.finished:
                return
            if report.stopped:  # unfinished, and no process drives it any more
                console.print(f"run stopped (nobody is driving it): continue with `reasonmed resume --db {store.path}`")
                return
            await asyncio.sleep(every_s)
