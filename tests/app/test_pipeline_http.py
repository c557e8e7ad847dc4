"""The whole pipeline over HTTP, against a fake OpenAI / Azure server on 127.0.0.1 with faults.

The CLI runs as a real subprocess (so its log file, database and exports are
the real ones) while the fake server runs in the test's event loop.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import sys
from collections import Counter
from pathlib import Path

import pytest

from fake_llm_server import Faults, FakeLLMServer
from retry_support import distinct_models, resent_early

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = ROOT / "examples" / "questions.jsonl"
SECRET = "sk-test-9f8e7d6c5b4a39281706f5e4d3c2b1a0"

pytestmark = pytest.mark.slow

FAST_RETRY = """
[retry]
attempts = 4
base_s = 0.01
cap_s = 0.2
timeout_s = 20
handler_attempts = 3
"""


def _with_fast_retry(text: str) -> str:
    start = text.index("[retry]")
    end = text.index("[store]")
    return text[:start] + FAST_RETRY.strip() + "\n\n" + text[end:]


async def _cli(*args: str, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reasonmed_async.cli", *args, cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 150)
    return proc.returncode or 0, out.decode(), err.decode()


def _env(**extra: str) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("REASONMED_", "AZURE_OPENAI"))}
    env.update(extra)
    return env


def _assert_no_question_lost(db: Path, expected: int) -> set[str]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        questions = {q for (q,) in conn.execute("SELECT id FROM questions")}
        with_records = {q for (q,) in conn.execute("SELECT DISTINCT question_id FROM records")}
        failed = {q for (q,) in conn.execute(
            "SELECT DISTINCT question_id FROM messages WHERE type='StageFailed'"
            " AND label NOT IN ('generate','verify','verifier')")}
        pending = conn.execute("SELECT COUNT(*) FROM deliveries WHERE state='pending'").fetchone()[0]
        status = conn.execute("SELECT status FROM runs").fetchall()
    assert len(questions) == expected
    assert questions == with_records | failed, f"lost: {questions - with_records - failed}"
    assert pending == 0 and status == [("finished",)]
    return failed


def _assert_secret_nowhere(tmp_path: Path) -> None:
    needle = SECRET.encode()
    checked = 0
    for path in tmp_path.rglob("*"):
        if path.is_file():
            checked += 1
            assert needle not in path.read_bytes(), f"the API key leaked into {path}"
    assert checked >= 6  # database (+ WAL), log, exports


async def test_openai_backend_pipeline_survives_faults_and_keeps_the_key_secret(tmp_path: Path) -> None:
    faults = Faults(seed=7, rate_429=0.04, retry_after_s=0.5, rate_500=0.03, rate_reset=0.03,
                    malformed_rate=0.10, length_rate=0.02)
    # Retry-After is judged by order, not by a grace period: a request that got a 429 is never sent again
    # before its Retry-After ran out (load can only delay a resend). That no *other* request reaches a
    # paused replica is pinned by tests/llm/test_openai_backend.py.
    async with FakeLLMServer(faults, api_key=SECRET) as server:
        config = tmp_path / "openai.toml"
        config.write_text(_with_fast_retry(distinct_models((ROOT / "examples" / "openai.toml").read_text())))
        env = _env(REASONMED_OPENAI_BASE_URL=server.openai_url, REASONMED_OPENAI_API_KEY=SECRET)
        db = tmp_path / "run" / "http.db"
        rc, out, err = await _cli("run", "--config", str(config), "--input", str(QUESTIONS), "--db", str(db),
                                  "--limit", "12", env=env)
        run_rc = rc
        rc, _, err = await _cli("export", "--db", str(db), "--out", str(tmp_path / "export"), env=env)
        assert rc == 0, err
        rc, status, err = await _cli("status", "--db", str(db), env=env)
        assert rc == 0, err

    failed = _assert_no_question_lost(db, 12)
    assert run_rc == (3 if failed else 0), err  # 3: completed, but some questions failed
    statuses = Counter(r.status for r in server.requests)
    assert statuses[429] and statuses[500] and statuses[0], statuses  # the faults really happened
    assert resent_early(server) == []  # nobody came back before its Retry-After
    server_errors = Counter(json.dumps(r.body, sort_keys=True) for r in server.requests if r.status == 500)
    assert max(server_errors.values()) <= 4  # [retry] attempts: the one layer that retries; the bus adds none
    assert "error:RateLimited" in status and "error:ServerError" in status  # failed attempts are accounted
    lines = (tmp_path / "export" / "records.jsonl").read_text().splitlines()
    assert lines and all(json.loads(line)["provenance"][0]["backend"] == "openai" for line in lines)
    _assert_secret_nowhere(tmp_path)


AZURE_CONFIG = """
[backends.azure]
type = "azure"
endpoint = "${AZURE_OPENAI_ENDPOINT}"
api_version = "2024-10-21"
api_key_env = "AZURE_OPENAI_API_KEY"
timeout_s = 20

