"""``GET /metrics`` on a real daemon: its counts agree with the fake server's own request log.

The daemon runs as a subprocess against the fake OpenAI-compatible server on
127.0.0.1, which answers the first requests with a burst of 503s; a small job
goes in over the API; ``/metrics`` is scraped with a plain HTTP client and
parsed with prometheus_client's own parser.  Requests per model and outcome,
tokens, cost and the latency histogram's counts must equal what the server saw
and returned; neither the API key nor the daemon's token may appear.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import Counter, defaultdict
from pathlib import Path

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from daemon_support import QUESTIONS, listening_daemon
from e2e_support import ROOT
from fake_llm_server import FakeLLMServer, RequestRecord

pytestmark = pytest.mark.slow

KEY = "sk-metrics-test-9d8c7b6a5f4e3d2c"
TOKEN = "metrics-daemon-token-3e9a61c0b7"
BURST = 4  # the first requests the server answers 503
PRICE_IN, PRICE_OUT = 1.5, 6.0  # fake-qwen's price, $ per million tokens


def _config(tmp_path: Path) -> Path:
    """examples/openai.toml with one served name per role (``fake-qwen``, ...), a price on fake-qwen, and
    quick backoff (the 503 burst costs milliseconds)."""
    text = (ROOT / "examples" / "openai.toml").read_text(encoding="utf-8")
    text = re.sub(r'(?m)^\[models\.([\w.-]+)\]\nbackend = "local"\nmodel = .*$',
                  lambda m: f'[models.{m.group(1)}]\nbackend = "local"\nmodel = "fake-{m.group(1)}"', text)
    text = text.replace('model = "fake-qwen"', f'model = "fake-qwen"\nprice_in = {PRICE_IN}\nprice_out = {PRICE_OUT}')
    text = text.replace("base_s = 0.5\n", "base_s = 0.02\n").replace("cap_s = 30\n", "cap_s = 0.2\n")
    text = text.replace("grace_s = 30", "grace_s = 5")
    assert text.count('model = "fake-') == 6 and "base_s = 0.02" in text
    path = tmp_path / "openai.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _env(server: FakeLLMServer) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REASONMED_", "AZURE_OPENAI"))}
    return {**base, "REASONMED_OPENAI_BASE_URL": server.openai_url, "REASONMED_OPENAI_API_KEY": KEY,
            "REASONMED_DAEMON_TOKEN": TOKEN}


def _preflight(body: dict) -> bool:
    """The daemon's preflight probe ("Reply with OK.", before the pipeline starts): not a pipeline call."""
    return body.get("messages") == [{"role": "user", "content": "Reply with OK."}]


def _burst_of_503s() -> object:
    sent = 0

    def script(record: RequestRecord, body: dict, seen: int) -> tuple[int, str, dict[str, str]] | None:
        nonlocal sent
        if _preflight(body):
            return None
        sent += 1
        return (503, "The server is overloaded, try again later.", {}) if sent <= BURST else None

    return script


def samples(text: str) -> dict[str, list[tuple[dict[str, str], float]]]:
    out: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name].append((s.labels, s.value))
    return out


def by(series: list[tuple[dict[str, str], float]], label: str, **where: str) -> Counter[str]:
    total: Counter[str] = Counter()
    for labels, value in series:
        if all(labels.get(k) == v for k, v in where.items()):
            total[labels[label]] += value
    return total


async def test_a_scrape_agrees_with_the_server_s_request_log(tmp_path: Path) -> None:
    cfg = _config(tmp_path)
    job_file = tmp_path / "three.jsonl"
    job_file.write_text("".join(QUESTIONS.read_text(encoding="utf-8").splitlines(keepends=True)[:3]), "utf-8")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with FakeLLMServer(api_key=KEY) as server:
        server.script = _burst_of_503s()  # type: ignore[assignment]
        async with listening_daemon(cfg, tmp_path / "d.db", _env(server)) as url, aiohttp.ClientSession() as http:
            posted = await http.post(f"{url}/v1/jobs?name=three.jsonl", data=job_file.read_bytes(), headers=auth)
            assert posted.status == 201, await posted.text()
            job = (await posted.json())["job"]
            async with asyncio.timeout(120):  # a hang guard, not a timing assertion
                while (await (await http.get(f"{url}/v1/jobs/{job}", headers=auth)).json())["status"] != "finished":
                    await asyncio.sleep(0.1)
            refused = await http.get(f"{url}/metrics")
            assert refused.status == 401
            scraped = await http.get(f"{url}/metrics", headers=auth)
            assert scraped.status == 200
            assert scraped.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            text = await scraped.text()
        chat = [r for r in server.requests if r.path.endswith("/chat/completions") and not _preflight(r.body)]
        assert len(chat) < sum(r.path.endswith("/chat/completions") for r in server.requests)  # probes were sent
    assert KEY not in text and TOKEN not in text

    got = samples(text)
    requests = got["reasonmed_llm_requests_total"]
    assert by(requests, "model") == Counter(r.model_or_deployment for r in chat)
    assert by(requests, "model", outcome="ok") == Counter(r.model_or_deployment for r in chat if r.status == 200)
    assert by(requests, "outcome") == {"ok": sum(r.status == 200 for r in chat), "server_error": BURST}
    assert {labels["endpoint"] for labels, _ in requests} == {f"127.0.0.1:{server.port}/v1"}
    assert by(requests, "stage")["generate"] == 3 * 9 + BURST  # nine paths per question; the 503s hit the first

    tokens = got["reasonmed_llm_tokens_total"]
    ok = [r for r in chat if r.status == 200]
    served: dict[str, Counter[str]] = {"prompt": Counter(), "completion": Counter()}
    for r in ok:
        served["prompt"][r.model_or_deployment] += r.prompt_tokens
        served["completion"][r.model_or_deployment] += r.completion_tokens
    for kind in ("prompt", "completion"):
        assert by(tokens, "model", kind=kind) == served[kind]

    cost = by(got["reasonmed_llm_cost_usd_total"], "model")
    expected = (served["prompt"]["fake-qwen"] * PRICE_IN + served["completion"]["fake-qwen"] * PRICE_OUT) / 1e6
    assert cost["fake-qwen"] == pytest.approx(expected) and expected > 0
    assert by(got["reasonmed_llm_request_duration_seconds_count"], "model") == by(requests, "model", outcome="ok")

    assert set(by(got["reasonmed_llm_circuit_open"], "model").values()) == {0}
    depths = by(got["reasonmed_bus_queue_depth"], "consumer")
    assert {"generator", "verifier", "ranker", "summarizer"} <= set(depths)
    handled = by(got["reasonmed_bus_handled_total"], "consumer")
    assert handled["generator"] == 3
    replicas = by(got["reasonmed_replica_outstanding"], "endpoint")
    assert set(replicas) == {f"127.0.0.1:{server.port}/v1"}
    assert by(got["reasonmed_llm_cache_lookups_total"], "result")["miss"] == len(ok)
