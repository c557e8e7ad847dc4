"""Ordinary mistakes are one line and an exit code; an internal error is one line, its traceback in the log.

The mistakes of the issue not covered in their own rooms: ``status`` into a pipe
whose reader is gone (``status | head``), ``export --out`` at a file.  An
unexpected error prints one line and exits 1; its traceback goes to
``<db>.log`` without local variables, with secrets (environment values of
``*_KEY`` / ``*_TOKEN`` variables, URL credentials) redacted.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

import reasonmed_async.cli as cli
from e2e_support import cli_command, cli_env
from fault_support import TIMEOUT_S, finished_run

SECRET = "sk-live-0f1e2d3c4b5a69788796a5b4"


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory.mktemp("finished"))


def test_status_into_a_closed_pipe_is_quiet(finished: Path) -> None:
    read, write = os.pipe()
    os.close(read)  # `| head` that has already exited
    try:
        proc = subprocess.run(cli_command("status", "--db", finished), stdout=write, stderr=subprocess.PIPE,
                              text=True, env=cli_env(), timeout=TIMEOUT_S, check=False)
    finally:
        os.close(write)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_an_internal_error_is_one_line_and_its_redacted_traceback_is_logged(finished: Path, tmp_path: Path,
                                                                            monkeypatch, capsys) -> None:
    db = tmp_path / "copy.db"
    db.write_bytes(finished.read_bytes())
    monkeypatch.setenv("REASONMED_TEST_API_KEY", SECRET)

    async def broken(args):  # a bug deep in a command, with a secret in a local variable and the message
        credentials = f"https://user:{SECRET}@gpu.example/v1"
        raise RuntimeError(f"lost the connection to {credentials} ({SECRET})")

    monkeypatch.setitem(cli.COMMANDS, "status", broken)
    rc = cli.main(["status", "--db", str(db)])
    err = capsys.readouterr().err
    assert rc == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "internal error" in lines[0] and f"{db}.log" in lines[0], err
    assert SECRET not in err
    log = Path(f"{db}.log").read_text(encoding="utf-8")
    assert '"exc_type":"RuntimeError"' in log and '"frames":' in log  # the structured traceback
    assert SECRET not in log, "a secret reached the log"
    assert "[REDACTED]" in log
    assert '"locals"' not in log, "local variables were logged"
