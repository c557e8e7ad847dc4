"""``reasonmed score``: the Score Evaluator as a measurement (SPEC §1.7), resumable.

Targets of a run's database (``--stage``, repeatable; ``refine`` is ``pre-refine`` and ``post-refine``
together), or other datasets in Alpaca form (``--file``, repeatable), are sampled deterministically and
scored 1–10 by the scorer stage's model, through the pipeline's own client stack (retries, the LLM response
cache).  Every score is stored in the ``scores`` table the moment it returns, so a rerun scores only what is
missing.  One table is printed: dataset, samples, mean score, its standard error; with both refine stages, the
paired difference (post − pre over the targets scored in both) and its standard error.  What each stage
scores: ``reasonmed_async.reports.score_targets``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import statistics
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from agents.calls import JudgeFailed, ask_json, request
from agents.llm import LLMError
from agents.parsing import parse_score
from agents.prompts import SCORE_SCHEMA, Templates, check_score_template

from reasonmed_async.commands.summaries import SUMMARIES
from reasonmed_async.config import AppConfig, load_config
from reasonmed_async.reports.formats import AlpacaError
from reasonmed_async.reports.score_targets import STAGES, Target, file_targets, sample_ids, stage_targets
from reasonmed_async.logs.setup import configure_for
from reasonmed_async.pipeline import Pipeline, stored_config
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore
from reasonmed_async.workers import worker_counts

__all__ = ["STAGES", "ScoreReport", "paired_difference", "register", "render_table", "sample_ids", "score_command"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class ScoreUsageError(ValueError):
    """Bad arguments for ``reasonmed score``: exit 2."""


def _se(values: list[float]) -> float:
    return statistics.stdev(values) / math.sqrt(len(values)) if len(values) > 1 else math.nan


@dataclass
class ScoreReport:
    label: str
    model: str
    available: int
    scores: dict[str, int] = field(default_factory=dict)
    new: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    call_failures: int = 0
    marks: dict[str, str] = field(default_factory=dict)
    name: str = ""

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores.values()) if self.scores else math.nan

    @property
    def stderr(self) -> float:
        return _se([float(v) for v in self.scores.values()])

    def note(self) -> str:
        rejected = sum(self.marks.get(t) == "rejected" for t in self.scores)
        marked = f", {rejected} of them rejected by re-verification (scored too)" if rejected else ""
        return (f"{self.name or self.label}: scorer {self.model}; {self.n + len(self.failures)} sampled of"
                f" {self.available}, {self.new} newly scored, {self.n - self.new} from earlier,"
                f" {len(self.failures)} not scored{marked}")


def paired_difference(pre: dict[str, int], post: dict[str, int]) -> tuple[int, float, float]:
    """``(n, mean, se)`` of post − pre over the targets scored in both."""
    common = sorted(set(pre) & set(post))
    diffs = [float(post[t] - pre[t]) for t in common]
    return len(diffs), statistics.fmean(diffs) if diffs else math.nan, _se(diffs)


def render_table(reports: list[ScoreReport]) -> str:
    width = max([len("dataset"), len("post-refine - pre-refine (paired)"), *(len(r.name or r.label) for r in reports)])
    lines = [f"{'dataset':<{width}}  {'samples':>7}  {'mean score':>10}  {'se':>6}"]
    for r in reports:
        lines.append(f"{r.name or r.label:<{width}}  {r.n:>7}  {r.mean:>10.2f}  {r.stderr:>6.2f}")
    by = {r.label: r for r in reports}
    if "pre-refine" in by and "post-refine" in by:
        n, mean, se = paired_difference(by["pre-refine"].scores, by["post-refine"].scores)
        lines.append(f"{'post-refine - pre-refine (paired)':<{width}}  {n:>7}  {mean:>+10.2f}  {se:>6.2f}")
    return "\n".join(lines)


async def score_targets(pipeline: Pipeline, targets: list[Target], label: str, available: int,
                        templates: Templates, *, concurrency: int = 8, name: str = "") -> ScoreReport:
    """Score what is not yet in the ``scores`` table (same model, same prompt); store each score as it returns."""
    flow = pipeline.config.flow
    sampling = flow.scorer
    assert sampling is not None
    store, client = pipeline.store, pipeline.clients[sampling.model]
    template = templates.hash("score") + ("+answer" if flow.score_show_answer else "")
    done = await queries.stored_scores(store, label, sampling.model, template)
    report = ScoreReport(label, sampling.model, available, name=name,
                         scores={t.id: done[t.id] for t in targets if t.id in done},
                         marks={t.id: t.mark for t in targets if t.mark})
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(t: Target) -> None:
        req = request(sampling, t.messages, schema=SCORE_SCHEMA, meta={"task": "score", "question_id": t.question_id})
        async with gate:
            try:
                (score, why), _, _ = await ask_json(client, req, parse_score, corrections=flow.judge_corrections)
            except (JudgeFailed, LLMError) as exc:  # an unparseable judge, or a call that failed for good
                report.failures[t.id] = f"{type(exc).__name__}: {exc}"
                report.call_failures += isinstance(exc, LLMError)
                return
        await store.execute(
            "INSERT OR REPLACE INTO scores(label, target_id, model, score, justification, template, created_at)"
            " VALUES (?,?,?,?,?,?,?)", (label, t.id, sampling.model, score, why, template, time.time()))
        report.scores[t.id] = score
        report.new += 1

    async with asyncio.TaskGroup() as tg:
        for t in targets:
            if t.id not in done:
                tg.create_task(one(t))
    return report


def file_label(path: Path) -> str:
    return f"file:{path.name}:{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


async def _config(args: argparse.Namespace, db: Path) -> AppConfig:
    if args.config:
        config = load_config(args.config)
    elif db.is_file():
        async with await CheckpointStore.open(db, read_only=True) as store:
            if not await queries.runs(store):
                raise ScoreUsageError(f"{db}: holds no run, so no stored configuration: give --config FILE")
            config = await stored_config(store, unfinished=False)
    else:
        raise ScoreUsageError("--file needs --config FILE (or a --db that holds a run)")
    if config.flow.scorer is None:
        raise ScoreUsageError(f"{config.source}: no [stages.scorer]: the score command needs the scorer's model")
    return config


def _stages(asked: list[str]) -> list[str]:
    wanted = {s for a in asked for s in (("pre-refine", "post-refine") if a == "refine" else (a,))}
    return [s for s in STAGES if s in wanted]


async def score_command(args: argparse.Namespace) -> int:
    """The handler of ``reasonmed score``."""
    stages, files = _stages(args.stage or []), [Path(f) for f in args.file or []]
    try:
        if not stages and not files:
            raise ScoreUsageError("give --stage STAGE or --file FILE (each may repeat)")
        if args.sample is not None and args.sample < 1:
            raise ScoreUsageError("--sample must be >= 1")
        db = Path(args.db)
        if stages and not db.is_file():
            raise ScoreUsageError(f"{db}: no such database")
        config = await _config(args, db)
        templates = Templates.load(config.templates_dir)
        check_score_template(templates, config.flow.score_show_answer)
        show = config.flow.score_show_answer
        rows = [(f, file_targets(f, templates, args.sample, args.seed, show_answer=show)) for f in files]
    except (ScoreUsageError, AlpacaError, ValueError) as exc:
        print(f"reasonmed: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_for(config, db)
    scorer = config.flow.scorer.model if config.flow.scorer else None
    conc = worker_counts(config).get("scorer", 8)  # calls at once: enough to fill the scorer's endpoint
    reports: list[ScoreReport] = []
    async with Pipeline.open(config, db, models={scorer} if scorer else set(), agents=False) as pipeline:
        for stage in stages:
            targets, available = await stage_targets(pipeline.store, stage, templates, args.sample, args.seed,
                                                     show_answer=show)
            reports.append(await score_targets(pipeline, targets, stage, available, templates, concurrency=conc))
        for path, (targets, available) in rows:
            reports.append(await score_targets(pipeline, targets, file_label(path), available, templates,
                                               concurrency=conc, name=path.name))
    print(render_table(reports))
    for report in reports:
        print(report.note())
    failed = 0
    for report in reports:
        for tid, reason in sorted(report.failures.items()):
            print(f"reasonmed: not scored: {report.name or report.label}: {tid}: {reason}", file=sys.stderr)
        failed += report.call_failures
    if failed:
        print(f"reasonmed: {failed} scorer call(s) failed; rerun to score them", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``score`` to the ``reasonmed`` command (a registrar for ``cli.EXTRA_COMMANDS``)."""
    p = subparsers.add_parser("score", help=SUMMARIES["score"],
                              description=__doc__.split("\n\n")[1] if __doc__ else None)
    p.add_argument("--stage", action="append", choices=(*STAGES, "refine"),
                   help="what of the run to score (repeatable; refine = pre-refine and post-refine, paired)")
    p.add_argument("--file", action="append",
                   help="another dataset in Alpaca form, JSON list or JSONL of instruction/input/output (repeatable)")
    p.add_argument("--db", required=True, help="checkpoint database (scores are stored and resumed there)")
    p.add_argument("--sample", type=int, default=None,
                   help="score N targets of each, drawn with --seed (default: all; the public code used 3000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default: 0)")
    p.add_argument("--config", default=None, help="TOML configuration (default: the run's stored one)")
    p.set_defaults(handler=score_command)
