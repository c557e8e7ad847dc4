"""Verifier: judges a path (first pass) or a refined CoT (re-verification)."""

from __future__ import annotations

from collections.abc import Sequence

from bus import CoTGenerated, Message, Refined, Stage, Verdict

from .calls import JudgeFailed, ask_json, failed, provenance, request
from .llm import LLMClient, LLMError
from .parsing import parse_verdict
from .prompts import VERDICT_SCHEMA, Templates, verifier_messages
from .settings import FlowSettings


class Verifier:
    def __init__(self, clients: dict[str, LLMClient], settings: FlowSettings, templates: Templates) -> None:
        self._client = clients[settings.verifier.model]
        self._settings = settings
        self._templates = templates

    async def handle(self, message: Message) -> Sequence[Message]:
        assert isinstance(message, CoTGenerated | Refined)
        q, path = message.question, message.path
        attempt = message.attempt if isinstance(message, Refined) else 0
        req = request(
            self._settings.verifier,
            verifier_messages(self._templates, q, path.cot),
            schema=VERDICT_SCHEMA,
            meta={"task": "verify", "gold": q.answer_letter, "stated": path.stated_answer or "", "question_id": q.id,
                  "path": path.name},
        )
        common = {"run_id": message.run_id, "question_id": q.id, "parent_id": message.id}
        try:
            (label, reason), completion, sent = await ask_json(
                self._client, req, parse_verdict, corrections=self._settings.judge_corrections
            )
        except (LLMError, JudgeFailed) as exc:
            return [failed(message, Stage.VERIFY if attempt == 0 else Stage.REVERIFY, exc, path=path.name)]
        extra = {"tier": message.tier, "error_reasons": message.error_reasons} if isinstance(message, Refined) else {}
        judge = provenance("verify", sent, completion, self._templates.hash("verify"))
        return [Verdict(**common, question=q, path=path, verdict=label, reason=reason, attempt=attempt, judge=judge,
                        **extra)]
