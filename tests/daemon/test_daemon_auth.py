"""The daemon's API always has a token, and a hostile upload is refused without touching other jobs.

Real subprocesses on 127.0.0.1: a daemon started without a token generates one
into ``<db>.token`` (mode 0600) and says where; ``--no-auth`` is loopback only;
beyond loopback a token must be given (exit 2).  A lone-surrogate upload while
another job runs gets a 400 naming line and field, leaves nothing on disk, and
the other job finishes whole.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import stat
import sys
from pathlib import Path

import aiohttp
import pytest

from e2e_support import ROOT, read_only, run_cli, sim_config
from fault_support import QUESTIONS, TIMEOUT_S, one_line_error

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.pop("REASONMED_DAEMON_TOKEN", None)
    env.pop("PYTHONWARNINGS", None)
    return env


class Daemon:
    def __init__(self, tmp: Path, *extra: str) -> None:
        self.tmp, self.extra = tmp, extra
        self.db = tmp / "daemon.db"
        self.config = tmp / "sim.toml"
        self.config.write_text(sim_config(latency_ms="10", grace_s="5"), encoding="utf-8")
        self.url, self.said = "", []
        self.proc: asyncio.subprocess.Process | None = None

    async def __aenter__(self) -> Daemon:
        with (self.tmp / "daemon.err").open("ab") as err:
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "reasonmed_async.cli", "daemon", "--config", str(self.config), "--db",
                str(self.db), "--listen", "127.0.0.1:0", *self.extra, cwd=ROOT, env=_env(),
                stdout=asyncio.subprocess.PIPE, stderr=err)
        assert self.proc.stdout is not None
        async with asyncio.timeout(60):
            while not self.url:
                line = (await self.proc.stdout.readline()).decode()
                assert line, f"the daemon exited: {(self.tmp / 'daemon.err').read_text()}"
                self.said.append(line)
                if m := re.search(r"listening on (http://127\.0\.0\.1:\d+)", line):
                    self.url = m.group(1)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(TIMEOUT_S):
            assert await self.proc.wait() == 0


async def test_without_a_token_one_is_generated_mode_0600(tmp_path: Path) -> None:
    async with Daemon(tmp_path) as daemon, aiohttp.ClientSession() as http:
        token_file = Path(f"{daemon.db}.token")
        assert any(str(token_file) in line and "0600" in line for line in daemon.said), daemon.said
        assert stat.S_IMODE(token_file.stat().st_mode) == 0o600
        token = token_file.read_text().strip()
        assert len(token) >= 32
        assert (await http.get(f"{daemon.url}/v1/status")).status == 401
        ok = await http.get(f"{daemon.url}/v1/status", headers={"Authorization": f"Bearer {token}"})
        assert ok.status == 200
    assert token.encode() not in Path(f"{daemon.db}.log").read_bytes(), "the token reached the log"


async def test_no_auth_is_explicit_and_logged(tmp_path: Path) -> None:
    async with Daemon(tmp_path, "--no-auth") as daemon, aiohttp.ClientSession() as http:
        assert (await http.get(f"{daemon.url}/v1/status")).status == 200
    assert not Path(f"{daemon.db}.token").exists()
    assert b"daemon.no_auth" in Path(f"{daemon.db}.log").read_bytes()


@pytest.mark.parametrize("extra", [[], ["--no-auth"]])
def test_beyond_loopback_a_token_must_be_given(tmp_path: Path, extra: list[str]) -> None:
    config = tmp_path / "sim.toml"
    config.write_text(sim_config(), encoding="utf-8")
    proc = run_cli("daemon", "--config", config, "--db", tmp_path / "d.db", "--listen", "0.0.0.0:0", *extra,
                   env=_env(), timeout=TIMEOUT_S)
    assert proc.returncode == 2, proc.stderr
    line = one_line_error(proc)
    assert "0.0.0.0" in line and "token" in line, line
    assert not (tmp_path / "d.db").exists()


async def test_a_lone_surrogate_upload_is_refused_and_the_running_job_is_untouched(tmp_path: Path) -> None:
    async with Daemon(tmp_path) as daemon, aiohttp.ClientSession() as http:
        auth = {"Authorization": f"Bearer {Path(f'{daemon.db}.token').read_text().strip()}"}
        good = await http.post(f"{daemon.url}/v1/jobs?name=good.jsonl", data=QUESTIONS.read_bytes(), headers=auth)
        assert good.status == 201, await good.text()
        job = (await good.json())["job"]
        bad_line = json.dumps({"id": "evil", "question": "Which \ud800?", "options": ["a", "b"], "answer": "A"})
        for _ in range(3):  # while the good job is being worked on
            bad = await http.post(f"{daemon.url}/v1/jobs?name=evil.jsonl", data=bad_line.encode() + b"\n",
                                  headers=auth)
            assert bad.status == 400, await bad.text()
            body = await bad.json()
            assert body["line"] == 1 and body["field"] == "stem" and "lone surrogate" in body["error"]
        uploads = Path(f"{daemon.db}.jobs")
        assert not any("evil" in p.name for p in uploads.iterdir()), "a refused upload was left on disk"
        async with asyncio.timeout(TIMEOUT_S):
            while (await (await http.get(f"{daemon.url}/v1/jobs/{job}", headers=auth)).json())["status"] != "finished":
                await asyncio.sleep(0.1)
    with read_only(daemon.db) as con:
        runs = con.execute("SELECT id FROM runs").fetchall()
        done = {q for (q,) in con.execute("SELECT DISTINCT question_id FROM records")}
        failed = {q for (q,) in con.execute("SELECT DISTINCT question_id FROM messages WHERE type='StageFailed'"
                                            " AND label NOT IN ('generate','verify')")}
        rejected = {q for (q,) in con.execute("SELECT DISTINCT question_id FROM messages WHERE type='Verdict'"
                                              " AND label LIKE 'Error:%' AND label != 'Error:0'")}  # re-verification said no
        questions = {q for (q,) in con.execute("SELECT id FROM questions")}
    assert runs == [(job,)] and len(questions) == 30 and questions == done | failed | rejected
