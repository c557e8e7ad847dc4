"""The in-process vLLM backend on a tiny random Llama: sampling, n, seeds, JSON schema, length, concurrency,
cancellation, error translation, options, and the generator / verifier stages running through it."""

from __future__ import annotations

import asyncio
import json
import pathlib
import sys

import pytest
from tiny_model import SERVED

from agents.generator import Generator
from agents.llm import BadRequest, ChatMessage, ChatRequest
from agents.prompts import VERDICT_SCHEMA, Templates
from agents.settings import FlowSettings, GeneratorModel, Sampling
from agents.verifier import Verifier
from bus import CoTGenerated, FailureKind, Path, Question, QuestionIngested, Stage, StageFailed, Verdict
import reasonmed_async.llm
from reasonmed_async.config import BackendConfig, ConfigError, parse_config
from reasonmed_async.llm.vllm_inprocess import VLLMBackend, VLLMSettings, open_vllm_backend

pytestmark = pytest.mark.asyncio(loop_scope="session")
ROOT = pathlib.Path(__file__).resolve().parents[2]

QUESTION = Question(id="q-vllm-1", stem="A 24-year-old woman has heat intolerance and weight loss. Diagnosis?",
                    options=("Hashimoto thyroiditis", "Graves disease", "Toxic multinodular goiter"), answer=1)


def ask(**kw: object) -> ChatRequest:
    messages = (ChatMessage("system", "You are a medical expert."),
                ChatMessage("user", "Which drug treats anaphylaxis first?\nA. adrenaline\nB. aspirin"))
    return ChatRequest(model=SERVED, messages=messages, **kw)  # type: ignore[arg-type]


async def test_completion_counts_tokens_and_stops_at_max_tokens(engine: VLLMBackend) -> None:
    done = await engine.complete(ask(max_tokens=7, temperature=1.0, seed=3))
    assert done.finish_reason == "length" and done.truncated and done.completion_tokens == 7
    assert done.prompt_tokens > 10 and done.text and done.more == ()
    assert done.endpoint == f"vllm:{SERVED}" and done.backend == "vllm" and done.latency_s > 0


async def test_n_returns_n_choices(engine: VLLMBackend) -> None:
    done = await engine.complete(ask(max_tokens=12, temperature=1.0, seed=5, n=3))
    assert len(done.choices) == 3 and len(done.more) == 2
    assert done.completion_tokens == 36 and all(c.finish_reason == "length" for c in done.choices)
    assert len({c.text for c in done.choices}) == 3


async def test_same_seed_same_text_other_seed_other_text(engine: VLLMBackend) -> None:
    first, again, other = await asyncio.gather(*(engine.complete(ask(max_tokens=24, temperature=1.0, seed=s))
                                                 for s in (11, 11, 12)))
    assert first.text == again.text
    assert first.text != other.text


async def test_json_schema_gives_a_parsable_verdict(engine: VLLMBackend) -> None:
    answers = await asyncio.gather(*(engine.complete(ask(max_tokens=1024, temperature=1.0, seed=s,
                                                         json_schema=VERDICT_SCHEMA)) for s in range(4)))
    for done in answers:
        assert done.finish_reason == "stop", done
        verdict = json.loads(done.text)
        assert set(verdict) == {"verdict", "reason"} and verdict["verdict"] in ("Correct", "Error")
        assert len(verdict["reason"]) <= 600


async def test_many_requests_run_at_once(engine: VLLMBackend) -> None:
    answers = await asyncio.gather(*(engine.complete(ask(max_tokens=16, temperature=0.8, seed=100 + i))
                                     for i in range(24)))
    assert all(a.completion_tokens == 16 for a in answers)
    assert len({a.text for a in answers}) > 20


async def test_cancelling_the_caller_aborts_the_request(engine: VLLMBackend) -> None:
    llm = engine._engine.llm
    task = asyncio.create_task(engine.complete(ask(max_tokens=3000, temperature=1.0, seed=1)))
    async with asyncio.timeout(30):
        while llm.get_num_unfinished_requests() == 0:
            await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    async with asyncio.timeout(10):
        while llm.get_num_unfinished_requests():
            await asyncio.sleep(0.01)
    assert (await engine.complete(ask(max_tokens=3, seed=2))).completion_tokens == 3  # still serving


@pytest.mark.parametrize(("request_", "status", "words"), [
    (ChatRequest(model="other-model", messages=(ChatMessage("user", "hi"),)), 404, "serves 'tiny-llama'"),
    (ask(max_tokens=8, top_p=1.5), 400, "top_p"),
    (ChatRequest(model=SERVED, messages=(ChatMessage("user", "dyspnoea " * 6000),)), 400, "length"),
], ids=["unknown-model", "top_p", "prompt-too-long"])
async def test_bad_requests_are_bad_request(engine: VLLMBackend, request_: ChatRequest, status: int,
                                            words: str) -> None:
    with pytest.raises(BadRequest) as caught:
        await engine.complete(request_)
    assert caught.value.status == status and not caught.value.retryable
    assert words in str(caught.value)


