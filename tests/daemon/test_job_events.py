"""Daemon jobs change state when their runs end, not when someone asks; clients wait without polling.

The daemon runs as a real subprocess on 127.0.0.1 (the simulator behind it); the database is read
directly (read-only) to see that the state changed with no request for that job."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import aiohttp
import pytest

from daemon_support import QUESTIONS, TOKEN, daemon_process
from e2e_support import read_only
from reasonmed_async.daemon.job_state import JobState, job_state
from reasonmed_async.exit_codes import ExitCode

AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.mark.parametrize("run_status, pending, failed, stopped_with, state, code", [
    ("running", 40, 0, None, JobState.RUNNING, None),
    ("running", 0, 0, None, JobState.DONE, ExitCode.OK),      # its last delivery settled: done, as the daemon sees it
    ("finished", 0, 0, None, JobState.DONE, ExitCode.OK),
    ("finished", 0, 2, None, JobState.FAILED, ExitCode.FAILURES),
    ("finished", 0, 2, ExitCode.SIGTERM, JobState.FAILED, ExitCode.FAILURES),  # ended before the daemon stopped
    ("running", 12, 0, ExitCode.SIGTERM, JobState.STOPPED, ExitCode.SIGTERM),
    ("running", 12, 1, ExitCode.SIGINT, JobState.STOPPED, ExitCode.SIGINT),
    ("running", 12, 0, ExitCode.RESUMABLE, JobState.STOPPED, ExitCode.RESUMABLE),  # a halt: an open circuit
    ("ingesting", 0, 0, None, JobState.RUNNING, None),        # its intake is not finished
])
def test_a_job_state_from_its_run_and_the_daemon(run_status, pending, failed, stopped_with, state, code):
    verdict = job_state(run_status, pending, failed, stopped_with)
    assert (verdict.state, verdict.exit_code) == (state, code)
    assert verdict.final == (state is not JobState.RUNNING)


def _run_status(db: Path) -> dict[str, str]:
    with read_only(db) as conn:
        return dict(conn.execute("SELECT id, status FROM runs").fetchall())


async def _until_finished(db: Path, guard_s: float = 90.0) -> str:
    """The inbox job's run id once the database says finished (a hang guard, not a timing assertion)."""
    async with asyncio.timeout(guard_s):
        while True:
            if db.exists() and (done := [r for r, s in _run_status(db).items() if s == "finished"]):
                return done[0]
            await asyncio.sleep(0.1)


@pytest.mark.slow
async def test_the_job_ends_by_itself_and_a_waiting_client_is_answered_when_it_does(tmp_path):
    async with daemon_process(tmp_path, latency_ms="4") as (url, _), aiohttp.ClientSession() as http:
        job = await _until_finished(tmp_path / "d.db")  # the inbox's file; nobody asked the API for it
        status = await (await http.get(f"{url}/v1/jobs/{job}", headers=AUTH)).json()
        # the demo questions have one the simulator fails for good: "failed", the code `run` exits with
        assert (status["state"], status["exit_code"], status["status"]) == ("failed", 3, "finished"), status
        assert status["pending_deliveries"] == 0 and status["records"] > 0 and status["failed_questions"] == 1

        lines = QUESTIONS.read_text(encoding="utf-8").splitlines()[:3]
        posted = await http.post(f"{url}/v1/jobs?name=three.jsonl", data="\n".join(lines) + "\n", headers=AUTH)
        assert posted.status == 201
        second = (await posted.json())["job"]
        # one request, answered when the state leaves "running" (the guard is a hang guard)
        answer = await http.get(f"{url}/v1/jobs/{second}", params={"wait": "120", "state": "running"},
                                headers=AUTH, timeout=aiohttp.ClientTimeout(total=150))
        status = await answer.json()
        ended = ("failed", 3) if status["failed_questions"] else ("done", 0)
        assert (status["state"], status["exit_code"], status["questions"]) == (*ended, 3), status
        assert _run_status(tmp_path / "d.db")[second] == "finished"
        already = await http.get(f"{url}/v1/jobs/{second}", params={"wait": "120", "state": "running"}, headers=AUTH)
        assert (await already.json())["state"] == ended[0]  # not running: answered at once
        bad = await http.get(f"{url}/v1/jobs/{second}", params={"wait": "soon"}, headers=AUTH)
        assert bad.status == 400 and "wait" in (await bad.json())["error"]
        missing = await http.get(f"{url}/v1/jobs/run-000000000000", params={"wait": "5"}, headers=AUTH)
        assert missing.status == 404


@pytest.mark.slow
async def test_a_client_waiting_on_a_job_hears_stopped_143_when_the_daemon_is_sigtermed(tmp_path):
    async with daemon_process(tmp_path, inbox=False, latency_ms="3000") as (url, proc), \
            aiohttp.ClientSession() as http:
        posted = await http.post(f"{url}/v1/jobs?name=q.jsonl", data=QUESTIONS.read_bytes(), headers=AUTH)
        job = (await posted.json())["job"]
        waiting = asyncio.ensure_future(http.get(f"{url}/v1/jobs/{job}", params={"wait": "120"}, headers=AUTH,
                                                 timeout=aiohttp.ClientTimeout(total=150)))
        first = await (await http.get(f"{url}/v1/jobs/{job}", headers=AUTH)).json()
        assert first["state"] == "running" and first["exit_code"] is None, first
        proc.send_signal(signal.SIGTERM)
        status = await (await waiting).json()
        assert (status["state"], status["exit_code"]) == ("stopped", 143), status
        assert status["pending_deliveries"] > 0
        async with asyncio.timeout(30):
            assert await proc.wait() == 0  # the daemon itself exits 0 on a clean stop
    assert _run_status(tmp_path / "d.db")[job] == "running"  # resumable: the next daemon continues it
