"""The one-line summary of each command registered in its own module, as ``reasonmed --help`` lists it.

The registrars pass these as their ``help``; the parser shows them for the commands it does not
register whole (``commands/lazy.py``), so that ``reasonmed --help`` lists every command without
importing any command's code."""

from __future__ import annotations

SUMMARIES = {
    "daemon": "run until stopped: resume, then take jobs from an inbox and an HTTP API",
    "score": "score samples with the Score Evaluator: means, SE, paired difference",
    "logs": "print the structured log of a database, filtered; -f follows it",
    "merge": "merge the databases of a sharded run (run --shard i/N) into one",
    "report": "the run's figures beside the paper's: an offline HTML page + report.json",
    "decontam": "flag generation questions that overlap benchmark test questions",
    "eval": "zero-shot multiple-choice accuracy of a configured model (Table 4)",
    "check": "verify a database: SQLite integrity, schema version, per-row checksums (exit 5 if damaged)",
    "migrate": "upgrade a database of an older store schema in place",
    "batch": "run a stage's pending LLM calls through a batch API and import them",
}
