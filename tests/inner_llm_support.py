"""A scripted inner LLM client for the layers above a backend (retries, circuit, response cache)."""

from __future__ import annotations

import asyncio
import time

from msgspec.structs import replace

from agents.llm import ChatMessage, ChatRequest, Completion

NO_WAIT = dict(base_s=0.0, cap_s=0.0)
OK = Completion(text="The answer is B.", prompt_tokens=12, completion_tokens=5, endpoint="http://fake", backend="fake")


def request(content: str = "What makes insulin?", **kw) -> ChatRequest:
    return ChatRequest(model="m-1", messages=(ChatMessage("user", content),), temperature=0.7,
                       meta={"task": "generate"}, **kw)


class FakeLLM:
    """Answers from a script: each item is an exception to raise, a delay, or a Completion."""

    def __init__(self, *script, default: Completion | BaseException | None = OK) -> None:
        self.script = list(script)
        self.default = default
        self.calls: list[ChatRequest] = []
        self.times: list[float] = []

    async def complete(self, request: ChatRequest) -> Completion:
        self.calls.append(request)
        self.times.append(time.monotonic())
        item = self.script.pop(0) if self.script else self.default
        if isinstance(item, (int, float)) and not isinstance(item, bool):
            await asyncio.sleep(item)
            return OK
        if isinstance(item, BaseException):
            raise item
        assert isinstance(item, Completion)
        return replace(item, text=f"{item.text} #{len(self.calls)}") if item is OK else item
