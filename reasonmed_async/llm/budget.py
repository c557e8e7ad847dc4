"""The spend cap (``[budget] max_cost_usd`` / ``max_tokens``): the run stops, resumably, once spent reaches it.

``SpendCap`` starts from what the database's ``calls`` table says was already
spent (a resume counts the earlier runs' calls) and adds every call the cache
did not answer.  ``CappedClient`` wraps the client that really calls: once the
cap is reached it trips (``tripped`` is set: the CLI stops intake and the bus
drains, every message left pending) and holds any further call until the drain
cancels it, so nothing is spent past the cap but the calls already in flight.
``reasonmed resume --max-cost-usd N`` raises the cap and continues.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field

from agents.llm import ChatRequest, Completion, LLMClient


@dataclass
class SpendCap:
    max_cost_usd: float | None
    max_tokens: int | None
    cost_usd: float = 0.0
    tokens: int = 0
    tripped: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def reached(self) -> bool:
        return ((self.max_cost_usd is not None and self.cost_usd >= self.max_cost_usd)
                or (self.max_tokens is not None and self.tokens >= self.max_tokens))

    def add(self, cost_usd: float, tokens: int) -> None:
        self.cost_usd += cost_usd
        self.tokens += tokens
        if self.reached:
            self.tripped.set()

    def describe(self) -> str:
        limits = []
        if self.max_cost_usd is not None:
            limits.append(f"${self.cost_usd:,.4f} spent of max_cost_usd ${self.max_cost_usd:,.4f}")
        if self.max_tokens is not None:
            limits.append(f"{self.tokens:,} tokens of max_tokens {self.max_tokens:,}")
        return "spend cap reached ([budget]): " + ", ".join(limits)


class CappedClient:
    def __init__(self, inner: LLMClient, cap: SpendCap, cost: Callable[[str, int, int], float]) -> None:
        self._inner = inner
        self._cap = cap
        self._cost = cost

    async def complete(self, request: ChatRequest) -> Completion:
        if self._cap.reached:
            self._cap.tripped.set()
            await asyncio.Event().wait()  # held until the drain cancels it: the message stays pending
        completion = await self._inner.complete(request)
        self._cap.add(self._cost(request.model, completion.prompt_tokens, completion.completion_tokens),
                      completion.prompt_tokens + completion.completion_tokens)
        return completion
