"""What agents need from the world, as Protocols the application implements."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from bus import Message

from .llm import LLMClient

__all__ = ["JoinState", "LLMClient"]


class JoinState(Protocol):
    """Durable gathering of the items of a join (the tierer's verdicts of one question)."""

    async def gather(self, key: str, item_id: str, item: Message, expected: int) -> Sequence[Message] | None:
        """Record ``item`` once per ``item_id``; return every item once ``expected`` are there."""
        ...