[backends.azure.deployments.gen]
rpm = 30
tpm = 60000
burst_s = 0.5
window_s = 3

[backends.azure.deployments.judge]
rpm = 30
tpm = 60000
burst_s = 0.5
window_s = 3

[backends.azure.deployments.o1-mini]
rpm = 10
tpm = 60000
burst_s = 0.5
window_s = 3

[models.gen]
backend = "azure"

[models.judge]
backend = "azure"

[models.o1-mini]
backend = "azure"

[generation]
models = ["gen"]
temperatures = [0.7, 0.9, 1.0]
max_tokens = 512

[stages.verifier]
model = "judge"
temperature = 1.0
top_p = 0.95
max_tokens = 256

[stages.ranker]
model = "judge"
max_tokens = 256

[stages.refiner]
model = "gen"
temperature = 0.8
max_tokens = 512

[stages.regenerator]
model = "o1-mini"
max_tokens = 512

[stages.summarizer]
model = "judge"
temperature = 0.5
max_tokens = 256

[tiers]
easy_max = 1
medium_max = 2
min_usable = 2
"""


def _max_in_window(times: list[float], weights: list[int], window: float) -> int:
    best, lo, total = 0, 0, 0
    for hi, t in enumerate(times):
        total += weights[hi]
        while t - times[lo] >= window:
            total -= weights[lo]
            lo += 1
        best = max(best, total)
    return best


async def test_azure_backend_pipeline_stays_within_quotas(tmp_path: Path) -> None:
    faults = Faults(seed=3, rate_429=0.05, retry_after_s=0.4, rate_500=0.03, rate_reset=0.02, malformed_rate=0.10)
    # a retry of a refused request is early however soon it comes; another request counts only 0.3 s after the
    # 429 (of its 0.4 s): on a loaded machine one already on the wire reached the handler > 0.1 s after it
    async with FakeLLMServer(faults, api_key=SECRET, same_connection_early=False, early_grace_s=0.3) as server:
        config = tmp_path / "azure.toml"
        config.write_text(AZURE_CONFIG + FAST_RETRY)
        env = _env(AZURE_OPENAI_ENDPOINT=server.azure_endpoint, AZURE_OPENAI_API_KEY=SECRET)
        db = tmp_path / "run" / "azure.db"
        # --no-preflight: its pings would count against the quotas this test measures (tests/llm/test_preflight.py)
        rc, _, err = await _cli("run", "--config", str(config), "--input", str(QUESTIONS), "--db", str(db),
                                "--limit", "8", "--no-preflight", env=env)
        run_rc = rc
        rc, _, err = await _cli("export", "--db", str(db), "--out", str(tmp_path / "export"), env=env)
        assert rc == 0, err

    failed = _assert_no_question_lost(db, 8)
    assert run_rc == (3 if failed else 0), err
    assert server.early_requests == 0
    assert all(r.path.startswith("/openai/deployments/") for r in server.requests)
    for deployment, rpm in (("gen", 30), ("judge", 30), ("o1-mini", 10)):
        seen = [r for r in server.requests if r.model_or_deployment == deployment]
        times = [r.t_monotonic for r in seen]
        assert _max_in_window(times, [1] * len(times), 3.0) <= rpm, deployment
        used = [r.prompt_tokens + r.completion_tokens for r in seen]
        assert _max_in_window(times, used, 3.0) <= 60000, deployment
    o1 = [r.body for r in server.requests if r.model_or_deployment == "o1-mini"]
    assert all("temperature" not in b and "max_completion_tokens" in b for b in o1)
    _assert_secret_nowhere(tmp_path)
