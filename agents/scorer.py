"""Score evaluator: rates what a model is trained on 1–10 (to measure quality, never to filter).

As in the paper's public code, the scorer is not shown the gold answer (``[stages.scorer] show_answer``,
off by default), and what it scores is the ReasonMed SFT output of a record: ``<think>CoT</think>response``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from bus import Message, RecordReady, Scored

from .calls import ask_json, provenance, request
from .llm import LLMClient
from .parsing import parse_score
from .prompts import SCORE_SCHEMA, Templates, check_score_template, scorer_messages
from .settings import FlowSettings, Sampling


def reasonmed_output(cot: str, response: str) -> str:
    """The ReasonMed SFT set's output for a record: the CoT as thinking, then the response."""
    return f"<think>{cot}</think>{response}"


def sampled(record_id: str, rate: float) -> bool:
    """A deterministic sample: the same records are picked on every run and resume."""
    if rate >= 1.0:
        return True
    bucket = int.from_bytes(hashlib.blake2b(record_id.encode(), digest_size=8).digest(), "big") / 2**64
    return bucket < rate


class Scorer:
    def __init__(self, clients: dict[str, LLMClient], settings: FlowSettings, templates: Templates) -> None:
        if settings.scorer is None:
            raise ValueError("the scorer stage needs [stages.scorer] settings")
        self._sampling: Sampling = settings.scorer
        self._client = clients[settings.scorer.model]
        self._settings = settings
        self._templates = templates
        check_score_template(templates, settings.score_show_answer)

    def accepts(self, message: Message) -> bool:
        return isinstance(message, RecordReady) and sampled(message.record_id, self._settings.score_rate)

    async def handle(self, message: Message) -> Sequence[Message]:
        assert isinstance(message, RecordReady)
        q = message.question
        text = reasonmed_output(message.path.cot, message.response)
        shown = self._settings.score_show_answer
        req = request(self._sampling, scorer_messages(self._templates, q, text, show_answer=shown),
                      schema=SCORE_SCHEMA, meta={"task": "score", "question_id": q.id})
        (score, justification), completion, sent = await ask_json(
            self._client, req, parse_score, corrections=self._settings.judge_corrections
        )
        return [Scored(run_id=message.run_id, question_id=q.id, parent_id=message.id, target_id=message.record_id,
                       score=score, justification=justification,
                       provenance=provenance("score", sent, completion, self._templates.hash("score")))]
