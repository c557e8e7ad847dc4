"""The application: store, clients, agents and bus wired together, with one shutdown path.

``Pipeline.open`` builds everything inside an ``AsyncExitStack`` so that
whatever was opened is closed in reverse order however the run ends: the CLI's
``run`` and ``resume``, the daemon and the tests all go through it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Iterable, Iterator
from itertools import islice
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from agents.flow import build_subscriptions
from agents.llm import LLMClient
from agents.prompts import Templates
from bus import Backoff, MessageBus, Question, QuestionIngested

from reasonmed_async.llm.registry import Backend, open_backend
from reasonmed_async.llm.cache import CachedClient, FailedAttempts
from reasonmed_async.config import AppConfig, ConfigError, parse_config
from reasonmed_async.store.lock import OwnerLock
from reasonmed_async.store.space import SpaceWatch, check_free
from reasonmed_async.llm.budget import CappedClient, SpendCap
from reasonmed_async.llm.gauge import CallGauge
from reasonmed_async.llm.retry import RetryingClient, RetryPolicy
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore
from reasonmed_async.workers import worker_counts

if TYPE_CHECKING:
    from reasonmed_async.metrics.registry import Metrics

log = structlog.get_logger("pipeline")


ConfigFromStore = Callable[[CheckpointStore], Awaitable[AppConfig]]


class RunConflict(RuntimeError):
    """The database already holds an unfinished run: it must be resumed first."""


def run_id_for(input_digest: str, config_digest: str, limit: int | None) -> str:
    return "run-" + hashlib.blake2b(f"{input_digest}|{config_digest}|{limit}".encode(), digest_size=6).hexdigest()


INTAKE_BATCH = 500  # questions (and their first messages) per intake transaction: bounds intake memory
# (2,000 left RSS ~4 MiB higher after a 200,000-question intake than 500: BENCHMARKS.md, issue 13, fourth pass)


def file_digest(path: str | Path) -> str:
    with Path(path).open("rb") as f:  # in chunks: never the whole file in memory
        return hashlib.file_digest(f, "sha256").hexdigest()


async def stored_config(store: CheckpointStore, *, unfinished: bool = True) -> AppConfig:
    """The configuration a run was started with (its text lives in the database):
    the unfinished run's, or with ``unfinished=False`` the latest run's."""
    text = await queries.latest_config_text(store, unfinished=unfinished)
    if text is None and unfinished:
        cut = [r for r in await queries.runs(store) if r.status == "ingesting"]
        if cut:
            raise RunConflict(f"{store.path}: run {cut[0].id} was stopped while its questions were being ingested:"
                              f" run the same `reasonmed run` command again to finish the intake")
    if text is None:
        raise RunConflict(f"{store.path}: no {'unfinished ' if unfinished else ''}run in this database")
    return parse_config(text, source=f"{store.path} (stored config)")


class Pipeline:
    def __init__(self, config: AppConfig, store: CheckpointStore, bus: MessageBus, clients: dict[str, LLMClient],
                 backends: dict[str, Backend]) -> None:
        self.config = config
        self.store = store
        self.bus = bus
        self.clients = clients
        self.backends = backends
        self.spend_cap: SpendCap | None = None
        self.metrics: Metrics | None = None
        self.gauge = CallGauge()

    @classmethod
    @asynccontextmanager
    async def open(cls, config: AppConfig | ConfigFromStore, db: str | Path, *, models: set[str] | None = None,
                   agents: bool = True, metrics: Metrics | None = None) -> AsyncIterator[Pipeline]:
        """Store, LLM clients (for ``models`` only, if given) and, with ``agents``, the subscribed flow.
        ``config`` may be a function reading it from the store (resume: the store is opened once).
        ``metrics``, if given, counts the calls and reads the bus at each scrape (``GET /metrics``)."""
        async with AsyncExitStack() as stack:
            if agents:  # it will deliver messages: no other process may deliver the same ones
                if isinstance(config, AppConfig):
                    check_free(Path(db), config.file.store.min_free_mb)  # before anything is created
                lock = OwnerLock(db)
                lock.acquire()
                stack.callback(lock.release)
            known = isinstance(config, AppConfig)
            store = await CheckpointStore.open(db, synchronous=config.synchronous if known else "NORMAL")
            stack.push_async_callback(store.close)
            if not isinstance(config, AppConfig):
                config = await config(store)
                if config.synchronous.upper() != "NORMAL":
                    await store.set_synchronous(config.synchronous)
                if agents:  # resume: the floor is the run's own
                    check_free(Path(db), config.file.store.min_free_mb)
            if agents:
                store.space = SpaceWatch(Path(db), warn_mb=config.file.store.warn_free_mb,
                                         floor_mb=config.file.store.min_free_mb)
            try:
                policy = RetryPolicy.from_mapping(config.retry)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"{config.source}: {exc}") from None
            backoff = Backoff(attempts=policy.attempts, base_s=policy.base_s, cap_s=policy.cap_s)
            wanted = {m: b for m, b in config.model_backends.items() if models is None or m in models}
            backends: dict[str, Backend] = {}
            for name, backend in config.backends.items():
                if name in wanted.values():
                    backends[name] = await open_backend(backend)
                    if hasattr(backends[name], "max_wait_s"):  # a backend that pauses on a 429 itself
                        backends[name].max_wait_s = policy.max_wait_s  # type: ignore[attr-defined]
                    stack.push_async_callback(backends[name].aclose)
            failures = FailedAttempts(store)
            rounds = await queries.reissue_rounds(store)  # the calls `reasonmed retry` re-issues as new samples
            budget = config.file.budget
            cap = SpendCap(budget.max_cost_usd, budget.max_tokens)
            for _, model, outcome, _, p, c in await queries.call_totals(store):  # what earlier runs spent
                if outcome == "ok":
                    cap.add(config.cost(model, p, c), p + c)

            def capped(inner: LLMClient) -> LLMClient:
                return inner if cap.max_cost_usd is None and cap.max_tokens is None else \
                    CappedClient(inner, cap, config.cost)

            observer = failures if metrics is None else metrics.calls.observing(failures)

            def metered(inner: LLMClient, model: str) -> LLMClient:
                return inner if metrics is None else metrics.calls.metered(inner, model)

            gauge = CallGauge()  # attempts on the wire and waiting, across every model (status shows it)
            clients: dict[str, LLMClient] = {
                model: CachedClient(capped(metered(RetryingClient(backends[backend], backoff, policy=policy,
                                                                  observer=observer, on_circuit=observer, gauge=gauge),
                                                   model)),
                                    store, rounds)
                for model, backend in wanted.items()
            }
            bus = MessageBus(store)
            templates = Templates.load(config.templates_dir)
            workers = worker_counts(config)
            if agents and workers:
                log.info("pipeline.workers", **workers)  # sized to fill the endpoints (workers.py) or as configured
            for sub in [] if not agents else build_subscriptions(
                clients, store, config.flow, templates,
                concurrency=workers, queue_size=config.queue_size,
                backoff=Backoff(attempts=int(config.retry.get("handler_attempts", 3)), base_s=0.05, cap_s=2.0),
            ):
                bus.subscribe(sub)
            pipeline = cls(config, store, bus, clients, backends)
            pipeline.spend_cap = cap
            pipeline.gauge = gauge
            if metrics is not None:
                metrics.watch(pipeline)
                pipeline.metrics = metrics
            yield pipeline

    @property
    def backend_types(self) -> set[str]:
        return {self.config.backends[b].type for b in self.config.model_backends.values()}

    async def start_run(self, questions: Collection[Question], input_path: str, input_digest: str,
                        limit: int | None, *, alongside: bool = False) -> str:
        """Record a new run and its questions: validated ones (a list, or a ``QuestionSource`` read
        again as it is ingested), in batches of ``INTAKE_BATCH``.  An intake cut short (a crash, a
        signal) leaves the run ``ingesting``; the same ``start_run`` again finishes it.

        Refuses if a run is unfinished — unless ``alongside`` (the daemon, whose
        runs share its config): then a run of the same input is the same job,
        and submitting it again returns its id without adding anything."""
        run_id = run_id_for(input_digest, self.config.digest, limit)
        existing = await queries.runs(self.store)
        legacy = run_id_for(input_digest, self.config.legacy_digest, limit)  # a run an earlier build started
        if legacy in {r.id for r in existing} and run_id not in {r.id for r in existing}:
            run_id = legacy
        resuming = False  # an intake cut short (the run is still "ingesting") is finished, not refused
        for run in existing:
            if run.status == "ingesting" and run.id == run_id:
                resuming = True
                continue
            if alongside:
                if run.id == run_id:
                    return run_id
                continue
            if run.status == "ingesting":
                raise RunConflict(f"{self.store.path} holds the run {run.id}, stopped while its questions were"
                                  " being ingested: run its `reasonmed run` command again to finish the intake")
            if run.status == "running":
                same = " of the same input" if run.id == run_id else ""
                raise RunConflict(f"{self.store.path} holds the unfinished run {run.id}{same}: "
                                  f"continue it with `reasonmed resume --db {self.store.path}`"
                                  " (`--config FILE` corrects its endpoints, keys' variables or limits)")
            if run.id == run_id:
                raise RunConflict(f"{self.store.path} already holds the finished run {run_id} of this input: "
                                  f"`reasonmed export --db {self.store.path} --out DIR` writes its data"
                                  f" (`reasonmed retry --db {self.store.path}` re-issues its failures, if any)")
        run = {"id": run_id, "input_path": input_path, "input_digest": input_digest,
               "config_digest": self.config.digest, "config_json": self.config.text, "questions": len(questions)}
        await self._ingest(run, questions, resuming=resuming)
        log.info("run.started", run=run_id, questions=len(questions), input=input_path)
        return run_id

    async def _ingest(self, run: dict, questions: Iterable[Question], *, resuming: bool) -> None:
        """The questions in batches of ``INTAKE_BATCH``, one transaction each: the first records the run
        (``ingesting`` while batches follow), the last makes it ``running``.  Each batch's messages are
        built, committed and dropped before the next batch is read."""
        first = not resuming
        for batch, last in _batches(questions, INTAKE_BATCH):
            routed = [self.bus.route(QuestionIngested(run_id=run["id"], question_id=q.id, question=q)) for q in batch]
            rows = [(q.id, q.ordinal, q.source) for q in batch]
            if first:
                status = "running" if last else "ingesting"
                await self.bus.ingest(lambda: self.store.create_run({**run, "status": status}, rows, routed))
                first = False
            else:
                await self.bus.ingest(lambda: self.store.add_intake(run["id"], rows, routed, last=last))

    async def drive(self, stop: asyncio.Event | None = None) -> bool:
        """Deliver everything pending until done (True) or until ``stop`` (False)."""
        stop = stop or asyncio.Event()
        if self.store.space is not None:
            self.store.space.on_floor = stop.set  # below the floor: stop cleanly, as on SIGTERM
        await self.bus.run(until_idle=True, stop=stop, grace_s=self.config.grace_s)
        if self.store.space is not None and self.store.space.low is not None:
            raise self.store.space.low  # everything in flight is checkpointed: resumable (exit 4)
        if stop.is_set():
            log.info("run.stopped", reason="stop requested")
            return False
        backlog = await self.store.backlog()
        if backlog.total:
            return False
        for run in await queries.runs(self.store):
            if run.status == "running":
                await self.store.finish_run(run.id)
                log.info("run.finished", run=run.id)
        return True


def _batches(items: Iterable[Question], size: int) -> Iterator[tuple[list[Question], bool]]:
    """``items`` in lists of ``size`` and whether each is the last; one empty list for no items.  Only one
    item is read ahead to tell the last batch (reading the whole next batch held 2 × ``size`` questions)."""
    it = iter(items)
    batch = list(islice(it, size))
    while True:
        following = next(it, None) if len(batch) == size else None
        yield batch, following is None
        if following is None:
            return
        batch = [following, *islice(it, size - 1)]
