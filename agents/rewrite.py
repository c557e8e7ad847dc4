"""Refiner and regenerator: a CoT rewritten with the verifier's error reasons in hand.

The refiner (medium tier) rewrites each chosen path, fed only the Error reasons
of the other paths; the regenerator (difficult tier) has a stronger model write
a new CoT from scratch.  When a rewritten CoT fails re-verification, the same
agent tries once more (``retry``) with the new reason added.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bus import LETTERS, Judgement, Message, Path, Question, Ranked, Refined, StageFailed, TierAssigned, Verdict
from bus.messages import Origin, Tier

from .calls import provenance, request
from .llm import ChatMessage, LLMClient
from .parsing import split_thinking, stated_answer
from .prompts import Templates, refiner_messages, regenerator_messages
from .settings import FlowSettings, Sampling


class Rewriter:
    def __init__(self, clients: dict[str, LLMClient], settings: FlowSettings, templates: Templates) -> None:
        self._clients = clients
        self._settings = settings
        self._templates = templates

    async def refine(self, message: Message) -> Sequence[Message]:
        """Ranked (medium) → one Refined per chosen path."""
        assert isinstance(message, Ranked)
        async with asyncio.TaskGroup() as tg:
            tasks = [
                tg.create_task(self._rewrite(message, message.tier, p, "refined", 1,
                                             tuple(j for j in message.error_reasons if j.path != p.name)))
                for p in message.chosen
            ]
        return [t.result() for t in tasks]

    async def regenerate(self, message: Message) -> Sequence[Message]:
        """TierAssigned (difficult) → ``regenerations`` new CoTs from the strong model."""
        assert isinstance(message, TierAssigned)
        seeds = [Path(name=f"regen_{k}", cot="", origin="regenerated") for k in range(1, self._settings.regenerations + 1)]
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(self._rewrite(message, message.tier, p, "regenerated", 1, message.error_reasons))
                     for p in seeds]
        return [t.result() for t in tasks]

    async def retry(self, message: Message) -> Sequence[Message]:
        """Verdict (Error) on a rewritten CoT → one more try with that reason added."""
        assert isinstance(message, Verdict)
        reasons = message.error_reasons + (Judgement(path=f"{message.path.name} (attempt {message.attempt})",
                                                     verdict="Error", reason=message.reason),)
        tier: Tier = message.tier  # type: ignore[assignment]
        origin: Origin = "regenerated" if message.path.origin == "regenerated" else "refined"
        return [await self._rewrite(message, tier, message.path, origin, message.attempt + 1, reasons)]

    async def _rewrite(self, parent: Message, tier: Tier, source: Path, origin: Origin,
                       attempt: int, reasons: tuple[Judgement, ...]) -> Message:
        q = parent.question  # type: ignore[attr-defined]
        sampling, template, msgs = self._prompt(q, source, origin, reasons)
        req = request(sampling, msgs, sample=attempt,
                      meta={"task": "refine" if origin == "refined" else "regenerate", "gold": q.answer_letter,
                            "letters": LETTERS[: len(q.options)], "question_id": q.id, "path": source.name})
        common = {"run_id": parent.run_id, "question_id": q.id, "parent_id": parent.id}
        completion = await self._clients[sampling.model].complete(req)
        if completion.truncated:
            return StageFailed(**common, stage="refine" if origin == "refined" else "regenerate", path=source.name,
                               failed_type=type(parent).__name__,
                               reason=f"truncated: finish_reason=length after {completion.completion_tokens} tokens")
        thinking, visible = split_thinking(completion.text)
        path = Path(
            name=source.name,
            cot=visible,
            thinking=thinking,
            stated_answer=stated_answer(visible, q.options),
            origin=origin,
            provenance=source.provenance + (provenance(origin, req, completion, self._templates.hash(template)),),
        )
        return Refined(**common, question=q, tier=tier, path=path, source_path=source.name,
                       attempt=attempt, error_reasons=reasons)

    def _prompt(self, q: Question, source: Path, origin: Origin,
                reasons: tuple[Judgement, ...]) -> tuple[Sampling, str, tuple[ChatMessage, ...]]:
        if origin == "refined":
            return self._settings.refiner, "refine", refiner_messages(self._templates, q, source.cot, reasons)
        return self._settings.regenerator, "regenerate", regenerator_messages(self._templates, q, reasons)
