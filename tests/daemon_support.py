"""A daemon subprocess for the tests of its HTTP routes (the report page, ``/metrics``, job events)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path

from e2e_support import ROOT, sim_config

TOKEN = "report-token-8c41d7e2"
QUESTIONS = ROOT / "examples" / "questions.jsonl"


@asynccontextmanager
async def daemon(tmp: Path) -> AsyncIterator[str]:
    """A daemon on 127.0.0.1 with a token, its inbox already holding the demo questions; yields its URL."""
    async with daemon_process(tmp) as (url, _):
        yield url


@asynccontextmanager
async def daemon_process(tmp: Path, *, inbox: bool = True,
                         **settings: str) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """``daemon``, yielding its process too (a test may signal it); ``settings`` are ``sim_config``'s
    (``latency_ms="500"``); without ``inbox`` the inbox starts empty."""
    (tmp / "sim.toml").write_text(sim_config(grace_s="5", **settings), encoding="utf-8")
    (tmp / "inbox").mkdir()
    if inbox:
        (tmp / "inbox" / "questions.jsonl").write_bytes(QUESTIONS.read_bytes())
    async with listening_process(tmp / "sim.toml", tmp / "d.db", {**os.environ, "REASONMED_DAEMON_TOKEN": TOKEN},
                                 "--inbox", str(tmp / "inbox")) as listening:
        yield listening


@asynccontextmanager
async def listening_daemon(config: Path, db: Path, env: Mapping[str, str], *extra: str) -> AsyncIterator[str]:
    """``reasonmed daemon --listen 127.0.0.1:0`` with ``config``; yields its URL once it listens, then
    SIGTERMs it (its stderr goes to ``<db>.err``)."""
    async with listening_process(config, db, env, *extra) as (url, _):
        yield url


@asynccontextmanager
async def listening_process(config: Path, db: Path, env: Mapping[str, str],
                            *extra: str) -> AsyncIterator[tuple[str, asyncio.subprocess.Process]]:
    """``listening_daemon``, yielding its process too."""
    with Path(f"{db}.err").open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reasonmed_async.cli", "daemon", "--config", str(config),
            "--db", str(db), "--listen", "127.0.0.1:0", *extra, cwd=ROOT,
            env=dict(env), stdout=asyncio.subprocess.PIPE, stderr=err)
    try:
        assert proc.stdout is not None
        url = ""
        async with asyncio.timeout(30):
            while not url:
                line = (await proc.stdout.readline()).decode()
                assert line, f"the daemon exited before listening: {Path(f'{db}.err').read_text()}"
                if m := re.search(r"listening on (http://127\.0\.0\.1:\d+)", line):
                    url = m.group(1)
        yield url, proc
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(15):
                await proc.wait()
