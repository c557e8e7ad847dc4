"""``reasonmed decontam --db PATH --against FILES... [--exclude-ids FILE]``.

Compares every question of the database's runs with the benchmark questions of FILES (read with the
loaders; test splits are what is wanted here) and with official split id lists, prints each flagged
pair with its method and score, and stores them in the ``contamination`` table (replacing the last
check's): ``reasonmed report`` shows the counts, ``reasonmed export --exclude-contaminated`` leaves
those questions out.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from bus import QuestionIngested

from reasonmed_async.commands.summaries import SUMMARIES
from reasonmed_async.decontam.match import BenchmarkIndex, Item, Match, Thresholds, id_matches, question_text
from reasonmed_async.exit_codes import ExitCode
from reasonmed_async.loaders.dispatch import load_questions
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore

EXIT_OK, EXIT_USAGE = ExitCode.OK, ExitCode.USAGE


class DecontamUsageError(ValueError):
    """Bad arguments for ``reasonmed decontam``: exit 2."""


def read_ids(path: Path) -> set[str]:
    """Ids from a JSON list, the keys of a JSON object (PubMedQA's test_ground_truth.json) or one id a line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise DecontamUsageError(f"--exclude-ids {path}: {exc.strerror}") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError:
        return {line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")}
    if isinstance(data, dict):
        return {str(k) for k in data}
    if isinstance(data, list) and all(isinstance(x, str | int) for x in data):
        return {str(x) for x in data}
    raise DecontamUsageError(f"--exclude-ids {path}: expected a JSON list of ids, an object keyed by id, or one id a line")


def benchmark_items(paths: list[str]) -> list[Item]:
    items = []
    for p in paths:
        for q in load_questions(p, allow_test_split=True):
            items.append(Item(Path(p).name, q.id, question_text(q.stem, q.options)))
    return items


async def generation_items(store: CheckpointStore) -> list[Item]:
    seen: dict[str, Item] = {}
    async for m in queries.messages_of_types(store, ("QuestionIngested",)):
        if isinstance(m, QuestionIngested):
            q = m.question
            seen.setdefault(q.id, Item("db", q.id, question_text(q.stem, q.options)))
    return list(seen.values())


def find(questions: list[Item], index: BenchmarkIndex, official: set[str], t: Thresholds) -> list[Match]:
    found: list[Match] = []
    for q in questions:
        found += index.matches(q, t)
        if official and (m := id_matches(q, official)) is not None:
            found.append(m)
    return found


async def decontam_command(args: argparse.Namespace) -> int:
    try:
        if not args.against and not args.exclude_ids:
            raise DecontamUsageError("give --against FILES and/or --exclude-ids FILE")
        t = Thresholds(args.ngram_threshold, args.fuzzy_threshold)
        official = set().union(*(read_ids(Path(p)) for p in args.exclude_ids or []))
        db = Path(args.db)
        if not db.is_file():
            raise DecontamUsageError(f"{db}: no such database")
    except (DecontamUsageError, ValueError) as exc:
        print(f"reasonmed: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    index = BenchmarkIndex(benchmark_items(args.against or []))
    async with await CheckpointStore.open(db) as store:
        questions = await generation_items(store)
        found = find(questions, index, official, t)
        await store.execute("DELETE FROM contamination")
        checked = {"against": [Path(a).name for a in args.against or []], "benchmark_questions": len(index.items),
                   "listed_ids": len(official), "questions": len(questions),
                   "ngram_threshold": t.ngram, "fuzzy_threshold": t.fuzzy}
        await store.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                            (queries.DECONTAM_META, json.dumps(checked, sort_keys=True)))
        for m in found:
            await store.execute("INSERT OR REPLACE INTO contamination(question_id, against, benchmark_id, method,"
                                " score) VALUES (?,?,?,?,?)",
                                (m.question.id, m.benchmark.origin, m.benchmark.id, m.method, m.score))
    for m in found:
        print(f"{m.question.id}\t{m.benchmark.origin}:{m.benchmark.id}\t{m.method}\t{m.score:g}")
    flagged = len({m.question.id for m in found})
    per = {k: sum(m.method == k for m in found) for k in ("exact", "ngram", "fuzzy", "id")}
    print(f"decontam: {flagged} of {len(questions)} questions flagged against {len(index.items)} benchmark questions"
          f" and {len(official)} listed ids ({', '.join(f'{k} {n}' for k, n in per.items())} pairs)", file=sys.stderr)
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("decontam", help=SUMMARIES["decontam"])
    p.add_argument("--db", required=True, help="checkpoint database (the flags are stored there)")
    p.add_argument("--against", nargs="*", default=[], metavar="FILE",
                   help="benchmark question files, any format the loaders read")
    p.add_argument("--exclude-ids", action="append", metavar="FILE",
                   help="official split id list (JSON list, JSON object keyed by id, or one id a line)")
    p.add_argument("--ngram-threshold", type=float, default=0.5,
                   help="share of a question's word 8-grams found in one benchmark question (default 0.5)")
    p.add_argument("--fuzzy-threshold", type=float, default=90.0,
                   help="rapidfuzz ratio 0-100 of the normalised texts (default 90)")
    p.set_defaults(handler=decontam_command)
