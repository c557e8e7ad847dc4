"""The real vllm-router (PyPI, Rust) in front of 3 fake OpenAI-compatible replicas on 127.0.0.1.

100 real PubMedQA questions go through the ``openai`` backend pointed at the router; mid-run one replica
is killed and another starts answering 503.  Every question must end final, the export must be
byte-identical to a run against one server, and the replicas' own request logs show the duplicates
(the same X-Request-ID sent again after a failure), none of which is stored twice.

Who retries: the client.  The router runs with ``--disable-retries`` (its default is 5 retries with
backoff), so a failed attempt comes back to ``RetryingClient`` — the project's one retry layer, with
its backoff, Retry-After floor and failure accounting — and attempts never multiply (router retries
x client retries).  The router's part is to stop routing to a bad replica: a health check every
second (``--health-check-interval-secs 1``, default 60) with ``--health-failure-threshold 1`` takes a
killed replica out, and its circuit breaker (defaults: opens after 10 failures, for 60 s) takes out
the one answering 503 while its /health still says 200.  ``--policy consistent_hash`` hashes the
``X-Session-ID`` header (the question id) so a question's prompts share one replica's prefix cache.

Runs under ``make test-router`` (vllm-router in its own venv, .venv-router); skipped elsewhere.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from collections import Counter, defaultdict
from pathlib import Path

import aiohttp
import pytest

from e2e_support import EXPORT_FILES, ROOT, query
from fake_llm_server import FakeLLMServer, Faults
from reasonmed_async.store.cache_key import CACHE_KEY

ROUTER = os.environ.get("REASONMED_VLLM_ROUTER", "")
ROUTER_FLAGS = ("--policy", "consistent_hash", "--disable-retries", "--health-check-interval-secs", "1",
                "--health-failure-threshold", "1", "--health-success-threshold", "1")
QUESTIONS = 100
KEY = "router-test-key"

pytestmark = [pytest.mark.slow, pytest.mark.skipif(
    not ROUTER and not os.environ.get("REASONMED_REQUIRE_ROUTER"),
    reason="vllm-router runs under `make test-router` (REASONMED_VLLM_ROUTER names its binary)")]

RETRY = """
[retry]
attempts = 8
base_s = 0.05
cap_s = 1.0
timeout_s = 30
handler_attempts = 3
"""


def _config(tmp: Path) -> Path:
    text = (ROOT / "examples" / "openai.toml").read_text(encoding="utf-8")
    start, end = text.index("[retry]"), text.index("[store]")
    text = text[:start] + RETRY.strip() + "\n\n" + text[end:]
    # size the router URL from its replicas instead of max_concurrency: 16 sequences x 3 replicas
    text = text.replace("max_concurrency = 64", "max_num_seqs = 16\nreplicas = 3\nadaptive = false")
    path = tmp / "router.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _env(base_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REASONMED_", "AZURE_OPENAI"))}
    env.update(REASONMED_OPENAI_BASE_URL=base_url, REASONMED_OPENAI_API_KEY=KEY, REASONMED_OPENAI_MODEL="fake-model")
    return env


async def _cli(*args: object, env: dict[str, str], timeout: float = 300) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(sys.executable, "-m", "reasonmed_async.cli", *map(str, args),
                                                cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL,
                                                stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), timeout)
    return proc.returncode or 0, err.decode()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def _router_up(url: str, proc: asyncio.subprocess.Process) -> None:
    async with aiohttp.ClientSession() as session, asyncio.timeout(90):
        while proc.returncode is None:
            try:
                async with session.get(f"{url}/health") as r:
                    if r.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.2)  # the router has no readiness signal but its /health
    raise AssertionError(f"vllm-router exited {proc.returncode} before it was up")


async def _faults_when(fakes: list[FakeLLMServer], after: int) -> None:
    """Once the replicas have taken ``after`` requests: kill the third, make the second answer 503."""
    while sum(len(f.requests) for f in fakes) < after:
        await asyncio.sleep(0.02)
    await fakes[2].kill()
    fakes[1].fail_status = 503


def _export(out: Path) -> dict[str, bytes]:
    """The exported files, the run id taken out of records / failures: the router's URL is part of the
    config (so of the run id); everything else must be byte for byte the single server's."""
    # A set without rows is not written (datasets cannot load an empty file): absent on both sides compares equal.
    files = {name: (out / name).read_bytes() for name in EXPORT_FILES if (out / name).exists()}
    assert "records.jsonl" in files
    for name in ("records.jsonl", "failures.jsonl"):
        if name not in files:
            continue
        lines = [json.loads(line) for line in files[name].decode().splitlines()]
        assert all(row.pop("run_id", None) for row in lines) or not lines
        files[name] = "".join(json.dumps(row) + "\n" for row in lines).encode()
    return files


