"""Workers per agent sized to keep the endpoints full (reasonmed_async/workers.py).

A table of configurations as users write them (one vLLM server, replicas behind a router, llama.cpp's
few slots, Azure quotas, the in-process engine, the simulator, an explicit ``[concurrency]``), then the
real thing: ``reasonmed run`` against an HTTP server on 127.0.0.1 that holds every request, which must
see as many requests at once as the backend admits — no more, and not the 36 that four generator
workers of nine paths each could send."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from fake_llm_server import FakeLLMServer
from reasonmed_async.config import parse_config
from reasonmed_async.llm.preflight import probes
from reasonmed_async.workers import worker_counts
from retry_support import QUESTIONS, cli, config, env, start_cli

ROOT = Path(__file__).resolve().parents[2]
FLOW = """
[generation]
models = ["qwen", "deepseek", "huatuo"]
temperatures = [0.7, 0.9, 1.0]
[stages.verifier]
model = "judge"
[stages.ranker]
model = "judge"
[stages.refiner]
model = "judge"
[stages.regenerator]
model = "rewriter"
[stages.summarizer]
model = "judge"
"""


def _models(gen: str, judge: str, rewriter: str) -> str:
    return "".join(f'[models.{alias}]\nbackend = "{b}"\nmodel = "{alias}-served"\n'
                   for alias, b in (("qwen", gen), ("deepseek", gen), ("huatuo", gen), ("judge", judge),
                                    ("rewriter", rewriter)))


VLLM_SERVER = '[backends.gpu]\ntype = "openai"\nbase_url = "http://10.0.0.5:8000/v1"\nmax_num_seqs = 256\n'
ROUTER = ('[backends.gpu]\ntype = "openai"\nbase_urls = ["http://router-a:8000/v1", "http://router-b:8000/v1"]\n'
          'max_num_seqs = 128\nreplicas = 4\n')
LLAMACPP = '[backends.gpu]\ntype = "openai"\nbase_url = "http://127.0.0.1:8080/v1"\nmax_concurrency = 4\n'
SIM = '[backends.gpu]\ntype = "sim"\n'
AZURE = ('[backends.az]\ntype = "azure"\nendpoint = "https://x.openai.azure.com"\napi_version = "2024-10-21"\n'
         'api_key_env = "AZURE_OPENAI_API_KEY"\n'
         '[backends.az.deployments.judge-served]\nrpm = 600\ntpm = 1000000\n'
         '[backends.az.deployments.rewriter-served]\nrpm = 100\ntpm = 500000\n')

CASES = [
    # one vLLM server, --max-num-seqs 256, every role on it: each LLM agent alone can fill 256
    ("vllm-server", VLLM_SERVER + _models("gpu", "gpu", "gpu"),
     {"generator": 29, "verifier": 256, "reverify": 256, "ranker": 256, "refiner": 256, "retry": 256,
      "regenerator": 256, "summarizer": 256, "tierer": 256}),
    # two router URLs, each fronting 4 replicas of 128 sequences: 1,024 at once
    ("router", ROUTER + _models("gpu", "gpu", "gpu"),
     {"generator": 114, "verifier": 1024, "summarizer": 1024, "tierer": 1024}),
    # llama.cpp with 4 slots: the defaults already more than fill it
    ("llama.cpp", LLAMACPP + _models("gpu", "gpu", "gpu"), {}),
    # the simulator answers at once: no endpoint to fill, the defaults stand
    ("sim", SIM + _models("gpu", "gpu", "gpu"), {}),
    # generators on vLLM, judges on an Azure quota of 600 rpm (300 in 30 s), the rewriter on 100 rpm (50)
    ("azure", VLLM_SERVER + AZURE + _models("gpu", "az", "az"),
     {"generator": 29, "verifier": 300, "summarizer": 300, "regenerator": 50}),
    # [concurrency] as given wins; the others are still sized (the tierer as the verifier, whoever sized it)
    ("explicit", VLLM_SERVER + _models("gpu", "gpu", "gpu") + "[concurrency]\ngenerator = 2\nverifier = 700\n",
     {"generator": 2, "verifier": 700, "ranker": 256, "tierer": 700}),
    ("explicit-tierer", VLLM_SERVER + _models("gpu", "gpu", "gpu") + "[concurrency]\ntierer = 8\n",
     {"verifier": 256, "tierer": 8}),
]


@pytest.mark.parametrize(("name", "text", "expected"), CASES, ids=[c[0] for c in CASES])
def test_workers_per_agent(name: str, text: str, expected: dict[str, int]) -> None:
    counts = worker_counts(parse_config(text + FLOW, source=f"{name}.toml", env={}))
    assert {k: counts.get(k) for k in expected} == expected
    if not expected:  # nothing to fill: every agent keeps its default (build_subscriptions' own)
        assert counts == {}


def test_in_process_vllm_engine_is_sized_from_its_max_num_seqs() -> None:
    text = ('[backends.gpu]\ntype = "vllm"\nmodel = "/models/qwen"\n[backends.gpu.engine_args]\nmax_num_seqs = 512\n'
            + _models("gpu", "gpu", "gpu") + FLOW)
    counts = worker_counts(parse_config(text, source="vllm.toml", env={}))
    assert counts["generator"] == 57 and counts["verifier"] == 512


def _preflight_requests(cfg: Path, server: FakeLLMServer) -> int:
    """What ``reasonmed run`` asks the server before the run itself: a probe per model, and the model list."""
    return len(probes(parse_config(cfg.read_text(encoding="utf-8"), source=str(cfg), env=env(server)))) + 1


@pytest.mark.slow
async def test_a_run_fills_the_endpoint_to_what_it_admits(tmp_path: Path) -> None:
    """96 admitted, the server holding every request of the run itself: it then has 96 at once (four
    generator workers of nine paths could send 36), and the run finishes once they are let go."""
    cfg = config(tmp_path)
    text = cfg.read_text(encoding="utf-8")
    assert "max_concurrency = 64" in text
    cfg.write_text(text.replace("max_concurrency = 64", "max_concurrency = 96\nadaptive = false", 1), encoding="utf-8")
    async with FakeLLMServer(api_key=None) as server:
        server.hold_from, server.held = _preflight_requests(cfg, server), 0  # every request after the preflight waits
        proc = await start_cli("run", "--config", str(cfg), "--input", str(QUESTIONS), "--db",
                               str(tmp_path / "fill.db"), "--limit", "20", environ=env(server))
        try:
            async with asyncio.timeout(100):  # a hang guard, not a timing assertion
                while server.held < 96 and proc.returncode is None:
                    await asyncio.sleep(0.02)
            preflight = server.requests[: server.hold_from]
            assert all(r.path.endswith("/models") or r.body.get("max_tokens") == 1 for r in preflight)
            assert server.held == 96 and len(server.requests) == server.hold_from + 96, proc.returncode
        finally:
            server.released.set()
        _, err = await asyncio.wait_for(proc.communicate(), 300)
        assert proc.returncode == 0, err.decode()[-2000:]
    rc, out, _ = await cli("status", "--db", str(tmp_path / "fill.db"), environ=env(server))
    assert rc == 0 and "final records: " in out
