"""Shared helpers of the bus tests: a tiny two-stage flow over a real SQLite journal."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Sequence


from bus import (
    Backoff,
    CoTGenerated,
    Message,
    MessageBus,
    Path,
    Provenance,
    Question,
    QuestionIngested,
    RecordReady,
    Subscription,
    Verdict,
)
from reasonmed_async.store.checkpoint import CheckpointStore

RUN = "run-b"
PROV = Provenance(role="assemble", model="m", backend="sim")
NO_WAIT = Backoff(attempts=3, base_s=0.0, cap_s=0.0)


def question(i: int) -> Question:
    return Question(id=f"q{i:03d}", stem=f"stem {i}?", options=("yes", "no", "maybe"), answer=i % 3, ordinal=i)


def ingested(i: int) -> QuestionIngested:
    return QuestionIngested(run_id=RUN, question_id=question(i).id, question=question(i))


def new(result) -> list[Message]:
    """The messages a journal commit reported new (it returns them routed)."""
    return [getattr(r, "message", r) for r in result]


class Flow:
    """gen: QuestionIngested → ``paths`` CoTGenerated; verify: CoTGenerated → Verdict + RecordReady.

    Counts handler invocations per (subscription, message id): started, completed, cancelled."""

    def __init__(self, paths: int = 3, *, delay_s: float = 0.0, verify_delay_s: float = 0.0) -> None:
        self.paths = paths
        self.delay_s = delay_s
        self.verify_delay_s = verify_delay_s
        self.started: Counter[tuple[str, str]] = Counter()
        self.completed: Counter[tuple[str, str]] = Counter()
        self.cancelled: Counter[tuple[str, str]] = Counter()
        self.on_verify = None  # optional hook(message) called at the start of verify

    async def _track(self, name: str, message: Message, delay: float, make):
        key = (name, message.id)
        self.started[key] += 1
        try:
            if delay:
                await asyncio.sleep(delay)
            out = make()
        except asyncio.CancelledError:
            self.cancelled[key] += 1
            raise
        self.completed[key] += 1
        return out

    async def gen(self, message: Message) -> Sequence[Message]:
        assert isinstance(message, QuestionIngested)
        q = message.question
        return await self._track("gen", message, self.delay_s, lambda: [
            CoTGenerated(run_id=message.run_id, question_id=q.id, parent_id=message.id, question=q,
                         path=Path(name=f"p{k}", cot=f"cot {q.id} p{k}", stated_answer="A"))
            for k in range(self.paths)
        ])

    async def verify(self, message: Message) -> Sequence[Message]:
        assert isinstance(message, CoTGenerated)
        if self.on_verify is not None:
            self.on_verify(message)
        q = message.question

        def make():
            verdict = Verdict(run_id=message.run_id, question_id=q.id, parent_id=message.id, question=q,
                              path=message.path, verdict="Correct" if q.answer == 0 else "Error", reason="r")
            record = RecordReady(run_id=message.run_id, question_id=q.id, parent_id=message.id, question=q,
                                 tier="easy", path=message.path, response="A", response_provenance=PROV,
                                 record_id=f"{q.id}/{message.path.name}")
            return [verdict, record]

        return await self._track("verify", message, self.verify_delay_s, make)

    def subscriptions(self, *, concurrency: int = 2, queue_size: int = 8) -> list[Subscription]:
        return [
            Subscription("gen", (QuestionIngested,), self.gen, concurrency=concurrency, queue_size=queue_size,
                         backoff=NO_WAIT),
            Subscription("verify", (CoTGenerated,), self.verify, concurrency=concurrency, queue_size=queue_size,
                         backoff=NO_WAIT),
        ]


def make_bus(store: CheckpointStore, subs: Sequence[Subscription]) -> MessageBus:
    bus = MessageBus(store)
    for sub in subs:
        bus.subscribe(sub)
    return bus


async def intake(store: CheckpointStore, bus: MessageBus, n: int) -> list[QuestionIngested]:
    """What ``create_run`` does: the first messages go into the journal, routed, before the bus runs."""
    messages = [ingested(i) for i in range(n)]
    assert new(await store.commit([bus.route(m) for m in messages])) == messages
    return messages


async def snapshot(store: CheckpointStore) -> dict[str, list[tuple]]:
    return {
        "messages": await store.query("SELECT seq, id, type, label, parent_id, payload FROM messages ORDER BY seq"),
        "deliveries": await store.query("SELECT d.message_seq, m.id, d.consumer, d.state FROM deliveries d JOIN messages m ON m.seq = d.message_seq ORDER BY d.message_seq, d.consumer"),
        "records": await store.query("SELECT * FROM records ORDER BY record_id"),
    }


async def states(store: CheckpointStore) -> Counter[tuple[str, str]]:
    return Counter(dict(((c, s), n) for c, s, n in await store.query(
        "SELECT consumer, state, COUNT(*) FROM deliveries GROUP BY consumer, state")))


async def run(bus: MessageBus, **kw) -> None:
    await asyncio.wait_for(bus.run(**kw), timeout=20)
