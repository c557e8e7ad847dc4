"""Helpers of the storage-fault tests: a finished database, a run in progress, a damaged copy."""

from __future__ import annotations

import contextlib
import shutil
import signal
import sqlite3
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

from e2e_support import SIM_TOML, cli_command, cli_env, run_cli, sim_config, with_concurrency
from reasonmed_async.store.cache_key import CACHE_KEY

QUESTIONS = SIM_TOML.parent / "questions.jsonl"  # 30 demo questions
TIMEOUT_S = 120  # every command of these tests must end well within this


def make_config(directory: Path, *, workers: int | None = None, **settings: str) -> Path:
    """examples/sim.toml with ``settings``; ``workers`` per agent (a slow run: one that can be caught midway)."""
    config = directory / "sim.toml"
    text = sim_config(**settings)
    config.write_text(text if workers is None else with_concurrency(text, workers), encoding="utf-8")
    return config


def slow_config(directory: Path, call_log: Path, **settings: str) -> Path:
    """A run of the demo questions that takes many seconds: two workers per agent, 20 ms per call."""
    return make_config(directory, workers=2, latency_ms="20", call_log=f'"{call_log}"', **settings)


def finished_run(directory: Path, **settings: str) -> Path:
    """A database holding one finished run of the 30 demo questions (3: the sim cut one question's rewrite short)."""
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "run.db"
    proc = run_cli("run", "--config", make_config(directory, **settings), "--input", QUESTIONS, "--db", db,
                   timeout=TIMEOUT_S)
    assert proc.returncode in (0, 3), proc.stderr
    return db


def copy_db(db: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / db.name
    shutil.copy2(db, target)
    return target


def flip_bit(db: Path, table: str, where: str) -> tuple[str, str | None]:
    """Flip one bit inside the payload of one row of ``table`` (a bit flip on disk): (its id, its question)."""
    con = sqlite3.connect(db)
    try:
        id_column, body, question = {"messages": ("id", "payload", "question_id"), "llm_cache": (CACHE_KEY, "payload", "NULL"),
                                     "texts": ("hex(digest)", "body", "NULL")}[table]
        rows = con.execute(f"SELECT {id_column}, {body}, {question} FROM {table} WHERE {where}").fetchall()
    finally:
        con.close()
    data = bytearray(db.read_bytes())
    for identity, payload, qid in rows:
        for start in range(len(payload) // 2, len(payload) - 24, 7):
            fragment = bytes(payload[start : start + 24])
            if data.count(fragment) == 1:  # only this row holds these bytes: the flip lands in it
                at = data.index(fragment) + 12
                data[at] ^= 0x04
                db.write_bytes(bytes(data))
                return identity.lower() if table == "texts" else identity, qid
    raise AssertionError(f"no unique payload bytes found in {table} WHERE {where}")


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert "Traceback" not in proc.stderr, proc.stderr
    assert lines, "no message at all"
    return lines[-1]


def _lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as f:
        return sum(1 for _ in f)


def wait_calls(proc: subprocess.Popen[str], call_log: Path, calls: int) -> None:
    """Until the simulated-call log of ``proc`` holds ``calls`` lines (it must still be running then)."""
    deadline = time.monotonic() + TIMEOUT_S
    while proc.poll() is None and _lines(call_log) < calls:
        assert time.monotonic() < deadline, f"fewer than {calls} simulated calls within {TIMEOUT_S} s"
        time.sleep(0.01)
    assert proc.poll() is None, f"ended early: {proc.returncode} {proc.stderr.read() if proc.stderr else ''}"


@contextlib.contextmanager
def running(args: list[object], call_log: Path, *, calls: int = 1) -> Iterator[subprocess.Popen[str]]:
    """``reasonmed ARGS`` in the background, yielded once it has made ``calls`` simulated calls;
    SIGKILLed on the way out if it still runs."""
    proc = subprocess.Popen(cli_command(*args), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=cli_env())
    try:
        wait_calls(proc, call_log, calls)
        yield proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=TIMEOUT_S)
        if proc.stderr is not None:
            proc.stderr.close()
