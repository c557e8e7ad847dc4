"""A daemon subprocess for the tests of its HTTP routes (the report page; the browser test logs in)."""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from e2e_support import ROOT, sim_config

TOKEN = "report-token-8c41d7e2"
QUESTIONS = ROOT / "examples" / "questions.jsonl"


@asynccontextmanager
async def daemon(tmp: Path) -> AsyncIterator[str]:
    """A daemon on 127.0.0.1 with a token, its inbox already holding the demo questions; yields its URL."""
    (tmp / "sim.toml").write_text(sim_config(grace_s="5"), encoding="utf-8")
    (tmp / "inbox").mkdir()
    (tmp / "inbox" / "questions.jsonl").write_bytes(QUESTIONS.read_bytes())
    with (tmp / "daemon.err").open("ab") as err:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "reasonmed_async.cli", "daemon", "--config", str(tmp / "sim.toml"),
            "--db", str(tmp / "d.db"), "--inbox", str(tmp / "inbox"), "--listen", "127.0.0.1:0", cwd=ROOT,
            env={**os.environ, "REASONMED_DAEMON_TOKEN": TOKEN}, stdout=asyncio.subprocess.PIPE, stderr=err)
    try:
        assert proc.stdout is not None
        url = ""
        async with asyncio.timeout(30):
            while not url:
                line = (await proc.stdout.readline()).decode()
                assert line, "the daemon exited before listening"
                if m := re.search(r"listening on (http://127\.0\.0\.1:\d+)", line):
                    url = m.group(1)
        yield url
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
            async with asyncio.timeout(15):
                await proc.wait()