@pytest.mark.parametrize(("options", "words"), [
    ({"model": "m", "batch_size": 4}, "unknown option(s) batch_size"),
    ({"served_model_name": "x"}, "model is required"),
    ({"model": "m", "enforce_eager": "yes"}, "enforce_eager must be true or false"),
    ({"model": "m", "gpu_memory_utilization": 1.5}, "gpu_memory_utilization"),
    ({"model": "m", "engine_args": {"no_such_field": 1}}, "unknown AsyncEngineArgs field(s) no_such_field"),
    ({"model": "m", "engine_args": {"seed": 1}}, "set seed as backend option"),
    ({"model": "m", "structured_outputs_backend": "nope"}, "backend"),
    ({"model": "/no/such/model"}, "is not a local directory"),
])
async def test_bad_options_are_config_errors(options: dict[str, object], words: str) -> None:
    with pytest.raises(ConfigError) as caught:
        await open_vllm_backend(BackendConfig("bad", "vllm", options))
    assert str(caught.value).startswith("[backends.bad]: ") and words in str(caught.value)


async def test_example_config_builds_engine_args(tiny_model: pathlib.Path) -> None:
    """examples/vllm.toml parses, and its vllm table makes valid AsyncEngineArgs (its model swapped for ours)."""
    from reasonmed_async.llm import vllm_engine  # imports vLLM

    text = (ROOT / "examples" / "vllm.toml").read_text(encoding="utf-8")
    config = parse_config(text, env={"REASONMED_VLLM_QWEN_MODEL": str(tiny_model)})
    vllm_tables = [b for b in config.backends.values() if b.type == "vllm"]
    assert [b.name for b in vllm_tables] == ["qwen"]  # one in-process engine per process
    settings = VLLMSettings.from_options(vllm_tables[0].options)
    assert config.model_backends[settings.served_model_name] == "qwen"
    args = vllm_engine.engine_args(settings.engine_kwargs(), settings.structured_outputs_backend)
    assert args.structured_outputs_config.backend == "guidance" and args.generation_config == "vllm"
    assert args.enable_prefix_caching is True and args.tensor_parallel_size == 4


async def test_a_second_engine_in_one_process_is_refused(engine: VLLMBackend) -> None:
    with pytest.raises(ConfigError, match=r"already started an in-process vLLM engine \(for \[backends.tiny\]\)"):
        await open_vllm_backend(BackendConfig("again", "vllm", {"model": engine.settings.model}))


async def test_missing_vllm_says_install_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "reasonmed_async.llm.vllm_engine", None)  # what a venv without vLLM sees
    monkeypatch.delattr(reasonmed_async.llm, "vllm_engine", raising=False)
    with pytest.raises(ConfigError, match=r"install the \[vllm\] extra"):
        await open_vllm_backend(BackendConfig("local", "vllm", {"model": "m"}))


def flow_settings(seed: int) -> FlowSettings:
    judge = Sampling(SERVED, temperature=1.0, top_p=0.95, max_tokens=1024, seed=seed)
    return FlowSettings(
        generators=(GeneratorModel("tiny", SERVED, temperatures=(0.7, 1.0), top_p=0.9, max_tokens=256, seed=seed),),
        verifier=judge, ranker=judge, refiner=judge, regenerator=judge, summarizer=judge, judge_corrections=1)


async def test_generator_and_verifier_run_on_the_engine(engine: VLLMBackend) -> None:
    settings, templates, clients = flow_settings(seed=21), Templates.load(), {SERVED: engine}
    ingested = QuestionIngested(run_id="run-vllm", question_id=QUESTION.id, question=QUESTION)
    generated = await Generator(clients, settings, templates).handle(ingested)
    assert len(generated) == 2 and all(isinstance(m, CoTGenerated | StageFailed) for m in generated)
    for message in generated:
        if isinstance(message, StageFailed):  # a random model rarely stops by itself: truncated, with the reason
            assert message.stage is Stage.GENERATE and message.kind is FailureKind.TRUNCATED
            assert message.message.startswith("finish_reason=length")
        else:
            assert message.path.provenance[0].backend == "vllm" and message.path.provenance[0].completion_tokens
    # the verifier judges what the generator wrote, and a hand-written path as well
    written = CoTGenerated(run_id="run-vllm", question_id=QUESTION.id, parent_id=ingested.id, question=QUESTION,
                           path=Path(name="tiny_9", cot="Heat intolerance and weight loss: Graves disease. "
                                                        "Final answer: B", stated_answer="B"))
    judged = [m for c in [*generated, written] if isinstance(c, CoTGenerated)
              for m in await Verifier(clients, settings, templates).handle(c)]
    assert judged and all(isinstance(m, Verdict | StageFailed) for m in judged)
    for message in judged:
        if isinstance(message, Verdict):
            assert message.verdict in ("Correct", "Error") and message.reason
        else:
            assert message.stage == "verify" and message.reason
