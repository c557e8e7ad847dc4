"""The rewriter's branches with a scripted model: optimize vs from scratch, and the self-contained gate."""

from __future__ import annotations

import asyncio

import pytest

from agents.llm import ChatRequest, Completion
from agents.prompts import Templates
from agents.rewrite import Rewriter
from agents.settings import FlowSettings, GeneratorModel, Sampling
from bus import Gate, Judgement, Path, Question, Refined, StageFailed, TierAssigned

Q = Question(id="q1", stem="Which drug lowers mortality after myocardial infarction?",
             options=("Digoxin", "Metoprolol", "Furosemide", "Verapamil"), answer=1)
GOOD = "1. Restate the question: ...\n6. Conclusion: metoprolol lowers mortality.\nFinal answer: B"
REFERS = "1. Restate ...\n6. Conclusion: unlike the earlier attempts, B is right.\nFinal answer: B"
ERRORS = tuple(Judgement(path=f"qwen_{i}", verdict="Error", reason=f"Mistake {i}: chose digoxin.") for i in range(2, 10))


class Scripted:
    """Answers each call with the next text; keeps every request."""

    def __init__(self, *texts: str) -> None:
        self.texts = list(texts)
        self.requests: list[ChatRequest] = []

    async def complete(self, request: ChatRequest) -> Completion:
        self.requests.append(request)
        return Completion(text=self.texts.pop(0), backend="scripted")


def settings(**gates) -> FlowSettings:
    from agents.gates import GateSettings

    s = Sampling("m")
    return FlowSettings(generators=(GeneratorModel("qwen", "m"),), verifier=s, ranker=s, refiner=Sampling("r", 0.8, 0.9),
                        summarizer=s, regenerator=Sampling("o1", None, None, 20000), gates=GateSettings(**gates))


def tier(correct: tuple[Path, ...]) -> TierAssigned:
    judged = tuple(Judgement(path=p.name, verdict="Correct", reason="fine") for p in correct) + ERRORS
    return TierAssigned(run_id="r", question_id=Q.id, question=Q, tier="difficult", errors=8,
                        correct=correct, judgements=judged)


def run(rewriter: Rewriter, message) -> list:
    return list(asyncio.run(rewriter.regenerate(message)))


@pytest.fixture(scope="module")
def templates() -> Templates:
    return Templates.load()


def test_one_correct_path_is_optimized(templates) -> None:
    source = Path(name="qwen_1", cot="1. ... the one right path ...\nFinal answer: B")
    client = Scripted(GOOD)
    (out,) = run(Rewriter({"o1": client}, settings(), templates), tier((source,)))
    assert isinstance(out, Refined) and out.path.origin == "optimized" and out.path.name == "qwen_1"
    (req,) = client.requests
    assert [m.role for m in req.messages] == ["user"] and source.cot in req.messages[0].content
    assert all(j.reason in req.messages[0].content for j in ERRORS)
    assert (req.temperature, req.top_p, req.max_tokens, req.meta["task"]) == (None, None, 20000, "regenerate")
    (given,) = out.path.rewrites
    assert (given.origin, given.cot_before, given.reasons, given.resent) == ("optimized", source.cot, ERRORS, "")


@pytest.mark.parametrize("correct", [(), (Path(name="a_1", cot="x"), Path(name="a_2", cot="y"))], ids=["none", "two"])
def test_otherwise_written_from_scratch(templates, correct) -> None:
    client = Scripted(GOOD)
    (out,) = run(Rewriter({"o1": client}, settings(), templates), tier(correct))
    assert out.path.origin == "regenerated" and out.path.name == "regen_1"
    assert "from scratch" in client.requests[0].messages[0].content
    assert out.path.rewrites[0].cot_before == ""


def test_a_rewrite_referring_to_earlier_attempts_is_sent_back_once(templates) -> None:
    client = Scripted(REFERS, GOOD)
    (out,) = run(Rewriter({"o1": client}, settings(), templates), tier(()))
    assert isinstance(out, Refined) and out.path.cot == GOOD
    first, again = client.requests
    assert again.messages[:-2] == first.messages
    assert (again.messages[-2].role, again.messages[-2].content) == ("assistant", REFERS)
    assert "'earlier attempts'" in again.messages[-1].content and "self-contained" in again.messages[-1].content
    assert out.path.rewrites[0].resent == "earlier attempts" and len(out.path.provenance) == 2


def test_still_referring_after_the_second_try_is_rejected(templates) -> None:
    client = Scripted(REFERS, REFERS.replace("earlier attempts", "other reasoning"))
    (out,) = run(Rewriter({"o1": client}, settings(), templates), tier(()))
    assert isinstance(out, StageFailed) and out.gate == Gate.SELF_CONTAINED and out.path == "regen_1"
    assert "'other reasoning'" in out.reason and "'earlier attempts'" in out.reason
    assert len(client.requests) == 2


def test_gate_off_keeps_the_text(templates) -> None:
    client = Scripted(REFERS)
    (out,) = run(Rewriter({"o1": client}, settings(self_contained=False), templates), tier(()))
    assert isinstance(out, Refined) and out.path.cot == REFERS and len(client.requests) == 1
