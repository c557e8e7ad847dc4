"""Summarizer: condenses each final CoT into the short response; assembler: the exportable record."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bus import (FailureKind, Gate, Message, Path, Question, Ranked, RecordReady, Refined, Stage, StageFailed,
                 Summarized, Verdict)

from .calls import provenance, request
from .gates import GateSettings, cot_warnings
from .llm import LLMClient
from .prompts import Templates, summarizer_messages
from .settings import FlowSettings


def final_paths(message: Message) -> tuple[Path, ...]:
    if isinstance(message, Ranked):
        return message.chosen
    if isinstance(message, Verdict | Refined):
        return (message.path,)
    raise TypeError(f"summarizer cannot take {type(message).__name__}")


class Summarizer:
    def __init__(self, clients: dict[str, LLMClient], settings: FlowSettings, templates: Templates) -> None:
        self._client = clients[settings.summarizer.model]
        self._settings = settings
        self._templates = templates

    async def handle(self, message: Message) -> Sequence[Message]:
        q: Question = message.question  # type: ignore[attr-defined]
        reason = message.reason if isinstance(message, Verdict) else ""
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(self._one(message, q, p, reason)) for p in final_paths(message)]
        return [t.result() for t in tasks]

    async def _one(self, message: Message, q: Question, path: Path, reason: str) -> Message:
        req = request(self._settings.summarizer, summarizer_messages(self._templates, q, path.cot),
                      sample=0, meta={"task": "summarize", "stated": path.stated_answer or "", "question_id": q.id,
                            "path": path.name})
        completion = await self._client.complete(req)
        return Summarized(run_id=message.run_id, question_id=q.id, parent_id=message.id, question=q,
                          tier=message.tier, path=path, response=completion.text.strip(),  # type: ignore[attr-defined]
                          provenance=provenance("summarize", req, completion, self._templates.hash("summarize")),
                          verdict_reason=reason)


class Assembler:
    """Summarized → RecordReady, with a record id stable across runs (``<question>/<path>``), once the CoT
    passes the export gates: with ``require_answer_agreement`` a CoT whose stated answer is not the gold
    answer is rejected (``Gate.ANSWER_AGREEMENT``) whatever the verifier said.  Length and step structure
    are warnings on the record."""

    def __init__(self, gates: GateSettings) -> None:
        self._gates = gates

    async def handle(self, message: Message) -> Sequence[Message]:
        assert isinstance(message, Summarized)
        common = {"run_id": message.run_id, "question_id": message.question_id, "parent_id": message.id}
        q, path = message.question, message.path
        if self._gates.require_answer_agreement and path.stated_answer != q.answer_letter:
            said = f"states {path.stated_answer}" if path.stated_answer else "states no answer"
            return [StageFailed(**common, stage=Stage.ASSEMBLE, path=path.name, failed_type="Summarized",
                                gate=Gate.ANSWER_AGREEMENT, kind=FailureKind.REJECTED,
                                message=f"answer_agreement: the CoT {said}, the gold answer is {q.answer_letter}")]
        steps, warnings = cot_warnings(path.cot, self._gates)
        return [RecordReady(**common, question=q, tier=message.tier, path=path, response=message.response,
                            response_provenance=message.provenance, record_id=f"{message.question_id}/{path.name}",
                            steps=steps, warnings=warnings)]

