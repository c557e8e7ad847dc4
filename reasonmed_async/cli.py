"""The ``reasonmed`` command: run, resume, status, export, and the commands registered below.

Exit codes (``exit_codes.ExitCode``, the same for every command): 0 done, 1 internal
error, 2 bad usage / input / config / failed preflight, 3 completed with failed
questions, 4 stopped but resumable, 5 damage found, 130 / 143 interrupted by
SIGINT / SIGTERM with work left.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

# Only what the parser needs (every start, `--help` too): the command's own modules, asyncio, structlog and
# what an error is judged by are imported once it is known which command runs (``_command``, ``_failed``).
from reasonmed_async.commands import heap
from reasonmed_async.commands.common import UsageError
from reasonmed_async.commands.lazy import LazyCommands, LazyHandler, VersionAction, command_named
from reasonmed_async.exit_codes import HELP as EXIT_CODES_HELP
from reasonmed_async.exit_codes import ExitCode
from reasonmed_async.loaders.formats import SOURCE_FORMATS
from reasonmed_async.scale.flags import add_scale_flags

__all__ = ["COMMANDS", "EXTRA_COMMANDS", "UsageError", "main"]


def _parser(command: str | None = None, *, whole: bool = False) -> argparse.ArgumentParser:
    """The parser for running ``command``: that command registered whole, the others registered in their own
    modules by name and summary only (those modules stay unimported); with no command (``--help``,
    ``--version``, a usage error) the top-level help and usage read as the ``whole`` parser's."""
    p = argparse.ArgumentParser(prog="reasonmed", description="Build ReasonMed-style medical CoT data, resumably.",
                                epilog=EXIT_CODES_HELP)
    p.add_argument("--version", action=VersionAction, version=_version)
    sub = p.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="start a run: ingest questions and process them to the end")
    run.add_argument("--config", required=True, help="TOML configuration (see examples/)")
    run.add_argument("--input", required=True, help="questions: generic JSON/JSONL or PubMedQA ori_pqal.json")
    run.add_argument("--db", default="reasonmed.db", help="checkpoint database (default: reasonmed.db)")
    run.add_argument("--limit", type=int, default=None, help="only the first N questions")
    run.add_argument("--source-format", choices=SOURCE_FORMATS, default=None,
                     help="input format (default: detected from the content)")
    run.add_argument("--allow-test-split", action="store_true",
                     help="accept a file that looks like a test split (the paper never generated from them)")
    run.add_argument("--cop-base", type=int, choices=(0, 1), default=None,
                     help="MedMCQA: whether `cop` counts from 0 (Hugging Face) or 1 (official release)")
    run.add_argument("--keep-duplicates", action="store_true",
                     help="keep questions whose normalised text, options and answer repeat an earlier one"
                          " (default: merged into it, both ids in its records)")
    resume = sub.add_parser("resume", help="continue the unfinished run of a database after a crash or stop")
    resume.add_argument("--db", required=True)
    resume.add_argument("--config", help="a corrected configuration: endpoints, key variables or files, concurrency, limits,"
                                         " retry, timeouts, budget may change (kept for later resumes); a key that"
                                         " would change the data is refused")
    resume.add_argument("--max-cost-usd", type=float, help="raise (or set) the run's [budget] max_cost_usd")
    resume.add_argument("--max-tokens", type=int, help="raise (or set) the run's [budget] max_tokens")
    retry = sub.add_parser("retry", help="make failed work pending again, re-issue its failing calls, and finish")
    retry.add_argument("--db", required=True)
    retry.add_argument("--stage", help="only failures of this stage (generate, verify, rank, refine, ...)")
    retry.add_argument("--kind", help="only failures of this kind (call_failed, unparseable, truncated, ...)")
    retry.add_argument("--question", help="only the failures of this question id")
    retry.add_argument("--max-tokens", type=int, help="send the re-issued calls with this max_tokens (truncations)")
    status = sub.add_parser("status", help="per stage and per tier progress of a database")
    status.add_argument("--db", required=True)
    status.add_argument("--watch", action="store_true", help="redraw live until every run is finished")
    status.add_argument("--every", type=float, default=2.0, help="seconds between redraws with --watch")
    status.add_argument("--json", action="store_true", help="one JSON object, for scripts")
    exp = sub.add_parser("export", help="write the ReasonMed / CoTMed / ResponseMed files and records.jsonl")
    exp.add_argument("--db", required=True)
    exp.add_argument("--out", required=True, help="a new or empty directory (written whole, then swapped in)")
    exp.add_argument("--force", action="store_true", help="replace the contents of a non-empty --out")
    exp.add_argument("--run", dest="run_id", default=None,
                     help="export this run only (default: every question once, from the latest run that settled it)")
    exp.add_argument("--exclude-contaminated", action="store_true",
                     help="leave out the questions `reasonmed decontam` flagged")
    for name, handler in COMMANDS.items():
        sub.choices[name].set_defaults(handler=handler)
    add_scale_flags(run, resume, retry)  # --allow-network-fs, --shard, --quota-share, --ingest-only
    for register in EXTRA_COMMANDS:
        if isinstance(register, LazyCommands) and not whole and command not in register.names:
            register.stand_in(sub)  # its names and summaries (usage and --help list them): its module is not imported
        else:
            register(sub)  # each adds its subparser with set_defaults(handler=async fn(args) -> exit code)
    for parser in sub.choices.values():
        parser.epilog = EXIT_CODES_HELP
    for name in (n for n in PREFLIGHT_COMMANDS if n in sub.choices):
        sub.choices[name].add_argument("--no-preflight", action="store_true",
                                       help="skip the one cheap request per model and endpoint made before starting")
    return p


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("reasonmed-async")
    except PackageNotFoundError:
        return "unknown (not installed)"


