"""A reasoning model's path keeps its whole reasoning: thinking, then the conclusion, no tags."""

from __future__ import annotations

import pytest

from agents.generator import Generator
from agents.llm import ChatRequest, Completion
from agents.prompts import Templates
from agents.settings import FlowSettings, GeneratorModel, Sampling
from bus import CoTGenerated, Question, QuestionIngested

THINK = "Okay, tearing pain to the back, unequal arm pressures.\nPericarditis? No. MI? Less likely. So C."
SHOWN = "The findings point to aortic dissection.\n\nFinal answer: C"
OUTPUTS = {
    "r1": f"<think>\n{THINK}\n</think>\n\n{SHOWN}",
    "r1-open-in-template": f"{THINK}\n</think>\n\n{SHOWN}",
    "huatuo": f"## Thinking\n\n{THINK}\n\n## Final Response\n\n{SHOWN}",
}


class Echo:
    def __init__(self, text: str) -> None:
        self.text = text

    async def complete(self, req: ChatRequest) -> Completion:
        return Completion(text=self.text, completion_tokens=90)


async def paths(text: str, thinking: str) -> list:
    s = Sampling("m")
    settings = FlowSettings(generators=(GeneratorModel("deepseek", "m", temperatures=(0.7,)),), verifier=s, ranker=s,
                            refiner=s, regenerator=s, summarizer=s, thinking=thinking)
    q = Question(id="q", stem="Chest pain?", options=("Pericarditis", "MI", "Aortic dissection", "PE"), answer=2)
    out = await Generator({"m": Echo(text)}, settings, Templates.load()).handle(  # type: ignore[dict-item]
        QuestionIngested(run_id="r", question_id="q", parent_id="", question=q))
    return [m.path for m in out if isinstance(m, CoTGenerated)]


@pytest.mark.parametrize("style", list(OUTPUTS))
async def test_keep_is_the_whole_reasoning(style: str) -> None:
    (path,) = await paths(OUTPUTS[style], "keep")
    assert path.cot == f"{THINK}\n\n{SHOWN}" and path.thinking == THINK and path.stated_answer == "C"
    assert "<think>" not in path.cot and "</think>" not in path.cot and "## Thinking" not in path.cot


@pytest.mark.parametrize("style", list(OUTPUTS))
async def test_drop_keeps_the_conclusion_and_the_record_keeps_the_thinking(style: str) -> None:
    (path,) = await paths(OUTPUTS[style], "drop")
    assert path.cot == SHOWN and path.thinking == THINK and path.stated_answer == "C"


def test_an_unknown_thinking_mode_is_refused() -> None:
    s = Sampling("m")
    with pytest.raises(ValueError, match='thinking must be "keep" or "drop"'):
        FlowSettings(generators=(GeneratorModel("g", "m"),), verifier=s, ranker=s, refiner=s, regenerator=s,
                     summarizer=s, thinking="hide")
