"""Preflight against a real local server: a wrong key, an unknown model, a dead endpoint stop before any work."""

from __future__ import annotations

import asyncio
import socket
import sys
from pathlib import Path

import pytest

from fake_llm_server import FakeLLMServer
from reasonmed_async.config import parse_config
from reasonmed_async.llm.preflight import PreflightFailed, preflight

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-preflight-0123456789abcdef"
WRONG = "sk-wrong-key-fedcba9876543210"
AZURE = """
[backends.azure]
type = "azure"
endpoint = "${AZURE_OPENAI_ENDPOINT}"
api_version = "2024-10-21"
api_key_env = "AZURE_OPENAI_API_KEY"

[backends.azure.deployments.gen]
rpm = 60
tpm = 60000

[backends.azure.deployments.o1-mini]
rpm = 10
tpm = 60000

[models.gen]
backend = "azure"

[models.o1-mini]
backend = "azure"

[generation]
models = ["gen"]
temperatures = [0.7]
max_tokens = 64

[stages.verifier]
model = "gen"
[stages.ranker]
model = "gen"
[stages.refiner]
model = "gen"
[stages.regenerator]
model = "o1-mini"
[stages.summarizer]
model = "gen"

[tiers]
easy_max = 0
medium_max = 1
min_usable = 1
"""


def _openai(monkeypatch, url: str, key: str, model: str = "fake-model"):
    monkeypatch.setenv("REASONMED_OPENAI_BASE_URL", url)
    monkeypatch.setenv("REASONMED_OPENAI_API_KEY", key)
    monkeypatch.setenv("REASONMED_OPENAI_MODEL", model)
    return parse_config((ROOT / "examples" / "openai.toml").read_text(), source="openai.toml")


async def test_a_good_server_passes_with_one_request_per_model_and_the_model_list(monkeypatch):
    async with FakeLLMServer(api_key=KEY, served_models=("fake-model",)) as server:
        checked = await preflight(_openai(monkeypatch, server.openai_url, KEY))
    assert checked == 1  # every role names the same served model
    assert [(r.path, r.status) for r in server.requests] == [("/v1/models", 200), ("/v1/chat/completions", 200)]
    assert server.requests[1].body["max_tokens"] == 1


async def test_a_wrong_key_fails_naming_model_and_endpoint_never_the_key(monkeypatch):
    async with FakeLLMServer(api_key=KEY) as server:
        with pytest.raises(PreflightFailed) as caught:
            await preflight(_openai(monkeypatch, server.openai_url, WRONG))
    line = str(caught.value)
    assert "authentication failed" in line and "HTTP 401" in line and server.openai_url in line
    assert "fake-model" in line and WRONG not in line and KEY not in line


async def test_an_unknown_model_fails(monkeypatch):
    async with FakeLLMServer(api_key=KEY, served_models=("Qwen/Qwen2.5-7B-Instruct",)) as server:
        with pytest.raises(PreflightFailed, match="unknown model .*Qwen/Qwen2.5-7B-Instruct"):
            await preflight(_openai(monkeypatch, server.openai_url, KEY, model="qwen-typo"))


async def test_an_unreachable_endpoint_fails(monkeypatch):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    config_text = (ROOT / "examples" / "openai.toml").read_text().replace(
        "${REASONMED_OPENAI_BASE_URL:-http://127.0.0.1:8000/v1}", f"http://127.0.0.1:{port}/v1")
    monkeypatch.setenv("REASONMED_OPENAI_API_KEY", KEY)
    with pytest.raises(PreflightFailed, match="unreachable"):
        await preflight(parse_config(config_text, source="openai.toml"))


async def test_azure_pings_each_deployment_and_a_wrong_key_fails(monkeypatch):
    async with FakeLLMServer(api_key=KEY) as server:
        monkeypatch.setenv("AZURE_OPENAI_ENDPOINT", server.azure_endpoint)
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", KEY)
        assert await preflight(parse_config(AZURE, source="azure.toml")) == 2
        o1 = [r.body for r in server.requests if r.model_or_deployment == "o1-mini"]
        assert o1 and "max_completion_tokens" in o1[0] and "max_tokens" not in o1[0]
        monkeypatch.setenv("AZURE_OPENAI_API_KEY", WRONG)
        with pytest.raises(PreflightFailed, match="authentication failed") as caught:
            await preflight(parse_config(AZURE, source="azure.toml"))
        assert WRONG not in str(caught.value)


async def test_the_simulator_needs_no_request():
    config = parse_config((ROOT / "examples" / "sim.toml").read_text(), source="sim.toml")
    assert await preflight(config) == 0


def test_run_with_a_wrong_key_exits_2_before_ingesting_anything(tmp_path):
    """The acceptance test: a real ``reasonmed run`` subprocess, a real server, a 60 s hang guard."""

    async def go() -> tuple[int, str, list]:
        async with FakeLLMServer(api_key=KEY) as server:
            env = {"REASONMED_OPENAI_BASE_URL": server.openai_url, "REASONMED_OPENAI_API_KEY": WRONG,
                   "REASONMED_OPENAI_MODEL": "fake-model", "PATH": "/usr/bin:/bin"}
            proc = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "reasonmed_async.cli", "run", "--config", str(ROOT / "examples" / "openai.toml"),
                "--input", str(ROOT / "examples" / "questions.jsonl"), "--db", str(tmp_path / "run.db"),
                cwd=ROOT, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            _, err = await asyncio.wait_for(proc.communicate(), 60)
            return proc.returncode, err.decode(), list(server.requests)

    rc, err, requests = asyncio.run(go())
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.startswith("reasonmed: error:")]
    assert len(lines) == 1 and "authentication failed" in lines[0] and "Traceback" not in err, err
    assert WRONG not in err
    assert all(r.body.get("max_tokens") in (None, 1) for r in requests) and len(requests) <= 2
    db = tmp_path / "run.db"
    if db.exists():  # nothing ingested: no run, no question
        import sqlite3

        with sqlite3.connect(db) as con:
            assert con.execute("SELECT COUNT(*) FROM runs").fetchone() == (0,)
