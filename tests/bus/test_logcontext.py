"""The log context (``bus/logcontext.py``): bound per task, undone by a reset, merged into every line
beside what structlog's own API binds, never over an event's own keys."""

from __future__ import annotations

import asyncio

import structlog

from bus.logcontext import bind_context, bound_context, merge_context, reset_context


def test_a_reset_restores_the_keys_bound_before() -> None:
    async def main() -> None:
        bind_context(run="run-1", question="q1", agent="verifier")
        token = bind_context(model="qwen", stage="verify", attempt=1)
        assert dict(bound_context()) == {"run": "run-1", "question": "q1", "agent": "verifier", "model": "qwen",
                                         "stage": "verify", "attempt": 1}
        reset_context(token)
        assert dict(bound_context()) == {"run": "run-1", "question": "q1", "agent": "verifier"}

    asyncio.run(main())


def test_each_task_keeps_its_own_keys() -> None:
    seen: dict[str, dict] = {}

    async def worker(name: str, question: str, started: asyncio.Event, other: asyncio.Event) -> None:
        bind_context(agent=name, question=question)
        started.set()
        await other.wait()  # the other task has bound its own keys meanwhile
        seen[name] = dict(bound_context())

    async def main() -> None:
        a, b = asyncio.Event(), asyncio.Event()
        bind_context(run="run-1")
        await asyncio.gather(worker("generator", "q1", a, b), worker("verifier", "q2", b, a))
        assert dict(bound_context()) == {"run": "run-1"}  # the tasks' binds stayed in their own contexts

    asyncio.run(main())
    assert seen == {"generator": {"run": "run-1", "agent": "generator", "question": "q1"},
                    "verifier": {"run": "run-1", "agent": "verifier", "question": "q2"}}


def test_a_line_gets_both_kinds_of_bound_keys_and_keeps_its_own() -> None:
    async def main() -> dict:
        bind_context(run="run-1", stage="verify")
        with structlog.contextvars.bound_contextvars(request_id="rm-1", run="other"):
            return merge_context(None, "info", {"event": "llm.call", "stage": "generate"})

    event = asyncio.run(main())
    assert event == {"event": "llm.call", "stage": "generate", "run": "run-1", "request_id": "rm-1"}
    assert list(event) == ["event", "stage", "run", "request_id"]  # the event's keys, ours, then structlog's
