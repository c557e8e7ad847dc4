"""Structured logging: context bound per handled message and per LLM call, the per-call events, redaction."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pytest
import structlog

from agents.llm import ChatMessage, ChatRequest, Completion, ServerError
from bus import Backoff, Message, MessageBus, Question, QuestionIngested, Stage, Subscription
from reasonmed_async.llm.cache import CachedClient
from reasonmed_async.logs.setup import CHATTY_LOGGERS, LEVEL_ENV, REDACTED, Redactor, configure, flush
from reasonmed_async.llm.retry import RetryingClient
from reasonmed_async.store.checkpoint import CheckpointStore

RUN = "run-log"
SECRET = "sk-live-0123456789abcdef"
PROMPT = "PRIVATE PROMPT about patient 42"
NO_WAIT = Backoff(attempts=3, base_s=0.0, cap_s=0.0)


@pytest.fixture
def log_file(tmp_path, restore_logging):
    """``configure`` on a file in tmp_path; the logging setup the test found is put back after it."""
    return tmp_path / "x.db.log"


def events(path: Path) -> list[dict]:
    flush()  # the file handler batches lines
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def ingested(i: int) -> QuestionIngested:
    q = Question(id=f"q{i}", stem=f"stem {i}?", options=("yes", "no"), answer=0, ordinal=i)
    return QuestionIngested(run_id=RUN, question_id=q.id, question=q)


async def test_bus_binds_run_question_agent_on_every_line_of_a_handler(log_file, monkeypatch):
    monkeypatch.setenv(LEVEL_ENV, "debug")  # handler.done is a debug event
    configure(log_file=log_file)
    agent_log = structlog.get_logger("agents.verifier")
    failed_once: set[str] = set()

    async def handler(message: Message) -> Sequence[Message]:
        agent_log.info("verifier.work", note="thinking")
        if message.question_id == "q1" and "q1" not in failed_once:
            failed_once.add("q1")
            raise RuntimeError("flaky")
        return []

    async with await CheckpointStore.open(log_file.parent / "x.db") as store:
        bus = MessageBus(store)
        bus.subscribe(Subscription("verifier", (QuestionIngested,), handler, backoff=NO_WAIT, stage=Stage.VERIFY,
                                   retry_on=(RuntimeError,)))
        await bus.publish([ingested(0), ingested(1)])
        await bus.run(until_idle=True)
    structlog.get_logger("after").info("outside.handler")

    lines = events(log_file)
    work = [e for e in lines if e["event"] == "verifier.work"]
    assert sorted(e["question"] for e in work) == ["q0", "q1", "q1"]
    assert all(e["run"] == RUN and e["agent"] == "verifier" and e["level"] == "info" for e in work)
    done = [e for e in lines if e["event"] == "handler.done"]
    assert sorted(e["question"] for e in done) == ["q0", "q1"]
    for e in done:
        assert (e["run"], e["agent"], e["ok"], e["outputs"]) == (RUN, "verifier", True, 0)
        assert isinstance(e["latency_s"], float) and e["latency_s"] >= 0
    [error] = [e for e in lines if e["event"] == "handler.error"]
    assert (error["run"], error["question"], error["agent"], error["attempt"]) == (RUN, "q1", "verifier", 1)
    [outside] = [e for e in lines if e["event"] == "outside.handler"]
    assert not {"run", "question", "agent"} & outside.keys()  # the context ends with the handling


class MemoryStore:
    def __init__(self) -> None:
        self.cache: dict[str, bytes] = {}

    async def cache_get(self, key: str) -> bytes | None:
        return self.cache.get(key)

    def cache_put(self, key, model, payload, stage, endpoint, prompt, completion) -> asyncio.Future[None]:
        self.cache[key] = payload
        return committed()

    def count_call(self, *args) -> asyncio.Future[None]:
        return committed()


def committed() -> asyncio.Future[None]:
    """A write-behind's future, as the store sets it once the write is committed (here at once)."""
    done = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


class FlakyBackend:
    """Fails its first call with a 503, logging a line of its own on every attempt."""

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: ChatRequest) -> Completion:
        self.calls += 1
        structlog.get_logger("backend").info("backend.attempt")
        if self.calls == 1:
            raise ServerError("503 from upstream", status=503)
        return Completion(text="the answer is B", prompt_tokens=120, completion_tokens=30, latency_s=0.5,
                          endpoint="http://gpu-1:8000/v1", backend="openai")


