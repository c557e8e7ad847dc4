"""The ranker cannot lose a question: after its corrections fail, the first two correct paths stay."""

from __future__ import annotations

import json

import pytest

from agents.llm import ChatRequest, Completion
from agents.prompts import Templates
from agents.ranker import Ranker
from agents.settings import FlowSettings, GeneratorModel, Sampling
from bus import Path, Question, Ranked, TierAssigned

NAMES = ["qwen_2", "deepseek_1", "deepseek_3", "huatuo_2"]


class Scripted:
    """An LLM client that answers from a list and keeps every request it got."""

    def __init__(self, *answers: tuple[str, str]) -> None:
        self.answers = list(answers)
        self.requests: list[ChatRequest] = []

    async def complete(self, req: ChatRequest) -> Completion:
        self.requests.append(req)
        text, finish = self.answers.pop(0)
        return Completion(text=text, finish_reason=finish, completion_tokens=40)


def tiered() -> TierAssigned:
    q = Question(id="q1", stem="Which drug?", options=("Metformin", "Insulin", "Glipizide", "Sitagliptin"), answer=0)
    paths = tuple(Path(name=n, cot=f"Reasoning of {n}.\nFinal answer: A", stated_answer="A") for n in NAMES)
    return TierAssigned(run_id="r", question_id="q1", parent_id="p", question=q, tier="easy", errors=2,
                        correct=paths, judgements=())


def ranker(client: Scripted, corrections: int = 2) -> Ranker:
    s = Sampling("judge")
    settings = FlowSettings(generators=(GeneratorModel("g", "gen"),), verifier=s, ranker=s, refiner=s,
                            regenerator=s, summarizer=s, judge_corrections=corrections)
    return Ranker({"judge": client}, settings, Templates.load())  # type: ignore[dict-item]


ECHO = '{"top2": ["<name>", "<name>"], "reasons": {"<name of a path not chosen>": "<one sentence>"}}'


async def test_unparseable_answers_fall_back_to_the_first_two_correct_paths() -> None:
    client = Scripted((ECHO, "stop"), ("The best are the first two.", "stop"), ('{"top2": ["qwen_9"', "stop"))
    (out,) = await ranker(client).handle(tiered())
    assert isinstance(out, Ranked) and out.ranker == "fallback"
    assert [p.name for p in out.chosen] == ["qwen_2", "deepseek_1"]   # path order, as the correct tuple has it
    assert out.raw == (ECHO, "The best are the first two.", '{"top2": ["qwen_9"') and len(client.requests) == 3
    assert out.reasons == {}


async def test_a_truncated_answer_falls_back_without_corrections() -> None:
    client = Scripted(('{"top2": ["qwen_2", "deep', "length"))
    (out,) = await ranker(client).handle(tiered())
    assert out.ranker == "fallback" and len(client.requests) == 1
    assert [p.name for p in out.chosen] == ["qwen_2", "deepseek_1"] and "finish_reason=length" in out.raw[0]


async def test_a_correction_that_parses_is_the_models_choice() -> None:
    good = json.dumps({"top2": ["huatuo_2", "deepseek_3"], "reasons": [{"path": "qwen_2", "reason": "Skips option D."}]})
    client = Scripted((ECHO, "stop"), (good, "stop"))
    (out,) = await ranker(client).handle(tiered())
    assert out.ranker == "model" and [p.name for p in out.chosen] == ["huatuo_2", "deepseek_3"]
    assert out.reasons == {"qwen_2": "Skips option D."} and out.raw == ()
    schema = client.requests[0].json_schema
    assert schema is not None and schema["properties"]["top2"]["items"]["enum"] == NAMES


@pytest.mark.parametrize("corrections", [0, 1])
async def test_the_corrections_are_bounded(corrections: int) -> None:
    client = Scripted(*[(ECHO, "stop")] * (corrections + 1))
    (out,) = await ranker(client, corrections).handle(tiered())
    assert out.ranker == "fallback" and len(client.requests) == corrections + 1
