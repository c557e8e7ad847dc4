"""Quality ranker: keeps the best two correct paths of an easy or medium question."""

from __future__ import annotations

from collections.abc import Sequence

from bus import Message, Ranked, TierAssigned

from .calls import ask_json, provenance, request
from .llm import LLMClient
from .parsing import parse_ranking
from .prompts import RANKING_SCHEMA, Templates, ranker_messages
from .settings import FlowSettings


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
            schema=RANKING_SCHEMA,
            meta={"task": "rank", "paths": ",".join(names), "question_id": q.id},
        )
        (top2, reasons), completion, sent = await ask_json(
            self._client, req, lambda text: parse_ranking(text, names), corrections=self._settings.judge_corrections
        )
        by_name = {p.name: p for p in correct}
        return [Ranked(**common, chosen=tuple(by_name[n] for n in top2), reasons=reasons,
                       provenance=provenance("rank", sent, completion, self._templates.hash("rank")))]