async def test_llm_call_retry_and_backend_lines_carry_model_stage_attempt(log_file):
    configure(log_file=log_file)
    client = CachedClient(RetryingClient(FlakyBackend(), NO_WAIT), MemoryStore())
    req = ChatRequest(model="qwen-72b", messages=(ChatMessage("user", PROMPT),), meta={"task": "verify"})
    with structlog.contextvars.bound_contextvars(run=RUN, question="q7", agent="verifier"):
        first = await client.complete(req)
        again = await client.complete(req)
    assert not first.cached and again.cached

    flush()
    text = log_file.read_text(encoding="utf-8")
    assert PROMPT not in text and "the answer is B" not in text  # never prompts nor completions
    lines = events(log_file)
    backend = [e for e in lines if e["event"] == "backend.attempt"]
    assert [(e["model"], e["stage"], e["attempt"], e["question"]) for e in backend] == [
        ("qwen-72b", "verify", 1, "q7"), ("qwen-72b", "verify", 2, "q7")]
    [retry] = [e for e in lines if e["event"] == "llm.retry"]
    assert (retry["model"], retry["stage"], retry["attempt"], retry["agent"]) == ("qwen-72b", "verify", 1, "verifier")
    assert retry["error"] == "ServerError: 503 from upstream"
    calls = [e for e in lines if e["event"] == "llm.call"]
    assert [e["cached"] for e in calls] == [False, True]
    for e in calls:
        assert (e["model"], e["stage"], e["endpoint"], e["prompt_tokens"], e["completion_tokens"]) == (
            "qwen-72b", "verify", "http://gpu-1:8000/v1", 120, 30)
        assert (e["run"], e["question"], e["agent"], e["level"]) == (RUN, "q7", "verifier", "info")
        assert isinstance(e["latency_s"], float)
    assert "attempt" not in calls[0]  # bound per attempt only, inside the retry layer


def leak(secret_prompt: str) -> None:
    local_with_prompt = secret_prompt  # noqa: F841 - a traceback with locals would show it
    raise RuntimeError(f"401 Unauthorized: key {SECRET} rejected")


def test_secrets_are_redacted_everywhere_and_tracebacks_have_no_locals(log_file, monkeypatch, capsys):
    monkeypatch.setenv("REASONMED_TEST_KEY", SECRET)
    configure(log_file=log_file, secret_envs=["REASONMED_TEST_KEY"])
    log = structlog.get_logger("test")
    log.info("nested", payload={"headers": [("Authorization", f"Bearer {SECRET}")], SECRET: 1},
             error=ValueError(f"bad key {SECRET}"))
    try:
        leak(PROMPT)
    except RuntimeError:
        log.exception("call.crashed")
    logging.getLogger("thirdparty").error("foreign record with %s", SECRET)
    with structlog.contextvars.bound_contextvars(api_key=SECRET):
        log.warning("bound")

    flush()
    text = log_file.read_text(encoding="utf-8")
    console = capsys.readouterr().err
    for out in (text, console):
        assert SECRET not in out
        assert PROMPT not in out
    assert text.count(REDACTED) >= 6 and REDACTED in console
    by_event = {e["event"]: e for e in events(log_file)}
    assert by_event["nested"]["payload"] == {"headers": [["Authorization", f"Bearer {REDACTED}"]], REDACTED: 1}
    assert by_event["nested"]["error"] == f"ValueError('bad key {REDACTED}')"
    [exc] = by_event["call.crashed"]["exception"]
    assert exc["exc_value"] == f"401 Unauthorized: key {REDACTED} rejected"
    assert all("locals" not in frame for frame in exc["frames"])
    assert by_event[f"foreign record with {REDACTED}"]["level"] == "error"
    assert by_event["bound"]["api_key"] == REDACTED


def test_per_call_events_go_to_the_file_not_the_console(log_file, capsys):
    configure(log_file=log_file, file_level=logging.DEBUG)
    log = structlog.get_logger("test")
    log.info("llm.call", model="m")
    log.debug("handler.done", agent="a")
    log.info("run.started", run=RUN)
    console = capsys.readouterr().err
    assert "run.started" in console and "llm.call" not in console and "handler.done" not in console
    assert [e["event"] for e in events(log_file)] == ["llm.call", "handler.done", "run.started"]


@pytest.mark.parametrize(("env", "expected"), [
    (None, ["llm.call", "handler.error"]),
    ("debug", ["handler.done", "llm.call", "handler.error"]),
    ("WARNING", ["handler.error"]),
    ("nonsense", ["llm.call", "handler.error"]),  # info
])
def test_file_level_from_the_environment(log_file, monkeypatch, env, expected):
    if env is None:
        monkeypatch.delenv(LEVEL_ENV, raising=False)
    else:
        monkeypatch.setenv(LEVEL_ENV, env)
    configure(log_file=log_file)
    log = structlog.get_logger("test")
    log.debug("handler.done")
    log.info("llm.call")
    log.warning("handler.error")
    assert [e["event"] for e in events(log_file)] == expected


@pytest.mark.parametrize(("value", "expected"), [
    (f"x{SECRET}y", f"x{REDACTED}y"),
    ({"a": {"b": [SECRET, 3]}}, {"a": {"b": [REDACTED, 3]}}),
    ((SECRET, None, 1.5, True), (REDACTED, None, 1.5, True)),
    ({SECRET}, {REDACTED}),
    ({SECRET: "v"}, {REDACTED: "v"}),
    (KeyError(SECRET), f"KeyError('{REDACTED}')"),
    (KeyError("harmless"), KeyError("harmless")),  # left as it is (compared by repr below)
    (f"{SECRET}-extended", f"{REDACTED}-extended"),
])
def test_redactor_scrub(value, expected):
    scrubbed = Redactor([SECRET, "", "abc"]).scrub(value)  # "" and short ones are never secrets
    if isinstance(expected, BaseException):
        assert scrubbed is value
    else:
        assert scrubbed == expected
