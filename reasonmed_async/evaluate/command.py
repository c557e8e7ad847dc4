"""``reasonmed eval --config CFG --model ROLE --data PATH``: zero-shot accuracy in the paper's Table 4 form.

``--model`` is a ``[models]`` name of the config, a served model name, or a stage (``verifier``,
``summarizer``, ...) whose model is meant.  Every answer is cached in ``--db`` as it returns: a
rerun (after a crash, a kill, or to add benchmarks) pays only for the answers it lacks.
"""

from __future__ import annotations

import argparse
import json
import sys
import tomllib
from pathlib import Path

from agents.settings import Sampling

from reasonmed_async.commands.summaries import SUMMARIES
from reasonmed_async.config import AppConfig, load_config
from reasonmed_async.evaluate import benchmarks, lm_eval
from reasonmed_async.evaluate.runner import ask_all
from reasonmed_async.evaluate.table import render, summarise
from reasonmed_async.exit_codes import ExitCode
from reasonmed_async.logs.setup import configure_for
from reasonmed_async.pipeline import Pipeline

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = ExitCode.OK, ExitCode.FAILURES, ExitCode.USAGE
STAGES = ("verifier", "ranker", "refiner", "regenerator", "summarizer", "scorer")


def served_model(config: AppConfig, role: str) -> str:
    models = tomllib.loads(config.text).get("models", {})
    if role in models:
        return str(models[role].get("model", role))
    if role in config.model_backends:
        return role
    if role in STAGES and (sampling := getattr(config.flow, role, None)) is not None:
        return sampling.model
    known = sorted({*models, *config.model_backends})
    raise benchmarks.BenchmarkError(f"--model {role}: not a model of {config.source} (known: {', '.join(known)};"
                                    f" or a stage: {', '.join(STAGES)})")


async def eval_command(args: argparse.Namespace) -> int:
    try:
        config = load_config(args.config)
        model = served_model(config, args.model)
        groups = benchmarks.parse_groups(args.benchmarks)
        if args.limit is not None and args.limit < 1:
            raise benchmarks.BenchmarkError("--limit must be >= 1")
        if args.max_tokens < 1 or not 0 <= args.temperature <= 2:
            raise benchmarks.BenchmarkError("--max-tokens must be >= 1 and --temperature in 0..2")
        items, skipped = benchmarks.load(Path(args.data), groups)
    except benchmarks.BenchmarkError as exc:
        print(f"reasonmed: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    items = items[: args.limit] if args.limit else items
    db = Path(args.db)
    configure_for(config, db)
    sampling = Sampling(model, args.temperature, None, args.max_tokens, None)
    async with Pipeline.open(config, db, models={model}, agents=False) as pipeline:
        answers = await ask_all(pipeline.clients[model], sampling, items, concurrency=args.concurrency)
    summary = summarise(answers, model=model)
    print(render(summary))
    cached = sum(a.cached for a in answers)
    print(f"reasonmed: {len(answers)} questions ({cached} answered from {db}, {len(answers) - cached} asked now;"
          f" {skipped} outside --benchmarks skipped)", file=sys.stderr)
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=1) + "\n", encoding="utf-8")
    if args.export_lm_eval:
        written = lm_eval.export(answers, Path(args.export_lm_eval), max_tokens=args.max_tokens)
        print(f"reasonmed: lm-evaluation-harness tasks and documents in {args.export_lm_eval}/ ({len(written)} files)",
              file=sys.stderr)
    failed = summary["total"]["call_failures"]
    if failed:
        print(f"reasonmed: {failed} call(s) failed for good and are not scored; rerun to ask them again",
              file=sys.stderr)
        return EXIT_FAILURE
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("eval", help=SUMMARIES["eval"])
    p.add_argument("--config", required=True, help="TOML configuration that reaches the model")
    p.add_argument("--model", required=True, help="a [models] name, a served model name, or a stage")
    p.add_argument("--data", required=True, help="a benchmark directory, or one question file the loaders read")
    p.add_argument("--benchmarks", default=",".join(benchmarks.GROUPS),
                   help=f"comma-separated, of {', '.join(benchmarks.GROUPS)} (default: all)")
    p.add_argument("--db", default="reasonmed-eval.db", help="answers are cached here (default: reasonmed-eval.db)")
    p.add_argument("--limit", type=int, default=None, help="only the first N questions")
    p.add_argument("--max-tokens", type=int, default=4096, help="per answer (default: 4096)")
    p.add_argument("--temperature", type=float, default=0.0, help="sampling temperature (default: 0, greedy)")
    p.add_argument("--concurrency", type=int, default=16, help="calls at once (default: 16)")
    p.add_argument("--json", help="also write the table's numbers to this file")
    p.add_argument("--export-lm-eval", metavar="DIR", help="write lm-evaluation-harness tasks of the prompts and answers")
    p.set_defaults(handler=eval_command)
