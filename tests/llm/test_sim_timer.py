"""The sim's zero-latency answers and the retry layer's timer: none where no timer could fire."""

from __future__ import annotations

import pytest

from agents.llm import ChatMessage, ChatRequest, LLMTimeout
from bus import Backoff
from reasonmed_async.llm import retry
from reasonmed_async.llm.sim import SimClient, SimSettings



def gen() -> ChatRequest:
    return ChatRequest(model="sim-qwen", messages=(ChatMessage("user", "Question q1: which option? A) a B) b"),),
                       temperature=0.7, meta={"task": "generate", "gold": "B", "letters": "AB", "question_id": "q1"})


def judge(task: str, body: str, **meta: str) -> ChatRequest:
    return ChatRequest(model="sim-qwen", messages=(ChatMessage("user", body),), temperature=1.0,
                       meta={"task": task, **meta})


@pytest.mark.parametrize("task", ["generate", "verify"])
def test_at_zero_latency_an_answer_never_waits_on_the_event_loop(task):
    sim = SimClient(SimSettings())
    assert sim.answers_at_once
    req = gen() if task == "generate" else judge("verify", "Path: ... Final answer: B", gold="B", stated="B")
    step = sim.complete(req)
    with pytest.raises(StopIteration) as done:  # the coroutine's first step is its last: it never suspends
        step.send(None)
    assert done.value.value.text


async def test_the_retry_layer_times_a_sim_with_latency_and_sets_no_timer_at_zero(monkeypatch):
    timers: list[float] = []
    real = retry.asyncio.timeout
    monkeypatch.setattr(retry.asyncio, "timeout", lambda delay: timers.append(delay) or real(delay))
    no_wait = Backoff(attempts=1, base_s=0.0, cap_s=0.0)

    at_once = retry.RetryingClient(SimClient(SimSettings()), no_wait, timeout_s=0.05)
    assert (await at_once.complete(gen())).text and timers == []

    slow = SimClient(SimSettings(latency_ms=60_000.0))  # 30-90 s per call
    assert not slow.answers_at_once
    with pytest.raises(LLMTimeout, match="no answer within 0.05 s"):
        await retry.RetryingClient(slow, no_wait, timeout_s=0.05).complete(gen())
    assert timers == [0.05]
