"""Generator: nine reasoning paths per question (models × temperatures)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from bus import LETTERS, CoTGenerated, Message, Path, QuestionIngested, Stage

from .calls import failed, provenance, request, truncated
from .llm import ChatMessage, LLMClient, LLMError
from .parsing import compose_cot, split_thinking, stated_answer
from .prompts import Templates, generator_messages
from .settings import FlowSettings, Sampling


class Generator:
    def __init__(self, clients: dict[str, LLMClient], settings: FlowSettings, templates: Templates) -> None:
        self._clients = clients
        self._settings = settings
        self._templates = templates
        # The sample index is unique across all paths, so two generator names bound to one served
        # model at the same temperature still make distinct requests (and distinct cache keys).
        paths = [p for g in settings.generators for p in g.paths()]
        self._jobs = [(name, sampling, i) for i, (name, sampling) in enumerate(paths, 1)]

    async def handle(self, message: Message) -> Sequence[Message]:
        assert isinstance(message, QuestionIngested)
        prompt = generator_messages(self._templates, message.question)  # the same for every path
        async with asyncio.TaskGroup() as tg:
            tasks = [tg.create_task(self._path(message, prompt, name, sampling, i)) for name, sampling, i in self._jobs]
        return [t.result() for t in tasks]

    async def _path(self, message: QuestionIngested, prompt: tuple[ChatMessage, ...], name: str, sampling: Sampling,
                    index: int) -> Message:
        q = message.question
        req = request(
            sampling,
            prompt,
            sample=index,
            meta={"task": "generate", "gold": q.answer_letter, "letters": LETTERS[: len(q.options)], "question_id": q.id,
                  "path": name},
        )
        common = {"run_id": message.run_id, "question_id": q.id, "parent_id": message.id}
        try:
            completion = await self._clients[sampling.model].complete(req)
        except LLMError as exc:  # retried already by the LLM client: this path is lost, the question goes on
            return failed(message, Stage.GENERATE, exc, path=name)
        if completion.truncated:
            return truncated(message, Stage.GENERATE, completion, path=name)
        thinking, visible = split_thinking(completion.text)
        path = Path(
            name=name,
            cot=compose_cot(thinking, visible, self._settings.thinking),  # type: ignore[arg-type]
            thinking=thinking,
            stated_answer=stated_answer(visible, q.options),
            provenance=(provenance("generate", req, completion, self._templates.hash("generate")),),
        )
        return CoTGenerated(**common, question=q, path=path)
