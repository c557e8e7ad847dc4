"""``reasonmed daemon``: runs until stopped, taking work from an inbox and an HTTP API.

At start it resumes whatever the database holds unfinished.  SIGTERM / SIGINT
stop intake, let handlers in flight finish within the grace period, and exit 0
(everything is checkpointed); a second signal exits at once.  SIGHUP re-reads
key files and reloads rate limits and concurrency from the config file.  ``POST /v1/drain`` stops
intake and exits once everything taken is done.  The shutdown path is the one
``run`` uses: stop intake, drain with a deadline, cancel the rest, close in
reverse order.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from dataclasses import dataclass
from pathlib import Path

import structlog
from aiohttp import web

from reasonmed_async.config import ConfigError, load_config
from reasonmed_async import signals
from reasonmed_async.daemon.api import ControlAPI, check_listen
from reasonmed_async.daemon.inbox import Inbox
from reasonmed_async.daemon.job_events import JobEvents
from reasonmed_async.daemon.jobs import submit_file
from reasonmed_async.llm.credentials import reload_all
from reasonmed_async.metrics.registry import Metrics
from reasonmed_async.pipeline import Pipeline
from reasonmed_async.workers import worker_counts
from reasonmed_async.reports.live import forget_open_circuits, publish as publish_live
from reasonmed_async.reports.outcome import interrupted_code
from reasonmed_async.store import queries

log = structlog.get_logger("daemon")


@dataclass(frozen=True)
class DaemonOptions:
    config: Path
    db: Path
    inbox: Path | None = None
    listen: tuple[str, int] | None = None
    token: str | None = None


def announce(text: str) -> None:
    """A line for whoever started the daemon; a closed stdout (terminal gone) must not stop it."""
    with contextlib.suppress(OSError, ValueError):
        print(text, flush=True)


def parse_listen(value: str) -> tuple[str, int]:
    host, _, port = value.rpartition(":")
    if not host or not port.isdigit():
        raise ValueError(f"--listen wants HOST:PORT, got {value!r}")
    return host.strip("[]"), int(port)


class Daemon:
    def __init__(self, options: DaemonOptions) -> None:
        self.options = options
        self.stop = asyncio.Event()
        self.draining = asyncio.Event()
        self._inbox: Inbox | None = None
        self._api: ControlAPI | None = None
        self._pipeline: Pipeline | None = None

    async def run(self) -> int:
        opts = self.options
        config = load_config(opts.config)
        if opts.listen is not None:
            check_listen(opts.listen[0], opts.token)
        received = signals.install(self.stop, who="reasonmed daemon", on_hup=self.reload,
                                   on_signal=lambda signum: log.info("daemon.stopping", signal=signal.Signals(signum).name))
        metrics = Metrics(config.cost) if opts.listen is not None else None  # served as GET /metrics
        async with Pipeline.open(config, opts.db, metrics=metrics) as pipeline:
            self._pipeline = pipeline
            if pipeline.store.space is not None:
                pipeline.store.space.on_floor = self.stop.set  # below the free-space floor: a clean stop, exit 4
            await self._check_unfinished(pipeline)
            jobs = JobEvents(pipeline)  # job states change as runs end (job_events.py); API clients can wait for it
            await jobs.finish_settled()
            await forget_open_circuits(pipeline.store)  # this process starts with its circuits closed

            async def submit(path: Path) -> str:
                return await submit_file(pipeline, path)

            runner: web.AppRunner | None = None
            async with asyncio.TaskGroup() as tg:
                bus = tg.create_task(pipeline.bus.run(until_idle=False, stop=self.stop, grace_s=config.grace_s))
                helpers = [tg.create_task(self._drain_when_asked(pipeline)), tg.create_task(publish_live(pipeline))]
                watcher = tg.create_task(jobs.watch(lambda: interrupted_code(received[0]) if received else None),
                                         name="jobs")  # cancelled after the drain (or by a halt): jobs read stopped
                if opts.inbox is not None:
                    self._inbox = Inbox(opts.inbox, submit)
                    helpers.append(tg.create_task(self._inbox.run(), name="inbox"))
                if opts.listen is not None:
                    self._api = ControlAPI(pipeline, submit, Path(f"{opts.db}.jobs"), opts.token, self.draining.set,
                                           jobs=jobs)
                    runner = web.AppRunner(self._api.app(), access_log=None, handler_cancellation=True)
                    await runner.setup()
                    site = web.TCPSite(runner, opts.listen[0], opts.listen[1])
                    await site.start()
                    host, port = runner.addresses[0][:2]
                    announce(f"reasonmed daemon: listening on http://{host}:{port}")
                    log.info("daemon.listening", host=host, port=port, auth=opts.token is not None)
                announce(f"reasonmed daemon: running (db {opts.db}, inbox {opts.inbox or '-'})")
                await self.stop.wait()
                self._stop_intake()
                for task in helpers:
                    task.cancel()
                await bus  # drains within the grace period, then returns
                watcher.cancel()
            if runner is not None:
                await runner.cleanup()
            if pipeline.store.space is not None and pipeline.store.space.low is not None:
                raise pipeline.store.space.low
        announce("reasonmed daemon: stopped; everything is checkpointed")
        return 0

    async def _check_unfinished(self, pipeline: Pipeline) -> None:
        rows = await queries.unfinished_run_digests(pipeline.store)
        mine = (pipeline.config.digest, pipeline.config.legacy_digest)  # URLs, limits, retry may differ (config_changes)
        other = [run_id for run_id, digest in rows if digest not in mine]
        if other:
            from reasonmed_async.corrected_config import first_data_change
            from reasonmed_async.pipeline import stored_config

            key = first_data_change(await stored_config(pipeline.store), pipeline.config)
            raise ConfigError(f"{self.options.db} holds unfinished runs started with another config ({', '.join(other)}"
                              f"{'; ' + key if key else ''}): finish them with `reasonmed resume --db"
                              f" {self.options.db}` or start the daemon with their config")
        if rows:
            log.info("daemon.resuming", runs=len(rows))

    def _stop_intake(self) -> None:
        if self._inbox is not None:
            self._inbox.accepting = False
        if self._api is not None:
            self._api.accepting = False

    async def _drain_when_asked(self, pipeline: Pipeline) -> None:
        await self.draining.wait()
        log.info("daemon.draining")
        self._stop_intake()
        await pipeline.bus.wait_idle()
        for run in await queries.runs(pipeline.store):
            if run.status == "running":
                await pipeline.store.finish_run(run.id)
        self.stop.set()

    def reload(self) -> None:
        """SIGHUP: key files, rate limits (backends) and concurrency (agents) from the config file, no restart."""
        pipeline = self._pipeline
        if pipeline is None:
            return
        reload_all(pipeline.backends)  # first: a bad config file must not keep an old key in use
        try:
            fresh = load_config(self.options.config)
        except ConfigError as exc:
            log.error("daemon.reload_failed", error=str(exc))
            return
        for name, backend in pipeline.backends.items():
            reconfigure = getattr(backend, "reconfigure", None)
            if reconfigure is not None and name in fresh.backends:
                try:
                    reconfigure(fresh.backends[name].options)
                except ValueError as exc:
                    log.error("daemon.reload_failed", backend=name, error=str(exc))
        sized = worker_counts(fresh)
        for name in pipeline.bus.stats:
            workers = sized.get(name.split("-")[0])
            if workers:
                pipeline.bus.set_concurrency(name, workers)
        log.info("daemon.reloaded", concurrency=sized)
