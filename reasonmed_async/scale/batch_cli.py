"""``reasonmed batch export|import``: a stage's pending LLM calls through a batch transport and back.

``export`` replays the stage's pending deliveries through the stage's own
agent with clients that answer from the store what it holds and *capture*
every other request instead of sending it (a ``Deferred`` stops the agent
there; nothing is written to the database).  ``import`` stores each answer
under its ``custom_id`` (the cache key) exactly as a live call would have been
stored; then ``reasonmed resume`` finds the stage's calls answered.  Import is
idempotent: an answer already stored is skipped (not counted again), a cut-off
last line is left out with a note, and a malformed line refuses the whole file
before anything is stored.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import msgspec

from agents.llm import ChatRequest, Completion

from reasonmed_async.commands.summaries import SUMMARIES
from reasonmed_async.scale.flags import add_network_fs_flag
from reasonmed_async.scale.fsguard import guard_database_location
from reasonmed_async.store.sql import StoreError

if TYPE_CHECKING:  # the CLI imports this module at start: what only export / import need is imported there
    from reasonmed_async.store.checkpoint import CheckpointStore

#: the subscriptions (consumers) whose calls make up each stage
STAGE_CONSUMERS = {"generate": ("generator",), "verify": ("verifier",), "rank": ("ranker",),
                   "refine": ("refiner", "retry-"), "regenerate": ("regenerator",), "reverify": ("reverify-",),
                   "summarize": ("summarizer",), "score": ("scorer",)}
_encode = msgspec.json.Encoder().encode


class Deferred(Exception):
    """Raised into an agent in place of an answer the store does not hold: the request goes to the batch file."""


class CapturingClient:
    """An ``LLMClient`` that answers from the store, or captures the request and raises ``Deferred``.

    The request is captured before the first await, so every call an agent starts
    together (the generator's nine, in one TaskGroup) is captured before one fails
    (the export drops those the store turns out to hold)."""

    def __init__(self, store: CheckpointStore, captured: dict[str, ChatRequest]) -> None:
        self._store, self._captured = store, captured

    async def complete(self, request: ChatRequest) -> Completion:
        key = request.cache_key()
        self._captured.setdefault(key, request)
        stored = await self._store.cache_get(key)
        if stored is None:
            raise Deferred(key)
        del self._captured[key]
        return msgspec.json.decode(stored, type=Completion)


def _only_deferred(exc: BaseException) -> bool:
    if isinstance(exc, BaseExceptionGroup):
        return all(_only_deferred(e) for e in exc.exceptions)
    return isinstance(exc, Deferred)


async def export_stage(db: Path, stage: str, out: Path) -> tuple[int, int]:
    """(pending deliveries read, requests written) of ``stage`` into ``out``."""
    from agents.flow import build_subscriptions
    from agents.prompts import Templates

    from reasonmed_async.pipeline import stored_config
    from reasonmed_async.scale.batch import request_line
    from reasonmed_async.store.checkpoint import CheckpointStore

    async with await CheckpointStore.open(db) as store:
        config = await stored_config(store, unfinished=True)
        captured: dict[str, ChatRequest] = {}
        clients = {model: CapturingClient(store, captured) for model in config.model_backends}
        templates = Templates.load(config.templates_dir)
        subs = [s for s in build_subscriptions(clients, store, config.flow, templates)  # type: ignore[arg-type]
                if any(s.name == c or (c.endswith("-") and s.name.startswith(c)) for c in STAGE_CONSUMERS[stage])]
        read = 0
        for sub in subs:
            async for _seq, message in store.pending(sub.name, None):
                if not sub.accepts(message):
                    continue
                read += 1
                await _replay(sub.handler, message)
        # a call cancelled with its agent (a sibling's Deferred ended the TaskGroup) was captured unchecked
        missing = [r for key, r in captured.items() if await store.cache_get(key) is None]
    lines = [request_line(r, structured_output=_structured(config, r.model)) for r in missing]
    tmp = out.with_name(out.name + ".partial")
    tmp.write_text("".join(lines), encoding="utf-8")
    tmp.replace(out)
    return read, len(lines)


async def _replay(handler, message: object) -> None:  # type: ignore[no-untyped-def]
    try:
        await handler(message)
    except BaseException as exc:  # noqa: BLE001 - only Deferred is expected; anything else is re-raised
        if not _only_deferred(exc):
            raise


def _structured(config, model: str) -> str:  # type: ignore[no-untyped-def]
    backend = config.backends[config.model_backends[model]]
    return str(backend.options.get("structured_output", "json_schema"))


async def import_results(db: Path, results: Path) -> tuple[int, int, int, int | None]:
    """(stored, already there, failed requests, cut-off line) of a results file."""
    from reasonmed_async.scale.batch import BatchFileError, parse_results
    from reasonmed_async.store.checkpoint import CheckpointStore

    try:
        text = results.read_text(encoding="utf-8")
    except OSError as exc:
        raise BatchFileError(f"{results}: cannot read: {exc.strerror}") from None
    parsed = parse_results(text.splitlines(keepends=True), source=str(results))
    stored = present = 0
    async with await CheckpointStore.open(db) as store:
        for a in parsed.answers:
            if await store.cache_get(a.key) is not None:
                present += 1
                continue
            c = a.completion
            await store.cache_put(a.key, a.model, _encode(c), "batch", c.endpoint, c.prompt_tokens,
                                  c.completion_tokens)
            stored += 1
    return stored, present, len(parsed.failures), parsed.cut_line


async def _export(args: argparse.Namespace) -> int:
    db = Path(args.db)
    if not db.is_file():
        raise StoreError(f"{db}: no such database")
    read, written = await export_stage(db, args.stage, Path(args.out))
    print(f"batch export: {written} requests of stage {args.stage} ({read} pending messages) to {args.out};"
          f" run them (vllm run-batch -i {args.out} -o results.jsonl --model M, or the Batch API), then"
          f" `reasonmed batch import --db {db} results.jsonl`", file=sys.stderr)
    return 0


async def _import(args: argparse.Namespace) -> int:
    db = Path(args.db)
    if not db.is_file():
        raise StoreError(f"{db}: no such database")
    guard_database_location(db, allow_network_fs=args.allow_network_fs)
    from reasonmed_async.scale.batch import BatchFileError

    try:
        stored, present, failed, cut = await import_results(db, Path(args.results))
    except BatchFileError as exc:
        raise StoreError(str(exc)) from None
    print(f"batch import: {stored} answers stored, {present} already there, {failed} failed requests"
          " (made live by `reasonmed resume`, or export again)", file=sys.stderr)
    if cut is not None:
        print(f"batch import: {args.results}:{cut} is cut off (the file is still being written?): left out;"
              " import the file again once it is complete", file=sys.stderr)
    print(f"then `reasonmed resume --db {db}` goes on with the stored answers", file=sys.stderr)
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    batch = sub.add_parser("batch", help=SUMMARIES["batch"])
    actions = batch.add_subparsers(dest="action", required=True)
    ex = actions.add_parser("export", help="write the stage's pending requests as OpenAI Batch JSONL")
    ex.add_argument("--db", required=True)
    ex.add_argument("--stage", required=True, choices=sorted(STAGE_CONSUMERS))
    ex.add_argument("--out", required=True, help="the requests file to write (custom_id = the request's key)")
    ex.set_defaults(handler=_export)
    im = actions.add_parser("import", help="store the answers of a Batch results file (idempotent)")
    im.add_argument("--db", required=True)
    im.add_argument("results", help="the results JSONL (vllm run-batch -o, or the Batch API's output file)")
    add_network_fs_flag(im)
    im.set_defaults(handler=_import)


async def ingest_only(config, db: Path, questions: list, input_path: str, digest: str,  # type: ignore[no-untyped-def]
                      limit: int | None) -> int:
    """Record a run and its questions without driving it."""
    from reasonmed_async.pipeline import Pipeline

    async with Pipeline.open(config, db) as pipeline:
        run_id = await pipeline.start_run(questions, input_path, digest, limit)
    print(f"reasonmed: run {run_id}: {len(questions)} questions from {input_path} recorded, no call made;"
          f" `reasonmed batch export --db {db} --stage generate --out requests.jsonl`, or"
          f" `reasonmed resume --db {db}`", file=sys.stderr)
    return 0