async def test_router_tier_kill_and_503_lose_nothing_and_store_no_duplicate(pubmedqa, tmp_path) -> None:
    config = _config(tmp_path)
    env_args = ("run", "--config", config, "--input", pubmedqa, "--limit", QUESTIONS)

    async with FakeLLMServer(Faults(latency_s=0.005), api_key=KEY) as single:  # the reference: one server
        rc, err = await _cli(*env_args, "--db", tmp_path / "single.db", env=_env(single.openai_url))
        assert rc == 0, err
    rc, err = await _cli("export", "--db", tmp_path / "single.db", "--out", tmp_path / "single", env=_env("x"))
    assert rc == 0, err

    fakes = [await FakeLLMServer(Faults(latency_s=0.005), api_key=KEY).start() for _ in range(3)]
    port = _free_port()
    router_log = (tmp_path / "router.log").open("w")
    router = await asyncio.create_subprocess_exec(
        ROUTER or "vllm-router", "--host", "127.0.0.1", "--port", str(port),
        "--worker-urls", *(f.base_url for f in fakes), *ROUTER_FLAGS, stdout=router_log, stderr=asyncio.subprocess.STDOUT)
    try:
        await _router_up(f"http://127.0.0.1:{port}", router)
        faults = asyncio.create_task(_faults_when(fakes, after=400))
        rc, err = await _cli(*env_args, "--db", tmp_path / "routed.db", env=_env(f"http://127.0.0.1:{port}/v1"))
        assert faults.done(), "the run ended before the faults were injected"
        assert rc == 0, err
    finally:
        router.terminate()
        await router.wait()
        router_log.close()
        for fake in fakes:
            await fake.stop()
    rc, err = await _cli("export", "--db", tmp_path / "routed.db", "--out", tmp_path / "routed", env=_env("x"))
    assert rc == 0, err

    # every question final, the data exactly that of the single-server run
    assert query(tmp_path / "routed.db", "SELECT status FROM runs") == [("finished",)]
    routed, single = _export(tmp_path / "routed"), _export(tmp_path / "single")
    assert routed["reasonmed.jsonl"] and routed == single

    # the replicas' own logs: every request named, the faults real, duplicates counted and never stored twice
    records = [r for f in fakes for r in f.requests  # preflight's one-token pings (llm/preflight.py) aside
               if r.path == "/v1/chat/completions" and r.body.get("max_tokens") != 1]
    for r in records:  # the router forwards some headers lower-cased (HTTP header names are case-insensitive)
        r.headers = {k.title(): v for k, v in r.headers.items()}
    statuses = Counter(r.status for r in records)
    assert statuses[503] > 0 and statuses[200] > 0, statuses
    missing = [r.headers for r in records if "X-Request-Id" not in r.headers or "X-Session-Id" not in r.headers]
    assert not missing, missing[:3]
    sent = Counter(r.headers["X-Request-Id"] for r in records)
    answered = Counter(r.headers["X-Request-Id"] for r in records if r.status == 200)
    duplicates = sum(n - 1 for n in sent.values())
    assert duplicates > 0  # requests sent again after a 503 or a dropped connection, under their own id
    cached = {k for (k,) in query(tmp_path / "routed.db", f"SELECT {CACHE_KEY} FROM llm_cache")}
    assert {"rm-" + k[:32] for k in cached} == set(answered)  # each answered request stored, once
    stored_twice = sum(n - 1 for n in answered.values())
    (dup_rows,) = query(tmp_path / "routed.db", "SELECT COALESCE(SUM(calls), 0) FROM calls WHERE outcome='duplicate'")
    # A second 200 for a stored key is counted, not stored. A replica killed mid-response may log a 200 its
    # client never read (the retry's answer is then the first to arrive), so the count is at most the 200s.
    assert dup_rows[0] <= stored_twice
    replica = {id(r): i for i, f in enumerate(fakes) for r in f.requests}
    by_session: dict[str, set[int]] = defaultdict(set)
    for r in records:
        if r.status == 200:
            by_session[r.headers["X-Session-Id"]].add(replica[id(r)])
    print(json.dumps({"requests": len(records), "statuses": dict(statuses), "duplicates": duplicates,
                      "answered twice": stored_twice, "questions on one replica":
                      sum(len(v) == 1 for v in by_session.values()), "questions": len(by_session)}))
