"""Exit codes a script can trust: real ``reasonmed`` subprocesses, real signals, a real database."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from e2e_support import cli_command, cli_env, query, run_cli, sim_config
from reasonmed_async.exit_codes import ExitCode


def test_version_and_help_list_every_exit_code() -> None:
    r = run_cli("--version")
    assert r.returncode == 0 and r.stdout.startswith("reasonmed "), r
    for args in (("--help",), ("run", "--help"), ("export", "--help")):
        r = run_cli(*args)
        text = " ".join(r.stdout.split())
        assert r.returncode == 0
        for code in ExitCode:
            assert f"{int(code)} " in text, f"{args}: exit code {int(code)} is not in the help"


def _wait_for_calls(log: Path, proc: subprocess.Popen, at_least: int = 20) -> None:
    deadline = time.monotonic() + 60  # a hang guard, not a timing assertion
    while proc.poll() is None and (not log.exists() or log.read_text().count("\n") < at_least):
        assert time.monotonic() < deadline, "the run made no simulated call within 60 s"
        time.sleep(0.01)


@pytest.mark.parametrize("sig, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_with_work_left_exits_130_or_143_and_run_and_export_exports_nothing(pubmedqa, tmp_path, sig,
                                                                                      code) -> None:
    config = tmp_path / "slow.toml"
    config.write_text(sim_config(latency_ms="40", call_log='"calls.log"'), encoding="utf-8")
    db, out = tmp_path / "run.db", tmp_path / "export"
    run = " ".join(map(str, cli_command("run", "--config", config, "--input", pubmedqa, "--db", db, "--limit", 200)))
    export = " ".join(map(str, cli_command("export", "--db", db, "--out", out)))
    # the shell of `reasonmed run && reasonmed export`, in its own process group like a terminal's job
    proc = subprocess.Popen(["sh", "-c", f"{run} && {export}"], cwd=tmp_path, env=cli_env(), start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_calls(tmp_path / "calls.log", proc)
        assert proc.poll() is None, "the run ended before the signal: give it more work"
        os.killpg(proc.pid, sig)  # what Ctrl-C (or a supervisor's stop) does to the job
        stdout, stderr = proc.communicate(timeout=90)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert query(db, "SELECT status FROM runs") == [("running",)]
    assert query(db, "SELECT COUNT(*) FROM deliveries WHERE state='pending'")[0][0] > 0
    assert not out.exists(), "`run && export` exported a partial run"
    assert proc.returncode != 0
    # the run itself, without a shell in between, says the same in its own exit code
    alone = subprocess.Popen(cli_command("resume", "--db", db), cwd=tmp_path, env=cli_env(),
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        before = (tmp_path / "calls.log").read_text().count("\n")
        _wait_for_calls(tmp_path / "calls.log", alone, at_least=before + 20)
        assert alone.poll() is None, "the resume ended before the signal"
        alone.send_signal(sig)
        stdout, stderr = alone.communicate(timeout=90)
    finally:
        if alone.poll() is None:
            alone.kill()
            alone.wait()
    assert alone.returncode == code, stderr
    assert "reasonmed resume --db" in stdout and signal.Signals(sig).name in stdout
