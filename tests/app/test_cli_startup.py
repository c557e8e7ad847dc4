"""`reasonmed`'s start-up: each command imports only its own code, and the parser reads the same either way.

The parser registers the command being run whole and the others by name (``commands/lazy.py``);
these tests hold it to the whole parser's help, usage and errors, and check in a real subprocess
that `reasonmed run` never imports another command's code, nor rich (the terminal progress display
aside) — while a run started so still finishes and writes its records.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

from e2e_support import ROOT, SIM_TOML, cli_env, query
from reasonmed_async import cli
from reasonmed_async.commands.lazy import LazyCommands, command_named



def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def _names() -> list[str]:
    return list(_subcommands(cli._parser(whole=True)))


@pytest.mark.parametrize("command", _names())
def test_a_command_parsed_lazily_has_the_help_and_usage_of_the_whole_parser(command: str) -> None:
    whole, lazy = cli._parser(whole=True), cli._parser(command)
    assert lazy.format_usage() == whole.format_usage()  # what "unrecognized arguments" prints
    assert list(_subcommands(lazy)) == list(_subcommands(whole))  # what "invalid choice" lists, in order
    assert _subcommands(lazy)[command].format_help() == _subcommands(whole)[command].format_help()


def test_every_lazy_registrar_names_exactly_the_commands_it_adds() -> None:
    for register in cli.EXTRA_COMMANDS:
        assert isinstance(register, LazyCommands), register
        sub = argparse.ArgumentParser().add_subparsers()
        register(sub)
        assert tuple(sub.choices) == register.names, register


def test_top_level_help_without_any_command_module_reads_as_the_whole_parsers() -> None:
    """`reasonmed --help` lists every command with its summary from stand-ins (no command's module imported)."""
    assert cli._parser().format_help() == cli._parser(whole=True).format_help()
    assert cli._parser().format_usage() == cli._parser(whole=True).format_usage()


@pytest.mark.parametrize("argv, expected", [
    (["run", "--config", "c.toml"], "run"), (["check", "--db", "x"], "check"), ([], None), (["--help"], None),
    (["--version"], None), (["-h", "run"], None),
])
def test_the_command_a_command_line_runs(argv: list[str], expected: str | None) -> None:
    assert command_named(argv) == expected


def test_top_level_help_and_errors_read_as_before(capsys) -> None:
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    for name in _names():
        assert f"    {name}" in out, f"{name} is missing from --help"
    with pytest.raises(SystemExit) as exit_:
        cli.main(["nope"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'nope'" in err and all(f"'{n}'" in err for n in _names())
    with pytest.raises(SystemExit) as exit_:
        cli.main(["--version"])
    assert exit_.value.code == 0 and capsys.readouterr().out.startswith("reasonmed ")


# Another command's code, and rich (only the live progress on a terminal draws with it)
NOT_FOR_RUN = ("rich", "pygments", "rapidfuzz", "reasonmed_async.decontam.command", "reasonmed_async.reports.scoring",
               "reasonmed_async.reports.report.command", "reasonmed_async.evaluate.command",
               "reasonmed_async.store.check_command", "reasonmed_async.scale.merge", "reasonmed_async.logs.tail",
               "reasonmed_async.commands.daemon", "reasonmed_async.commands.reads", "importlib.metadata")

PROBE = """
import json, sys
from reasonmed_async.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "modules": sorted(sys.modules)}), file=sys.__stderr__)
"""


def test_reasonmed_help_imports_no_command_code(tmp_path) -> None:
    """`reasonmed --help` (and `--version`) build the parser only: no command's module, no asyncio, no structlog."""
    code = PROBE.replace("code = main(sys.argv[1:])", "try:\n    main(sys.argv[1:])\nexcept SystemExit as e:\n    code = e.code")
    proc = subprocess.run([sys.executable, "-c", code, "--help"], cwd=ROOT, env=cli_env(), capture_output=True,
                          text=True, timeout=60)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] == 0 and "usage: reasonmed" in proc.stdout
    assert "    score" in proc.stdout and "Score Evaluator" in proc.stdout  # a stand-in's summary
    loaded = set(report["modules"])
    heavy = {"asyncio", "structlog", "sqlite3", "msgspec", "bus", "agents", "reasonmed_async.config",
             "reasonmed_async.commands.runs", "reasonmed_async.pipeline", *NOT_FOR_RUN}
    assert not loaded & heavy, sorted(loaded & heavy)


def test_reasonmed_run_imports_only_what_running_needs(pubmedqa, tmp_path) -> None:
    db = tmp_path / "run.db"
    proc = subprocess.run([sys.executable, "-c", PROBE, "run", "--config", str(SIM_TOML), "--input", str(pubmedqa),
                           "--limit", "2", "--db", str(db)], cwd=ROOT, env=cli_env(), capture_output=True,
                          text=True, timeout=300)
    report = json.loads(proc.stderr.strip().splitlines()[-1])
    assert report["code"] == 0, proc.stderr[-2000:]
    assert query(db, "SELECT COUNT(*) FROM records")[0][0] > 0
    loaded = set(report["modules"])
    assert "reasonmed_async.commands.runs" in loaded and "structlog" in loaded
    assert not loaded & set(NOT_FOR_RUN), sorted(loaded & set(NOT_FOR_RUN))
