"""The daemon's HTTP control API (aiohttp), on 127.0.0.1 unless told otherwise.

    POST /v1/jobs        a question file as the body (``?name=file.jsonl`` tells its format) → 201 {"job": id}
    GET  /v1/jobs/{id}   the job's progress and state (running, done, failed, stopped) with its exit code;
                         ``?wait=S[&state=X]`` answers once the state is not X (default: the state now)
                         or after S seconds (at most 300): a client waits for the end without polling
    GET  /v1/status      stages, tiers, LLM calls, tokens and cost
    GET  /v1/health      liveness, without authentication
    GET  /metrics        Prometheus metrics (``reasonmed_async.metrics``): calls, tokens, cost, latency, queues
    POST /v1/drain       stop taking work, finish what is there, exit
    GET  /report         the run report, live (``report_page``: a login form sets a session cookie)

Every route but ``/v1/health`` needs ``Authorization: Bearer <token>``: the
daemon always has a token (generated into ``<db>.token`` when none is given,
see ``token.py``) unless ``--no-auth`` (loopback only).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Awaitable, Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from aiohttp import web

from reasonmed_async.loaders.errors import InputError
from reasonmed_async.daemon.job_events import JobEvents
from reasonmed_async.daemon.report_page import PATHS as REPORT_PATHS, ReportPage
from reasonmed_async.pipeline import Pipeline
from reasonmed_async.reports.status import read_status

_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
MAX_UPLOAD = 512 * 1024 * 1024


class InsecureListen(ValueError):
    """Listening beyond loopback without a token."""


def check_listen(host: str, token: str | None) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback and not token:
        raise InsecureListen(f"refusing to listen on {host} without a token (--token-env or --token-file)")


class ControlAPI:
    def __init__(self, pipeline: Pipeline, submit: Callable[[Path], Awaitable[str]], uploads: Path,
                 token: str | None, on_drain: Callable[[], None], jobs: JobEvents | None = None) -> None:
        self._pipeline = pipeline
        self._jobs = jobs or JobEvents(pipeline)
        self._submit = submit
        self._uploads = uploads
        self._token = token
        self._on_drain = on_drain
        self.accepting = True

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self._auth], client_max_size=MAX_UPLOAD)
        app.router.add_post("/v1/jobs", self._post_job)
        app.router.add_get("/v1/jobs/{job}", self._get_job)
        app.router.add_get("/v1/status", self._status)
        app.router.add_get("/v1/health", self._health)
        app.router.add_post("/v1/drain", self._drain)
        app.router.add_get("/metrics", self._metrics)
        ReportPage(self._pipeline.store, self._token).add_routes(app)
        return app

    @web.middleware
    async def _auth(self, request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                    ) -> web.StreamResponse:
        if request.path != "/v1/health" and request.path not in REPORT_PATHS and self._token is not None:
            given = request.headers.get("Authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {self._token}".encode()):
                return web.json_response({"error": "missing or wrong bearer token"}, status=401,
                                         headers={"WWW-Authenticate": "Bearer"})
        return await handler(request)

    async def _post_job(self, request: web.Request) -> web.Response:
        if not self.accepting:
            return web.json_response({"error": "draining: not taking new jobs"}, status=503)
        body = await request.read()
        if not body:
            return web.json_response({"error": "empty body: send a question file"}, status=400)
        name = _SAFE_NAME.sub("_", request.query.get("name", "upload.jsonl"))[:100] or "upload.jsonl"
        self._uploads.mkdir(parents=True, exist_ok=True)
        path = self._uploads / f"{hashlib.sha256(body).hexdigest()[:16]}-{name}"
        path.write_bytes(body)
        try:
            job = await self._submit(path)
        except InputError as exc:
            path.unlink(missing_ok=True)
            return web.json_response({"error": str(exc), "line": exc.line, "field": exc.field}, status=400)
        except BaseException:
            path.unlink(missing_ok=True)  # a refused upload leaves nothing on disk
            raise
        return web.json_response({"job": job}, status=201, headers={"Location": f"/v1/jobs/{job}"})

    async def _get_job(self, request: web.Request) -> web.Response:
        job, wait = request.match_info["job"], request.query.get("wait")
        if wait is None:
            status = await self._jobs.status(job)
        else:  # long-poll: answered once the state is not ?state= (default: the state now), or after wait s
            try:
                timeout_s = float(wait)
            except ValueError:
                return web.json_response({"error": f"wait must be a number of seconds, got {wait[:40]!r}"}, status=400)
            status = await self._jobs.wait(job, request.query.get("state"), timeout_s)
        if status is None:
            return web.json_response({"error": "no such job"}, status=404)
        return web.json_response(status)

    async def _status(self, _: web.Request) -> web.Response:
        report = await read_status(self._pipeline.store, self._pipeline.config)
        body: dict[str, Any] = {
            "accepting": self.accepting,
            "runs": [{"job": r, "status": s, "questions": n} for r, s, n in report.runs],
            "stages": {name: asdict(c) for name, c in report.stages.items()},
            "in_flight": {name: s.in_flight for name, s in self._pipeline.bus.stats.items()},
            "tiers": report.tiers,
            "failed_questions": report.question_failures,
            "rejected_by_gate": report.gates,
            "records": report.records,
            "calls": [{"stage": st, "model": m, "outcome": o, "calls": n, "prompt_tokens": p, "completion_tokens": c,
                       "cost_usd": round(report.costs.get((st, m, o), 0.0), 6)}
                      for st, m, o, n, p, c in report.calls],
        }
        return web.json_response(body)

    async def _health(self, _: web.Request) -> web.Response:
        return web.json_response({"ok": True, "accepting": self.accepting})

    async def _metrics(self, request: web.Request) -> web.Response:
        if self._pipeline.metrics is None:
            return web.json_response({"error": "this pipeline keeps no metrics"}, status=404)
        body, content_type = self._pipeline.metrics.render(request.headers.get("Accept"))
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def _drain(self, _: web.Request) -> web.Response:
        self._on_drain()
        return web.json_response({"draining": True}, status=202)
