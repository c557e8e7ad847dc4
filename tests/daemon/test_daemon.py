"""The daemon as a real subprocess: inbox and HTTP intake, auth, SIGTERM mid-run, restart."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import sys
import time
from datetime import datetime
from pathlib import Path

import aiohttp
import pytest

from e2e_support import ROOT, read_only, sim_config

pytestmark = pytest.mark.slow

TOKEN = "daemon-token-5b1e0c2a9d"
QUESTIONS = ROOT / "examples" / "questions.jsonl"


class Daemon:
    def __init__(self, tmp: Path, *, log_max_bytes: int = 50_000_000) -> None:
        self.tmp = tmp
        self.db = tmp / "daemon.db"
        self.inbox = tmp / "inbox"
        self.config = tmp / "sim.toml"
        text = sim_config(latency_ms="4", grace_s="5", max_bytes=str(log_max_bytes), backups="50")
        self.config.write_text(text, encoding="utf-8")
        self.proc: asyncio.subprocess.Process | None = None
        self.url = ""

    async def start(self) -> None:
        self.url = ""
        env = {**os.environ, "REASONMED_DAEMON_TOKEN": TOKEN}
        with (self.tmp / "daemon.err").open("ab") as err:  # the child keeps its own descriptor
            self.proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "reasonmed_async.cli", "daemon", "--config", str(self.config),
                "--db", str(self.db), "--inbox", str(self.inbox), "--listen", "127.0.0.1:0", cwd=ROOT, env=env,
                stdout=asyncio.subprocess.PIPE, stderr=err)
        assert self.proc.stdout is not None
        async with asyncio.timeout(30):
            while not self.url:
                line = (await self.proc.stdout.readline()).decode()
                assert line, "the daemon exited before listening"
                if m := re.search(r"listening on (http://127\.0\.0\.1:\d+)", line):
                    self.url = m.group(1)

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        assert self.proc is not None
        self.proc.send_signal(sig)
        async with asyncio.timeout(15):  # grace_s is 5
            return await self.proc.wait()


def drop(inbox: Path, name: str, text: str) -> None:
    tmp = inbox / f".{name}.part"
    tmp.write_text(text, encoding="utf-8")
    tmp.rename(inbox / name)  # atomic arrival


async def until(predicate, timeout: float = 60.0, every: float = 0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := await predicate():
            return value
        await asyncio.sleep(every)
    raise AssertionError("condition not met in time")


async def test_daemon_takes_work_from_inbox_and_http_survives_sigterm_and_finishes(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    await daemon.start()
    async with aiohttp.ClientSession() as http:
        assert (await http.get(f"{daemon.url}/v1/health")).status == 200
        assert (await http.get(f"{daemon.url}/v1/status")).status == 401

        drop(daemon.inbox, "demo.jsonl", QUESTIONS.read_text(encoding="utf-8"))
        lines = QUESTIONS.read_text(encoding="utf-8").splitlines()
        # five times the demo's questions under other ids: work enough that the run is still going when the
        # SIGTERM below arrives, however fast this machine runs it (a few records, hundreds of questions left)
        drop(daemon.inbox, "big.jsonl", "".join(  # (stems made distinct too: the intake folds duplicates)
            line.replace('"demo-', f'"big{k}-').replace('"question": "', f'"question": "Case {k}: ') + "\n"
            for k in range(5) for line in lines))
        bad = "\n".join([lines[0], lines[1].replace('"answer"', '"answr"')]) + "\n"
        drop(daemon.inbox, "bad.jsonl", bad)

        body = "\n".join(lines[:12]).replace("demo-", "http-") + "\n"
        denied = await http.post(f"{daemon.url}/v1/jobs?name=http.jsonl", data=body)
        assert denied.status == 401
        posted = await http.post(f"{daemon.url}/v1/jobs?name=http.jsonl", data=body, headers=auth)
        assert posted.status == 201, await posted.text()
        http_job = (await posted.json())["job"]

        error = daemon.inbox / "rejected" / "bad.jsonl.error"
        await until(lambda: asyncio.sleep(0, error.exists()))
        message = error.read_text(encoding="utf-8")
        assert "bad.jsonl:2" in message and "answer" in message
        for name in ("demo.jsonl", "big.jsonl"):
            await until(lambda name=name: asyncio.sleep(0, (daemon.inbox / "done" / name).exists()))

        async def some_records() -> bool:
            status = await (await http.get(f"{daemon.url}/v1/status", headers=auth)).json()
            return status["records"] > 5

        await until(some_records)
        assert (await http.get(f"{daemon.url}/v1/health")).status == 200  # still running after the rejection

    assert await daemon.stop() == 0  # SIGTERM mid-run: drained and checkpointed
    with read_only(daemon.db) as con:
        pending = con.execute("SELECT COUNT(*) FROM deliveries WHERE state='pending'").fetchone()[0]
    assert pending > 0, "the test should stop the daemon mid-run"

    await daemon.start()  # resumes what was unfinished
    async with aiohttp.ClientSession() as http:
        async def finished(job: str) -> dict | None:
            status = await (await http.get(f"{daemon.url}/v1/jobs/{job}", headers=auth)).json()
            return status if status["status"] == "finished" else None

        with read_only(daemon.db) as con:
            jobs = [r for (r,) in con.execute("SELECT id FROM runs")]
        assert http_job in jobs and len(jobs) == 3
        results = [await until(lambda j=j: finished(j), timeout=240) for j in jobs]
    assert await daemon.stop() == 0

    assert sorted(r["questions"] for r in results) == [12, 30, 150]
    with read_only(daemon.db) as con:
        questions = {q for (q,) in con.execute("SELECT id FROM questions")}
        done = {q for (q,) in con.execute("SELECT DISTINCT question_id FROM records")}
        failed = {q for (q,) in con.execute(
            "SELECT DISTINCT question_id FROM messages WHERE type='StageFailed' AND label NOT IN ('generate','verify')")}
        rejected = {q for (q,) in con.execute(  # the final re-verification said Error: the method's own verdict
            "SELECT DISTINCT question_id FROM messages WHERE type='Verdict' AND label='Error:2'")}
        ready = con.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM messages WHERE type='RecordReady'").fetchone()
        records = con.execute("SELECT COUNT(*) FROM records").fetchone()[0]
    assert len(questions) == 192 and questions == done | failed | rejected  # nothing lost
    assert ready[0] == ready[1] == records  # nothing duplicated

    export = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reasonmed_async.cli", "export", "--db", str(daemon.db), "--out", str(tmp_path / "out"),
        cwd=ROOT, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL)
    assert await export.wait() == 0
    scanned = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".log") for p in scanned) and any(p.suffix == ".jsonl" for p in scanned)
    for path in scanned:  # log lines, database rows (and WAL), exports, uploads
        assert TOKEN.encode() not in path.read_bytes(), f"the API token leaked into {path}"


async def test_logs_follow_a_running_daemon_across_rotation(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path, log_max_bytes=120_000)  # one or two rotations: a follower that falls two behind loses the middle file
    await daemon.start()
    follower = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reasonmed_async.cli", "logs", "--db", str(daemon.db), "-f", "--agent", "verifier",
        "--json", cwd=ROOT, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    assert follower.stdout is not None
    try:
        await asyncio.sleep(0.5)  # the follower is reading the live file
        drop(daemon.inbox, "demo.jsonl", QUESTIONS.read_text(encoding="utf-8"))
        seen = []
        rotated = Path(f"{daemon.db}.log.1")
        async with asyncio.timeout(60):
            while len(seen) < 150 or not rotated.exists():
                line = await follower.stdout.readline()
                assert line, "the follower exited"
                event = json.loads(line)
                seen.append(event)
    finally:
        follower.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(follower.wait(), 10) == 0
        assert await daemon.stop() == 0
    assert {e["agent"] for e in seen} == {"verifier"}  # only those
    assert any(e["event"] == "llm.call" for e in seen)
    # Across rotation: nothing shown twice, nothing out of order (how fast it follows is measured, not asserted).
    lines = [json.dumps(e, sort_keys=True) for e in seen]
    assert len(set(lines)) == len(lines)
    stamps = [datetime.fromisoformat(e["timestamp"].replace("Z", "+00:00")) for e in seen]
    assert stamps == sorted(stamps)


async def test_sighup_reloads_concurrency_without_a_restart(tmp_path: Path) -> None:
    daemon = Daemon(tmp_path)
    await daemon.start()
    try:
        text = daemon.config.read_text(encoding="utf-8").replace("verifier = 16", "verifier = 3")
        daemon.config.write_text(text, encoding="utf-8")
        assert daemon.proc is not None
        daemon.proc.send_signal(signal.SIGHUP)
        log = Path(f"{daemon.db}.log")

        async def reloaded() -> dict | None:
            for line in log.read_text(encoding="utf-8").splitlines() if log.exists() else []:
                event = json.loads(line)
                if event["event"] == "daemon.reloaded":
                    return event
            return None

        event = await until(reloaded, timeout=10)
        assert event["concurrency"]["verifier"] == 3
        async with aiohttp.ClientSession() as http:  # still serving
            assert (await http.get(f"{daemon.url}/v1/health")).status == 200
    finally:
        assert await daemon.stop() == 0
