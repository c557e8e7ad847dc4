"""The shipped Grafana dashboard and Prometheus snippet query only what a real scrape of the app exports.

A pipeline (the simulator backend, a real SQLite file) runs three questions; its
``/metrics`` is served by the daemon's own ``ControlAPI`` on 127.0.0.1 and
scraped over HTTP; every metric name in every panel's PromQL must be among the
scraped ones, and the dashboard must have the shape Grafana imports.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp import web
from prometheus_client.openmetrics.parser import text_string_to_metric_families as openmetrics_families
from prometheus_client.parser import text_string_to_metric_families

from e2e_support import ROOT, sim_config
from reasonmed_async.config import parse_config
from reasonmed_async.daemon.api import ControlAPI
from reasonmed_async.loaders.dispatch import load_questions
from reasonmed_async.metrics.registry import Metrics
from reasonmed_async.pipeline import Pipeline

DASHBOARD = ROOT / "deploy" / "grafana" / "reasonmed.json"
SCRAPE_CONFIG = ROOT / "deploy" / "grafana" / "prometheus-scrape.yml"
TOKEN = "dashboard-test-token-4b2d"
_NAME = re.compile(r"\breasonmed_[a-z0-9_]+\b")
_SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


@pytest.fixture
async def served(tmp_path: Path) -> AsyncIterator[str]:
    """The URL of a ControlAPI on 127.0.0.1 over a pipeline that has run three questions."""
    config = parse_config(sim_config(latency_ms="1"))
    questions = list(load_questions(ROOT / "examples" / "questions.jsonl", limits=config.input_limits()))[:3]
    async with Pipeline.open(config, tmp_path / "run.db", metrics=Metrics(config.cost)) as pipeline:
        await pipeline.start_run(questions, "questions.jsonl", "digest", None)
        assert await pipeline.drive()
        api = ControlAPI(pipeline, submit=None, uploads=tmp_path / "jobs", token=TOKEN,  # type: ignore[arg-type]
                         on_drain=lambda: None)
        runner = web.AppRunner(api.app(), access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        host, port = runner.addresses[0][:2]
        try:
            yield f"http://{host}:{port}"
        finally:
            await runner.cleanup()


async def scrape(url: str, **headers: str) -> tuple[str, str]:
    """(content type, body) of ``GET /metrics`` with the token."""
    async with aiohttp.ClientSession() as http:
        response = await http.get(f"{url}/metrics", headers={"Authorization": f"Bearer {TOKEN}", **headers})
        assert response.status == 200
        return response.headers["Content-Type"], await response.text()


def exported_names(text: str) -> set[str]:
    """Every series name a query can use: the samples, and for a family without any yet its type's names."""
    names: set[str] = set()
    for family in text_string_to_metric_families(text):
        names |= {s.name for s in family.samples}
        names |= {family.name + suffix for suffix in _SUFFIXES.get(family.type, ("",))}
    return names


def panel_queries(dashboard: dict) -> dict[str, list[str]]:
    return {p["title"]: [t["expr"] for t in p["targets"]] for p in dashboard["panels"]}


async def test_every_panel_queries_metrics_the_app_exports(served: str) -> None:
    _, scraped = await scrape(served)
    exported = exported_names(scraped)
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    queries = panel_queries(dashboard)
    assert len(queries) >= 10
    unknown = {title: sorted(set(_NAME.findall(" ".join(exprs))) - exported) for title, exprs in queries.items()}
    assert not any(unknown.values()), {t: n for t, n in unknown.items() if n}
    used = set(_NAME.findall(" ".join(e for exprs in queries.values() for e in exprs)))
    for wanted in ("reasonmed_llm_requests_total", "reasonmed_llm_request_duration_seconds_bucket",
                   "reasonmed_llm_tokens_total", "reasonmed_llm_cost_usd_total", "reasonmed_bus_queue_depth",
                   "reasonmed_llm_circuit_open"):
        assert wanted in used, f"no panel shows {wanted}"
    # the run really produced the series the main panels plot
    samples = {s.name for f in text_string_to_metric_families(scraped) for s in f.samples}
    assert {"reasonmed_llm_requests_total", "reasonmed_llm_request_duration_seconds_bucket",
            "reasonmed_llm_tokens_total", "reasonmed_bus_queue_depth"} <= samples


async def test_openmetrics_is_served_when_the_scraper_asks_for_it(served: str) -> None:
    content_type, body = await scrape(served, Accept="application/openmetrics-text; version=1.0.0")
    assert content_type.startswith("application/openmetrics-text")
    families = {f.name: f for f in openmetrics_families(body)}
    assert body.rstrip().endswith("# EOF")
    requests = families["reasonmed_llm_requests"]
    assert requests.type == "counter" and sum(s.value for s in requests.samples if s.name.endswith("_total")) > 0


def test_the_dashboard_has_the_shape_grafana_imports() -> None:
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert dashboard["uid"] and dashboard["title"] and isinstance(dashboard["schemaVersion"], int)
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource" and variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    cells: set[tuple[int, int]] = set()
    for panel in dashboard["panels"]:
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        grid = panel["gridPos"]
        assert 0 <= grid["x"] and grid["x"] + grid["w"] <= 24 and grid["h"] > 0, panel["title"]
        covered = {(x, y) for x in range(grid["x"], grid["x"] + grid["w"])
                   for y in range(grid["y"], grid["y"] + grid["h"])}
        assert not covered & cells, f"{panel['title']} overlaps another panel"
        cells |= covered
        refs = [t["refId"] for t in panel["targets"]]
        assert refs and len(refs) == len(set(refs))
        for expr in (t["expr"] for t in panel["targets"]):
            assert expr.count("(") == expr.count(")") and expr.count("{") == expr.count("}"), expr
            if "histogram_quantile" in expr:
                assert "_bucket" in expr and re.search(r"by \(le\b", expr), expr


def test_the_scrape_config_sends_the_daemon_s_token() -> None:
    config = yaml.safe_load(SCRAPE_CONFIG.read_text(encoding="utf-8"))
    job = config["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    assert job["authorization"]["type"] == "Bearer" and job["authorization"]["credentials_file"]
    assert job["static_configs"][0]["targets"]
