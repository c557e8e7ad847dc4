"""Quality ranker: keeps the best two correct paths of an easy or medium question.

It cannot lose a question: when its answers still do not parse after the bounded
corrections (or are cut at the token limit), the question keeps the first two correct
paths in path order, recorded as ``ranker="fallback"`` with the raw answers.  A call
that fails outright (the server gave up) is a failure of the stage, as for every agent.
"""

from __future__ import annotations

from collections.abc import Sequence

import structlog

from bus import Message, Ranked, TierAssigned

from .calls import JudgeFailed, ask_json, provenance, request
from .llm import LLMClient
from .parsing import parse_ranking
from .prompts import Templates, ranker_messages
from .schemas import ranking_schema
from .settings import FlowSettings

log = structlog.get_logger("agents.ranker")


class Ranker:
    def __init__(self, clients: dict[str, LLMClient], settings: FlowSettings, templates: Templates) -> None:
        self._client = clients[settings.ranker.model]
        self._settings = settings
        self._templates = templates

    async def handle(self, message: Message) -> Sequence[Message]:
        assert isinstance(message, TierAssigned)
        q, correct = message.question, message.correct
        common = {"run_id": message.run_id, "question_id": q.id, "parent_id": message.id,
                  "question": q, "tier": message.tier, "error_reasons": message.error_reasons}
        if len(correct) <= 2:
            return [Ranked(**common, chosen=correct, reasons={}, called=False)]
        names = [p.name for p in correct]
        req = request(
            self._settings.ranker,
            ranker_messages(self._templates, q, correct),
            schema=ranking_schema(names),
            meta={"task": "rank", "paths": ",".join(names), "question_id": q.id},
        )
        answers: list[str] = []
        instructions = self._templates.text("rank")

        def parse(text: str) -> tuple[tuple[str, str], dict[str, str]]:
            answers.append(text)
            return parse_ranking(text, names, instructions)

        try:
            (top2, reasons), completion, sent = await ask_json(self._client, req, parse,
                                                   corrections=self._settings.judge_corrections)
        except JudgeFailed as exc:
            log.warning("ranker.fallback", question_id=q.id, reason=str(exc), kept=names[:2])
            return [Ranked(**common, chosen=correct[:2], reasons={}, ranker="fallback",
                           raw=tuple(answers) or (str(exc),))]
        by_name = {p.name: p for p in correct}
        return [Ranked(**common, chosen=tuple(by_name[n] for n in top2), reasons=reasons,
                       provenance=provenance("rank", sent, completion, self._templates.hash("rank")))]
