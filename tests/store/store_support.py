"""Messages and queries shared by the checkpoint store's tests (tests/store/test_store.py, test_join.py)."""

from __future__ import annotations

from bus import CoTGenerated, Path, Provenance, Question, QuestionIngested, Routed
from reasonmed_async.store.checkpoint import CheckpointStore

RUN = "run-s"
PROV = Provenance(role="summarize", model="m", backend="sim")


def question(i: int) -> Question:
    return Question(id=f"q{i}", stem=f"stem {i}?", options=("yes", "no", "maybe"), answer=i % 3, ordinal=i)


def ingested(i: int) -> QuestionIngested:
    return QuestionIngested(run_id=RUN, question_id=f"q{i}", question=question(i))


def cot(i: int, path: str = "qwen_1") -> CoTGenerated:
    return CoTGenerated(run_id=RUN, question_id=f"q{i}", parent_id=ingested(i).id, question=question(i),
                        path=Path(name=path, cot=f"cot {i} {path}"))


def routed(message, *consumers: str) -> Routed:
    return Routed(message, consumers)


def new(result) -> list:
    """The messages a commit reported new (the journal returns them routed)."""
    return [getattr(r, "message", r) for r in result]


async def rows(store: CheckpointStore, sql: str, params=()) -> list[tuple]:
    return await store.query(sql, params)


async def count(store: CheckpointStore, table: str) -> int:
    return (await rows(store, f"SELECT COUNT(*) FROM {table}"))[0][0]
