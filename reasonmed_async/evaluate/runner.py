"""Asking the model every benchmark question through the pipeline's client stack.

The clients are the run's own: retries with backoff (transient errors cost waiting, never a
result), the backend's rate limits, and the response cache in the database, where each answer is
stored the moment it returns, so a rerun after a crash or a kill pays only for what had not come
back.  Nothing but the cache is written: the scores are recomputed from the stored answers.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from agents.calls import request
from agents.llm import LLMClient, LLMError
from agents.settings import Sampling
from bus import LETTERS

from reasonmed_async.evaluate import protocol
from reasonmed_async.evaluate.benchmarks import Item

TASK = "answer"


@dataclass(frozen=True)
class Answer:
    item: Item
    prompt: str
    text: str | None  # None: the call failed for good
    strict: str | None
    lenient: str | None
    truncated: bool = False
    cached: bool = False
    error: str = ""
    completion_tokens: int = 0

    @property
    def gold(self) -> str:
        return self.item.question.answer_letter


async def ask(client: LLMClient, sampling: Sampling, item: Item) -> Answer:
    q = item.question
    messages = protocol.messages(q)
    req = request(sampling, messages, meta={"task": TASK, "gold": q.answer_letter,
                                            "letters": LETTERS[: len(q.options)], "question_id": q.id})
    try:
        c = await client.complete(req)
    except LLMError as exc:
        return Answer(item, messages[0].content, None, None, None, error=f"{type(exc).__name__}: {exc}")
    return Answer(item, messages[0].content, c.text, protocol.strict(c.text, len(q.options)),
                  protocol.lenient(c.text, q.options), truncated=c.truncated, cached=c.cached,
                  completion_tokens=c.completion_tokens)


async def ask_all(client: LLMClient, sampling: Sampling, items: list[Item], *, concurrency: int) -> list[Answer]:
    """Every item's answer, in the items' order; at most ``concurrency`` calls at once."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(item: Item) -> Answer:
        async with gate:
            return await ask(client, sampling, item)

    async with asyncio.TaskGroup() as tg:
        tasks = [tg.create_task(one(item)) for item in items]
    return [t.result() for t in tasks]
