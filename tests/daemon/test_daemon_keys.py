"""The daemon's SIGHUP re-reads key files: a key rotated while a job runs, no restart, nothing failed.

A real ``reasonmed daemon`` subprocess against the fake OpenAI server on 127.0.0.1, its key in
``api_key_file``.  Mid-job the server holds its requests; the test writes the new key into the file,
makes the server accept both keys, sends SIGHUP, waits for the daemon to log the re-read, lets the
requests go, waits for a request with the new key, revokes the old one, and drains the daemon.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import sys
from pathlib import Path

import aiohttp
import pytest

from e2e_support import ROOT, read_only
from fake_llm_server import FakeLLMServer
from key_support import NEW, OLD, assert_no_key, bearer, events, rotate, use_key_file

pytestmark = pytest.mark.slow

TOKEN = "daemon-token-keys-4c2f9e"
QUESTIONS = ROOT / "examples" / "questions.jsonl"


async def _until(predicate, guard_s: float = 60.0) -> None:
    async with asyncio.timeout(guard_s):
        while not predicate():
            await asyncio.sleep(0.02)


async def test_daemon_sighup_rereads_the_key_file_mid_job(tmp_path: Path) -> None:
    cfg = tmp_path / "openai.toml"
    cfg.write_text((ROOT / "examples" / "openai.toml").read_text(encoding="utf-8"), encoding="utf-8")
    key_file = use_key_file(cfg)
    db, inbox = tmp_path / "daemon.db", tmp_path / "inbox"
    async with FakeLLMServer(api_key=OLD) as server:
        environ = {k: v for k, v in os.environ.items() if not k.startswith("REASONMED_")}
        environ.update(REASONMED_OPENAI_BASE_URL=server.openai_url, REASONMED_DAEMON_TOKEN=TOKEN)
        server.hold_from = 30
        with (tmp_path / "daemon.err").open("ab") as err:
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "reasonmed_async.cli", "daemon", "--config", str(cfg), "--db", str(db),
                "--inbox", str(inbox), "--listen", "127.0.0.1:0", cwd=ROOT, env=environ,
                stdout=asyncio.subprocess.PIPE, stderr=err)
        try:
            assert proc.stdout is not None
            url = ""
            async with asyncio.timeout(30):
                while not url:
                    line = (await proc.stdout.readline()).decode()
                    assert line, "the daemon exited before listening"
                    url = m.group(1) if (m := re.search(r"listening on (http://127\.0\.0\.1:\d+)", line)) else ""
            part = inbox / ".job.part"
            part.write_text("\n".join(QUESTIONS.read_text(encoding="utf-8").splitlines()[:4]) + "\n", encoding="utf-8")
            part.rename(inbox / "job.jsonl")
            await _until(lambda: server.held > 0)

            rotate(key_file, NEW)
            server.api_key, server.also_accepted = NEW, frozenset({OLD})
            proc.send_signal(signal.SIGHUP)
            await _until(lambda: events(db, "daemon.reloaded")
                         and [e["reason"] for e in events(db, "credentials.reloaded")] == ["sighup"])
            mark = len(server.requests)
            server.released.set()
            await _until(lambda: any(bearer(r) == NEW for r in server.requests[mark:]))
            assert not [r for r in server.requests if r.status == 401]
            server.also_accepted = frozenset()  # the old key revoked
            async with aiohttp.ClientSession() as http:
                drained = await http.post(f"{url}/v1/drain", headers={"Authorization": f"Bearer {TOKEN}"})
                assert drained.status == 202
            assert await asyncio.wait_for(proc.wait(), 120) == 0
        finally:
            if proc.returncode is None:  # a failed assertion: the daemon goes with the test
                proc.kill()
                await proc.wait()
    with read_only(db) as con:
        assert con.execute("SELECT COUNT(*) FROM deliveries WHERE state IN ('pending', 'failed')").fetchone() == (0,)
        assert con.execute("SELECT COUNT(*) FROM messages WHERE type='StageFailed'").fetchone() == (0,)
        assert con.execute("SELECT status FROM runs").fetchall() == [("finished",)]
    assert_no_key(tmp_path)
