"""The application: store, clients, agents and bus wired together, with one shutdown path.

``Pipeline.open`` builds everything inside an ``AsyncExitStack`` so that
whatever was opened is closed in reverse order however the run ends: the CLI's
``run`` and ``resume``, the daemon and the tests all go through it.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterator, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import structlog

from agents.flow import build_subscriptions
from agents.llm import LLMClient
from agents.prompts import Templates
from bus import Backoff, MessageBus, Question, QuestionIngested

from reasonmed_async.llm.registry import Backend, open_backend
from reasonmed_async.llm.cache import CachedClient, FailedAttempts
from reasonmed_async.config import AppConfig, parse_config
from reasonmed_async.store.lock import OwnerLock
from reasonmed_async.llm.retry import RetryingClient
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore

log = structlog.get_logger("pipeline")


class RunConflict(RuntimeError):
    """The database already holds an unfinished run: it must be resumed first."""


def run_id_for(input_digest: str, config_digest: str, limit: int | None) -> str:
    return "run-" + hashlib.blake2b(f"{input_digest}|{config_digest}|{limit}".encode(), digest_size=6).hexdigest()


def file_digest(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


async def stored_config(store: CheckpointStore, *, unfinished: bool = True) -> AppConfig:
    """The configuration a run was started with (its text lives in the database):
    the unfinished run's, or with ``unfinished=False`` the latest run's."""
    text = await queries.latest_config_text(store, unfinished=unfinished)
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

    @classmethod
    @asynccontextmanager
    async def open(cls, config: AppConfig, db: str | Path, *, models: set[str] | None = None,
                   agents: bool = True) -> AsyncIterator[Pipeline]:
        """Store, LLM clients (for ``models`` only, if given) and, with ``agents``, the subscribed flow."""
        async with AsyncExitStack() as stack:
            if agents:  # it will deliver messages: no other process may deliver the same ones
                lock = OwnerLock(db)
                lock.acquire()
                stack.callback(lock.release)
            store = await CheckpointStore.open(db, synchronous=config.synchronous)
            stack.push_async_callback(store.close)
            backoff = Backoff(
                attempts=int(config.retry.get("attempts", 3)),
                base_s=config.retry.get("base_s", 0.5),
                cap_s=config.retry.get("cap_s", 30.0),
            )
            wanted = {m: b for m, b in config.model_backends.items() if models is None or m in models}
            backends: dict[str, Backend] = {}
            for name, backend in config.backends.items():
                if name in wanted.values():
                    backends[name] = await open_backend(backend)
                    stack.push_async_callback(backends[name].aclose)
            timeout = config.retry.get("timeout_s", 600.0)
            failures = FailedAttempts(store)
            clients: dict[str, LLMClient] = {
                model: CachedClient(RetryingClient(backends[backend], backoff, timeout_s=timeout, observer=failures), store)
                for model, backend in wanted.items()
            }
            bus = MessageBus(store)
            templates = Templates.load(config.templates_dir)
            for sub in [] if not agents else build_subscriptions(
                clients, store, config.flow, templates,
                concurrency=config.concurrency, queue_size=config.queue_size,
                backoff=Backoff(attempts=int(config.retry.get("handler_attempts", 3)), base_s=0.05, cap_s=2.0),
            ):
                bus.subscribe(sub)
            yield cls(config, store, bus, clients, backends)

    @property
    def backend_types(self) -> set[str]:
        return {self.config.backends[b].type for b in self.config.model_backends.values()}

    async def start_run(self, questions: Sequence[Question], input_path: str, input_digest: str,
                        limit: int | None, *, alongside: bool = False) -> str:
        """Record a new run and its questions, all or nothing.

        Refuses if a run is unfinished — unless ``alongside`` (the daemon, whose
        runs share its config): then a run of the same input is the same job,
        and submitting it again returns its id without adding anything."""
        run_id = run_id_for(input_digest, self.config.digest, limit)
        for run in await queries.runs(self.store):
            if alongside:
                if run.id == run_id:
                    return run_id
                continue
            if run.status == "running":
                same = " of the same input" if run.id == run_id else ""
                raise RunConflict(f"{self.store.path} holds the unfinished run {run.id}{same}: "
                                  f"continue it with `reasonmed resume --db {self.store.path}`")
            if run.id == run_id:
                raise RunConflict(f"{self.store.path} already holds the finished run {run_id} of this input: "
                                  f"`reasonmed export --db {self.store.path} --out DIR` writes its data")
        messages = [QuestionIngested(run_id=run_id, question_id=q.id, question=q) for q in questions]
        run = {"id": run_id, "input_path": input_path, "input_digest": input_digest,
               "config_digest": self.config.digest, "config_json": self.config.text, "questions": len(questions)}
        routed = [self.bus.route(m) for m in messages]
        await self.bus.ingest(lambda: self.store.create_run(run, [(q.id, q.ordinal, q.source) for q in questions], routed))
        log.info("run.started", run=run_id, questions=len(questions), input=input_path)
        return run_id

    async def drive(self, stop: asyncio.Event | None = None) -> bool:
        """Deliver everything pending until done (True) or until ``stop`` (False)."""
        stop = stop or asyncio.Event()
        await self.bus.run(until_idle=True, stop=stop, grace_s=self.config.grace_s)
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
