"""``reasonmed score``: the Score Evaluator as a measurement (SPEC §1.7), resumable.

Targets of a run's database (``--stage``), or of another dataset in Alpaca form
(``--file``), are sampled deterministically (sorted ids, then
``random.Random(seed).sample``) and scored 1–10 by the scorer stage's model,
through the pipeline's own client stack (retries, the LLM response cache).
Every score is stored in the ``scores`` table the moment it returns, so a rerun
scores only what is missing, and prints the mean with its standard error.

- ``pre-refine``: the ranked chosen CoTs of medium-tier questions, before refinement;
- ``post-refine``: the refined CoTs of those questions that passed re-verification;
- ``final``: the responses of the final records.

A ``pre-refine`` and a ``post-refine`` target share their id (``<question>/<path>``).
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import math
import random
import statistics
import string
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from agents.calls import JudgeFailed, ask_json, request
from agents.llm import ChatMessage, LLMError
from agents.parsing import parse_score
from agents.prompts import SCORE_SCHEMA, Templates, scorer_messages
from bus import LETTERS, Message, Question, Ranked, RecordReady, Refined, Verdict, decode

from reasonmed_async.config import AppConfig, load_config
from reasonmed_async.reports.formats import AlpacaError, read_alpaca, split_instruction
from reasonmed_async.logs.setup import configure_for
from reasonmed_async.pipeline import Pipeline, stored_config
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore

STAGES = ("pre-refine", "post-refine", "final")
EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


class ScoreUsageError(ValueError):
    """Bad arguments for ``reasonmed score``: exit 2."""


@dataclass(frozen=True)
class Target:
    """One thing to score: its id and the scorer prompt built for it."""

    id: str
    question_id: str
    messages: tuple[ChatMessage, ...]


@dataclass
class ScoreReport:
    label: str
    model: str
    available: int
    scores: dict[str, int] = field(default_factory=dict)
    new: int = 0
    failures: dict[str, str] = field(default_factory=dict)
    call_failures: int = 0

    @property
    def n(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.scores.values()) if self.scores else math.nan

    @property
    def stderr(self) -> float:
        return statistics.stdev(self.scores.values()) / math.sqrt(self.n) if self.n > 1 else math.nan

    def render(self) -> str:
        head = f"{self.label}: n={self.n} mean={self.mean:.3f} se={self.stderr:.3f}"
        tail = (f"(scorer {self.model}; {self.n + len(self.failures)} sampled of {self.available}, "
                f"{self.new} newly scored, {self.n - self.new} from earlier, {len(self.failures)} not scored)")
        return f"{head} {tail}"


def sample_ids(ids: list[str], n: int | None, seed: int) -> list[str]:
    """``n`` ids drawn with ``random.Random(seed)`` from the sorted ids (all when ``n`` is None), sorted."""
    ordered = sorted(set(ids))
    if n is None or n >= len(ordered):
        return ordered
    return sorted(random.Random(seed).sample(ordered, n))


def _entries(stage: str, m: Message) -> list[tuple[str, Question, str]]:
    """(target id, question, text to score) of one stored message of a stage."""
    if isinstance(m, Ranked) and stage == "pre-refine" and m.tier == "medium":
        return [(f"{m.question_id}/{p.name}", m.question, p.cot) for p in m.chosen]
    if isinstance(m, Verdict | Refined) and stage == "post-refine" and m.attempt >= 1 and m.path.origin == "refined":
        return [(f"{m.question_id}/{m.path.name}", m.question, m.path.cot)]
    if isinstance(m, RecordReady) and stage == "final":
        return [(m.record_id, m.question, m.response)]
    return []


async def stage_targets(store: CheckpointStore, stage: str, templates: Templates, n: int | None, seed: int,
                        *, reverify: bool = True) -> tuple[list[Target], int]:
    """The sampled targets of a stage, and how many it has.  Two passes, so that only the sample's
    texts are ever held: ids first (the first message naming one wins), then the sampled messages."""
    kind, label = {"pre-refine": ("Ranked", "%"), "final": ("RecordReady", "%"),
                   "post-refine": ("Verdict", "Correct:%") if reverify else ("Refined", "%")}[stage]
    first: dict[str, int] = {}
    async for seq, message in queries.messages_by_label(store, kind, label):
        for tid, _, _ in _entries(stage, message):
            first.setdefault(tid, seq)
    chosen = sample_ids(list(first), n, seed)
    found: dict[str, Target] = {}
    seqs = sorted({first[tid] for tid in chosen})
    for seq, message in await queries.messages_at(store, seqs):
        for tid, q, text in _entries(stage, message):
            if first.get(tid) == seq:
                found[tid] = Target(tid, q.id, scorer_messages(templates, q, text))
    return [found[tid] for tid in chosen], len(first)


async def score_targets(pipeline: Pipeline, targets: list[Target], label: str, available: int,
                        templates: Templates, *, concurrency: int = 8) -> ScoreReport:
    """Score what is not yet in the ``scores`` table; store each score as it returns."""
    flow = pipeline.config.flow
    sampling = flow.scorer
    assert sampling is not None
    store, client = pipeline.store, pipeline.clients[sampling.model]
    done = await queries.stored_scores(store, label, sampling.model)
    report = ScoreReport(label, sampling.model, available,
                         scores={t.id: done[t.id] for t in targets if t.id in done})
    template = templates.hash("score")
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(t: Target) -> None:
        req = request(sampling, t.messages, schema=SCORE_SCHEMA,
                      meta={"task": "score", "question_id": t.question_id})
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


def file_messages(templates: Templates, row: dict[str, str]) -> tuple[ChatMessage, ...]:
    """The scorer prompt for an Alpaca row: the question from its instruction, ``input`` as context;
    the gold answer only where the row has an ``answer`` (letter or option text)."""
    stem, options = split_instruction(row["instruction"])
    gold = str(row.get("answer") or "").strip()
    index = next((i for i, o in enumerate(options) if gold in (LETTERS[i], o)), None)
    ctx = str(row.get("input") or "").strip()
    fields = {
        "stem": stem,
        "options": "\n".join(f"{LETTERS[i]}) {o}" for i, o in enumerate(options)) or "(none: an open question)",
        "context": f"Context:\n{ctx}\n\n" if ctx else "",
        "answer": f"{LETTERS[index]}) {options[index]}" if index is not None else "(not given)",
        "response": row["output"].strip(),
    }
    return (ChatMessage("user", string.Template(templates.text("score")).substitute(fields).strip()),)


def file_targets(path: Path, templates: Templates, n: int | None, seed: int) -> tuple[list[Target], int]:
    rows = read_alpaca(path)
    ids = {f"row-{i:07d}": row for i, row in enumerate(rows)}
    return [Target(tid, tid, file_messages(templates, ids[tid])) for tid in sample_ids(list(ids), n, seed)], len(rows)


def file_label(path: Path) -> str:
    return f"file:{path.name}:{hashlib.sha256(path.read_bytes()).hexdigest()[:12]}"


async def _config(args: argparse.Namespace, db: Path) -> AppConfig:
    if args.config:
        config = load_config(args.config)
    elif db.is_file():
        async with await CheckpointStore.open(db) as store:
            if not await queries.runs(store):
                raise ScoreUsageError(f"{db}: holds no run, so no stored configuration: give --config FILE")
            config = await stored_config(store, unfinished=False)
    else:
        raise ScoreUsageError("--file needs --config FILE (or a --db that holds a run)")
    if config.flow.scorer is None:
        raise ScoreUsageError(f"{config.source}: no [stages.scorer]: the score command needs the scorer's model")
    return config


async def score_command(args: argparse.Namespace) -> int:
    """The handler of ``reasonmed score``."""
    try:
        if args.sample is not None and args.sample < 1:
            raise ScoreUsageError("--sample must be >= 1")
        db = Path(args.db)
        if args.stage and not db.is_file():
            raise ScoreUsageError(f"{db}: no such database")
        config = await _config(args, db)
        templates = Templates.load(config.templates_dir)
        rows = file_targets(Path(args.file), templates, args.sample, args.seed) if args.file else None
    except (ScoreUsageError, AlpacaError) as exc:
        print(f"reasonmed: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    configure_for(config, db)
    scorer = config.flow.scorer.model if config.flow.scorer else None
    async with Pipeline.open(config, db, models={scorer} if scorer else set(), agents=False) as pipeline:
        if rows is not None:
            label = file_label(Path(args.file))
            targets, available = rows
        else:
            label = args.stage
            targets, available = await stage_targets(pipeline.store, args.stage, templates, args.sample, args.seed,
                                                     reverify=config.flow.reverify)
        report = await score_targets(pipeline, targets, label, available, templates,
                                     concurrency=config.concurrency.get("scorer", 8))
    print(report.render())
    for tid, reason in sorted(report.failures.items()):
        print(f"reasonmed: not scored: {tid}: {reason}", file=sys.stderr)
    if report.call_failures:
        print(f"reasonmed: {report.call_failures} scorer call(s) failed; rerun to score them", file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Add ``score`` to the ``reasonmed`` command (a registrar for ``cli.EXTRA_COMMANDS``)."""
    p = subparsers.add_parser("score", help="score a sample with the Score Evaluator: mean and standard error",
                              description=__doc__.split("\n\n")[1] if __doc__ else None)
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--stage", choices=STAGES, help="what of the run to score")
    what.add_argument("--file", help="another dataset in Alpaca form (JSON list or JSONL of instruction/input/output)")
    p.add_argument("--db", required=True, help="checkpoint database (scores are stored and resumed there)")
    p.add_argument("--sample", type=int, default=None, help="score N targets drawn with --seed (default: all)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample (default: 0)")
    p.add_argument("--config", default=None, help="TOML configuration (default: the run's stored one)")
    p.set_defaults(handler=score_command)
