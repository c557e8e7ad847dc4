"""The owner lock belongs to the database file, not to its name; commands that only read never write.

A daemon holds a database; a second process comes in through a symlink and
through a hard link to the same file (``run``, ``daemon``): each is
refused in one line (exit 2) naming the holder, and the finished run is intact.  ``status``, ``export`` and ``check``
leave the database byte-identical.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e_support import cli_command, cli_env, query, run_cli, sim_config
from fault_support import QUESTIONS, TIMEOUT_S, copy_db, finished_run, one_line_error


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory.mktemp("finished"))


@contextlib.contextmanager
def daemon_on(config: Path, db: Path) -> Iterator[subprocess.Popen[str]]:
    """``reasonmed daemon`` holding ``db`` (yielded once it says it runs); stopped with SIGTERM after."""
    proc = subprocess.Popen(cli_command("daemon", "--config", config, "--db", db), stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True, env=cli_env())
    try:
        assert proc.stdout is not None
        for line in proc.stdout:  # bounded: the daemon prints this line or exits
            if line.startswith("reasonmed daemon: running"):
                break
        assert proc.poll() is None, "the daemon did not start"
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=TIMEOUT_S)
        if proc.stdout is not None:
            proc.stdout.close()
        assert rc == 0, rc


@pytest.mark.parametrize("link", ["symlink", "hardlink"])
def test_a_link_to_a_database_in_use_is_refused(finished: Path, tmp_path: Path, link: str) -> None:
    db = copy_db(finished, tmp_path / "db")
    config = tmp_path / "sim.toml"
    config.write_text(sim_config(), encoding="utf-8")
    alias = tmp_path / "elsewhere" / "alias.db"
    alias.parent.mkdir()
    alias.symlink_to(db) if link == "symlink" else os.link(db, alias)
    before = _digest_rows(db)
    with daemon_on(config, db) as proc:
        for args in (["run", "--config", config, "--input", QUESTIONS, "--db", alias],
                     ["daemon", "--config", config, "--db", alias]):
            refused = run_cli(*args, timeout=TIMEOUT_S)
            assert refused.returncode == 2, (args, refused.stderr)
            line = one_line_error(refused)
            assert "in use by another reasonmed process" in line and f"pid {proc.pid}" in line, line
    assert _digest_rows(db) == before, "the finished run changed"
    assert query(db, "SELECT status FROM runs") == [("finished",)]


def _digest_rows(db: Path) -> list[tuple[object, ...]]:
    return query(db, "SELECT id, checksum FROM messages ORDER BY seq")


def _digest(db: Path) -> str:
    return hashlib.sha256(db.read_bytes()).hexdigest()


def test_reading_commands_never_write(finished: Path, tmp_path: Path) -> None:
    before = (_digest(finished), finished.stat().st_mtime_ns)
    for args in (["status"], ["export", "--out", tmp_path / "out"], ["check"]):
        proc = run_cli(args[0], "--db", finished, *args[1:], timeout=TIMEOUT_S)
        assert proc.returncode == 0, (args, proc.stderr)
    assert (_digest(finished), finished.stat().st_mtime_ns) == before