PREFLIGHT_COMMANDS = ("run", "resume", "retry", "daemon")
# Handlers and registrars are imported when their command runs (``commands/lazy.py``): `reasonmed run`
# never imports the report, scoring or decontamination code.
_RUNS, _READS = "reasonmed_async.commands.runs", "reasonmed_async.commands.reads"
COMMANDS = {"run": LazyHandler(_RUNS, "run"), "resume": LazyHandler(_RUNS, "resume"),
            "retry": LazyHandler(_RUNS, "retry"), "status": LazyHandler(_READS, "status"),
            "export": LazyHandler(_READS, "export")}
EXTRA_COMMANDS: list = [  # registrars of commands in their own modules
    LazyCommands(("daemon",), "reasonmed_async.commands.daemon"),
    LazyCommands(("score",), "reasonmed_async.reports.scoring"),
    LazyCommands(("logs",), "reasonmed_async.logs.tail"),
    LazyCommands(("merge",), "reasonmed_async.scale.merge"),
    LazyCommands(("report",), "reasonmed_async.reports.report.command"),
    LazyCommands(("decontam",), "reasonmed_async.decontam.command"),
    LazyCommands(("eval",), "reasonmed_async.evaluate.command"),
    LazyCommands(("check", "migrate"), "reasonmed_async.store.check_command"),
]
EXTRA_COMMANDS.append(LazyCommands(("batch",), "reasonmed_async.scale.batch_cli"))  # batch export / import


def main(argv: Sequence[str] | None = None) -> int:
    """The ``reasonmed`` command.  ``argv=None`` (the executable, ``sys.argv``): the process is this command's,
    so it also sets the cycle collector for it (``commands/heap.py``); a list (a caller's process, tests):
    the process is left as it is."""
    if argv is not None:
        return _command(list(argv))
    heap.tune_collector()
    try:
        return _command(sys.argv[1:])
    finally:
        heap.before_exit()


def _command(argv: list[str]) -> int:
    from reasonmed_async.logs.lean_import import import_structlog

    command = command_named(argv)
    if command is not None:  # (none: help, version or a usage error, and no command's module is imported)
        import_structlog()  # before the command's module imports it (most do): without rich, imported for nothing
    args = _parser(command).parse_args(argv)  # (with no command it prints the help, version or error and exits)
    import asyncio

    from reasonmed_async.logs import loop_lag

    try:
        code = asyncio.run(loop_lag.sampled(args.handler(args)))  # the sampler: opt-in, REASONMED_LOOP_LAG_FILE
        sys.stdout.flush()  # here, not at exit: a reader gone (`status | head`) is a quiet end, not a traceback
        return code
    except KeyboardInterrupt:  # a Ctrl-C before the handlers were installed (or after they were removed)
        return ExitCode.SIGINT
    except BrokenPipeError:
        from reasonmed_async.cli_errors import quiet_broken_pipe

        return quiet_broken_pipe()
    except Exception as exc:  # noqa: BLE001 - the last line of defence: one line, the right exit code
        return _failed(exc, args)


def _failed(exc: Exception, args: argparse.Namespace) -> int:
    """The exit code of a command that raised ``exc``, its one line said on stderr."""
    import os

    from bus import first_stop
    from reasonmed_async.cli_errors import classify, report_internal
    from reasonmed_async.llm.preflight import PreflightFailed
    from reasonmed_async.outcome import RunStopped

    stopped = first_stop(exc)  # a typed stop (outage, open circuit, disk full), maybe inside a TaskGroup's group
    if isinstance(stopped, RunStopped):
        db = getattr(args, "db", None)
        print(f"reasonmed: stopped: {stopped}", file=sys.stderr)
        print(f"reasonmed: nothing was marked failed; once fixed, continue with `reasonmed resume --db {db}`",
              file=sys.stderr)
        return int(stopped.exit_code)
    known = classify(exc, (UsageError, PreflightFailed))
    if known is not None:
        print(known[1], file=sys.stderr)
        return known[0]
    if os.environ.get("REASONMED_DEBUG"):
        raise exc
    return report_internal(exc, args.command, getattr(args, "db", None))

if __name__ == "__main__":
    sys.exit(main())
