"""Refiner, optimizer and regenerator: a CoT rewritten with the verifier's error reasons in hand.

- medium tier: the refiner rewrites each chosen path, fed only the Error reasons of the other paths;
- difficult tier with exactly one usable correct path: the stronger model *optimizes* that path, fed the
  Error reasons of the others (the paper: "we use GPT-o1 to optimize these paths");
- difficult tier otherwise: the stronger model writes ``regenerations`` CoTs from scratch.

When a rewritten CoT fails re-verification, the same agent tries once more (``retry``) with the new reason
added.  With ``[gates] self_contained``, a rewrite that refers to earlier attempts, other reasonings or "the
original" is sent back once with that instruction; if it still does, it is rejected (``Gate.SELF_CONTAINED``).
What every rewrite was given (the CoT before, the reasons) is kept on the path (``Path.rewrites``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from msgspec.structs import replace

from bus import (LETTERS, FailureKind, Gate, Judgement, Message, Path, Question, Ranked, Refined, RewriteInput,
                 Stage, StageFailed, TierAssigned, Verdict)
from bus.messages import Origin, Tier

from .calls import provenance, request, truncated
from .gates import SELF_CONTAINED_INSTRUCTION, self_reference
from .llm import ChatMessage, ChatRequest, Completion, LLMClient
from .parsing import split_thinking, stated_answer
from .prompts import Templates, optimizer_messages, refiner_messages, regenerator_messages
from .settings import FlowSettings, Sampling

_TEMPLATE: dict[str, str] = {"refined": "refine", "optimized": "optimize", "regenerated": "regenerate"}


def _stage(origin: Origin) -> Stage:
    return Stage.REFINE if origin == "refined" else Stage.REGENERATE


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
        """TierAssigned (difficult) → the one correct path optimized, or ``regenerations`` CoTs from scratch."""
        assert isinstance(message, TierAssigned)
        if len(message.correct) == 1:
            return [await self._rewrite(message, message.tier, message.correct[0], "optimized", 1,
                                        message.error_reasons)]
        seeds = [Path(name=f"regen_{k}", cot="", origin="regenerated")
                 for k in range(1, self._settings.regenerations + 1)]
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
        origin: Origin = message.path.origin if message.path.origin != "generated" else "refined"
        return [await self._rewrite(message, tier, message.path, origin, message.attempt + 1, reasons)]

    async def _rewrite(self, parent: Message, tier: Tier, source: Path, origin: Origin,
                       attempt: int, reasons: tuple[Judgement, ...]) -> Message:
        q = parent.question  # type: ignore[attr-defined]
        sampling, msgs = self._prompt(q, source, origin, reasons)
        # the task is the stage's (optimize and from scratch alike: what `reasonmed retry` re-issues by stage)
        req = request(sampling, msgs, sample=attempt,
                      meta={"task": _stage(origin), "gold": q.answer_letter, "letters": LETTERS[: len(q.options)],
                            "question_id": q.id, "path": source.name})
        common = {"run_id": parent.run_id, "question_id": q.id, "parent_id": parent.id,
                  "stage": _stage(origin), "path": source.name, "failed_type": type(parent).__name__}
        client = self._clients[sampling.model]
        template = self._templates.hash(_TEMPLATE[origin])
        completion = await client.complete(req)
        calls = [provenance(origin, req, completion, template)]
        resent = ""
        if not completion.truncated and self._settings.gates.self_contained:
            phrase = self_reference(split_thinking(completion.text)[1])
            if phrase is not None:
                resent = phrase
                req, completion = await self._resend(client, req, completion, phrase)
                calls.append(provenance(origin, req, completion, template))
                if not completion.truncated and (still := self_reference(split_thinking(completion.text)[1])):
                    return StageFailed(**common, gate=Gate.SELF_CONTAINED, kind=FailureKind.REJECTED,
                                       message=f"self_contained: the rewrite refers to {still!r} even after being"
                                               f" sent back once for referring to {phrase!r}")
        if completion.truncated:
            return truncated(parent, _stage(origin), completion, path=source.name)
        thinking, visible = split_thinking(completion.text)
        given = RewriteInput(attempt=attempt, origin=origin, source_path=source.name,
                             cot_before=source.cot if origin != "regenerated" else "", reasons=reasons, resent=resent)
        path = Path(
            name=source.name,
            cot=visible,
            thinking=thinking,
            stated_answer=stated_answer(visible, q.options),
            origin=origin,
            provenance=source.provenance + tuple(calls),
            rewrites=source.rewrites + (given,),
        )
        return Refined(run_id=parent.run_id, question_id=q.id, parent_id=parent.id, question=q, tier=tier, path=path,
                       source_path=source.name, attempt=attempt, error_reasons=reasons)

    @staticmethod
    async def _resend(client: LLMClient, req: ChatRequest, completion: Completion,
                      phrase: str) -> tuple[ChatRequest, Completion]:
        """Send the rewrite back once, in the same conversation, to be made self-contained."""
        again = replace(req, messages=req.messages + (
            ChatMessage("assistant", completion.text),
            ChatMessage("user", SELF_CONTAINED_INSTRUCTION.format(phrase=phrase)),
        ), meta={**req.meta, "resent": "self_contained"})
        return again, await client.complete(again)

    def _prompt(self, q: Question, source: Path, origin: Origin,
                reasons: tuple[Judgement, ...]) -> tuple[Sampling, tuple[ChatMessage, ...]]:
        if origin == "refined":
            return self._settings.refiner, refiner_messages(self._templates, q, source.cot, reasons)
        if origin == "optimized":
            return self._settings.regenerator, optimizer_messages(self._templates, q, source.cot, reasons)
        return self._settings.regenerator, regenerator_messages(self._templates, q, reasons)
