"""CPU per LLM call of the bus and the agents alone: the whole flow, nothing around it.

    .venv/bin/python bench/flow_cpu.py [--limit 300] [--config examples/sim.toml] [--out FILE] [--tree DIR]

Runs ``build_subscriptions`` (every agent, the real ``MessageBus``) on the
simulator, as ``reasonmed run`` wires them, but with the journal and the
tierer's join kept in memory and no response cache, no call log, no SQLite:
what is left is the bus (routing, queues, workers, hand-offs), the agents
(prompts, requests, parsing, message construction), each request's cache key
(the cache layer computes it for every call) and the simulator's own work
(``bench/sim_baseline.py``: ~0.02 ms a call).  The whole-pipeline figure of
``bench/size_run.py`` minus this one is what the store, the LLM layers and
the logging cost.  ``--tree DIR`` imports the code from another checkout
(``git archive`` of a base commit: A/B pairs).  Not part of the test suite;
see BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_TREE = sys.argv[sys.argv.index("--tree") + 1] if "--tree" in sys.argv[:-1] else str(ROOT)
sys.path[:0] = [_TREE]

from agents.flow import build_subscriptions  # noqa: E402
from agents.llm import ChatRequest, Completion, LLMClient  # noqa: E402
from agents.prompts import Templates  # noqa: E402
from bus import Message, MessageBus, QuestionIngested  # noqa: E402
from bus.journal import Ack, Backlog, Routed  # noqa: E402
from reasonmed_async.config import load_config  # noqa: E402
from reasonmed_async.llm.sim import SimClient, SimSettings  # noqa: E402
from reasonmed_async.loaders.stream import QuestionSource  # noqa: E402

PUBMEDQA = ROOT.parent / "shared" / "data" / "pubmedqa_ori_pqal.json"


class MemoryJournal:
    """The ``Journal`` contract in memory: deduplicated by id, deliveries kept in order of commit."""

    def __init__(self) -> None:
        self.rows: list[tuple[int, Routed, bool]] = []
        self._ids: set[str] = set()

    async def commit(self, outputs: Sequence[Routed], ack: Ack | None = None, *, intake: bool = False) -> list[Routed]:
        new = [r for r in outputs if r.message.id not in self._ids]
        for r in new:
            self._ids.add(r.message.id)
            self.rows.append((len(self.rows) + 1, r, intake))
        await asyncio.sleep(0)  # a commit is a hand-off: the worker yields as it does to the store
        return new

    async def backlog(self) -> Backlog:
        counts: dict[str, int] = {}
        for _, r, _ in self.rows:
            for c in r.consumers:
                counts[c] = counts.get(c, 0) + 1
        return Backlog(counts, len(self.rows))

    async def pending(self, consumer: str, watermark: int | None, *, after: int = 0,
                      intake_only: bool = False) -> AsyncIterator[tuple[int, Message]]:
        for seq, r, intake in list(self.rows):
            if after < seq and (watermark is None or seq <= watermark) and consumer in r.consumers \
                    and (intake or not intake_only):
                yield seq, r.message


class MemoryJoin:
    """The tierer's ``JoinState`` in memory."""

    def __init__(self) -> None:
        self._joins: dict[str, dict[str, Message]] = {}

    async def gather(self, key: str, item_id: str, item: Message, expected: int) -> Sequence[Message] | None:
        items = self._joins.setdefault(key, {})
        items.setdefault(item_id, item)
        await asyncio.sleep(0)
        return list(items.values()) if len(items) >= expected else None


class KeyedClient:
    """The simulator behind what the cache layer always does first: the request's cache key."""

    def __init__(self, inner: LLMClient) -> None:
        self.inner, self.calls = inner, 0

    async def complete(self, request: ChatRequest) -> Completion:
        self.calls += 1
        request.cache_key()
        return await self.inner.complete(request)


async def run(config_path: str, input_path: str, limit: int) -> tuple[dict, MemoryJournal]:
    """The figures, and the journal holding every message the flow made."""
    cfg = load_config(config_path)
    backend = next(b for b in cfg.backends.values() if b.type == "sim")
    client = KeyedClient(SimClient(SimSettings.from_mapping(backend.options)))
    journal = MemoryJournal()
    bus = MessageBus(journal)
    for sub in build_subscriptions({m: client for m in cfg.model_backends}, MemoryJoin(), cfg.flow,
                                   Templates.load(cfg.templates_dir), concurrency=cfg.concurrency,
                                   queue_size=cfg.queue_size):
        bus.subscribe(sub)
    await bus.publish([QuestionIngested(run_id="run-flow-cpu", question_id=q.id, question=q)
                       for q in QuestionSource(input_path, limit=limit)])
    cpu0 = time.process_time()
    await bus.run()
    cpu = time.process_time() - cpu0
    return {"tree": _TREE, "questions": limit, "llm_calls": client.calls, "messages": len(journal.rows),
            "cpu_s": cpu, "cpu_ms_per_call": cpu * 1e3 / client.calls}, journal


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--config", default=str(ROOT / "examples" / "sim.toml"))
    ap.add_argument("--input", default=str(PUBMEDQA))
    ap.add_argument("--out", default=None)
    ap.add_argument("--tree", default=None, help="import the code from this checkout (A/B against a base)")
    args = ap.parse_args()
    result, _ = asyncio.run(run(args.config, args.input, args.limit))
    print(json.dumps(result))
    if args.out:
        Path(args.out).write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
