"""Helpers for the end-to-end, crash-and-resume and CLI tests.

They go through the real path: real SQLite files under ``tmp_path``, the real
sim backend, and the ``reasonmed`` command as a subprocess.  The real PubMedQA
questions are read in place from ``../shared/data/`` (never copied).
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from bus import Message
from reasonmed_async.store.reading import MESSAGE_COLUMNS, load_messages
from reasonmed_async.store.texts import Memo
from reasonmed_async.store.cache_key import CACHE_KEY

ROOT = Path(__file__).resolve().parents[1]
SIM_TOML = ROOT / "examples" / "sim.toml"
PUBMEDQA = Path(__file__).resolve().parents[2] / "shared" / "data" / "pubmedqa_ori_pqal.json"
EXPORT_FILES = ("reasonmed.jsonl", "cotmed.jsonl", "responsemed.jsonl", "records.jsonl", "failures.jsonl")
INSTRUCTION_PREFIX = "Please answer the following multiple-choice question:\n"


def sim_config(**settings: Any) -> str:
    """The text of examples/sim.toml with some ``key = value`` lines replaced (or added to [backends.sim]).

    Values are given as TOML source text (``"0.3"``, ``'"${X}"'``).  A key is
    replaced where it first appears at the start of a line; a key that does not
    appear is added right after ``[backends.sim]``."""
    text = SIM_TOML.read_text(encoding="utf-8")
    for key, value in settings.items():
        pattern = re.compile(rf"(?m)^{re.escape(key)}\s*=.*$")
        if pattern.search(text):
            text = pattern.sub(lambda _m, k=key, v=value: f"{k} = {v}", text, count=1)
        else:
            text = text.replace("[backends.sim]\n", f"[backends.sim]\n{key} = {value}\n", 1)
    return text


def with_concurrency(text: str, workers: int | str) -> str:
    """Every ``[concurrency]`` entry set to ``workers``."""
    head, sep, tail = text.partition("[concurrency]")
    assert sep, "examples/sim.toml has no [concurrency] table"
    body, sep2, rest = tail.partition("\n[")
    body = re.sub(r"(?m)^(\w+)\s*=\s*\d+", lambda m: f"{m.group(1)} = {workers}", body)
    return head + sep + body + sep2 + rest


@contextmanager
def read_only(db: Path) -> Iterator[sqlite3.Connection]:
    """A read-only connection to a checkpoint database (it may have just been SIGKILLed)."""
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        yield con
    finally:
        con.close()


def query(db: Path, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    with read_only(db) as con:
        return con.execute(sql, params).fetchall()


def messages(db: Path, *types: str) -> list[Message]:
    """Every stored message (of these types), in commit order."""
    where = f"WHERE type IN ({','.join('?' * len(types))})" if types else ""
    with read_only(db) as con:
        return [m for _, m in load_messages(con, Memo(), db, f"SELECT {MESSAGE_COLUMNS} FROM messages {where}"
                                            " ORDER BY seq", tuple(types))]


def cache_keys(db: Path) -> set[str]:
    return {k for (k,) in query(db, f"SELECT {CACHE_KEY} FROM llm_cache")}  # v8: the rowid and the rest


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def call_log_keys(path: Path) -> list[str]:
    """The cache keys of the simulated calls executed, one per logged call, in order."""
    if not path.exists():
        return []
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.split("\t")[2] for line in lines]


def cli_command(*args: object) -> list[str]:
    return [sys.executable, "-m", "reasonmed_async.cli", *map(str, args)]


def cli_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PYTHONWARNINGS", None)
    env.update(extra)
    return env


def run_cli(*args: object, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """``reasonmed ARGS`` in a subprocess (the installed package, this interpreter)."""
    return subprocess.run(cli_command(*args), capture_output=True, text=True, env=env or cli_env(), cwd=cwd,
                          timeout=timeout, check=False)
