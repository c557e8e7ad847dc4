"""One realistic sample of every message type, and the pieces they are built from, for the bus's tests."""

from __future__ import annotations

from bus import (
    CoTGenerated,
    FailureKind,
    Judgement,
    Message,
    Path,
    Provenance,
    Question,
    QuestionIngested,
    Ranked,
    RecordReady,
    Refined,
    Scored,
    Stage,
    StageFailed,
    Summarized,
    TierAssigned,
    Verdict,
)


RUN = "run-1"
Q = Question(id="q1", stem="Which organ makes insulin?", options=("Liver", "Pancreas", "Spleen", "Kidney"),
             answer=1, source="generic", context="ctx", ordinal=3)
PROV = Provenance(role="generate", model="m", backend="sim", temperature=0.7, top_p=0.9, seed=1,
                  template="abc", prompt_tokens=10, completion_tokens=20)
PATH = Path(name="qwen_1", cot="step 1 ... answer B", stated_answer="B", thinking="hmm", provenance=(PROV,))
PATH2 = Path(name="qwen_2", cot="step 1 ... answer A", stated_answer="A")
JUDGE = Judgement(path="qwen_2", verdict="Error", reason="wrong organ")
JUDGE_NONE = Judgement(path="qwen_3", verdict=None, reason="unparseable", stage=Stage.VERIFY,
                       kind=FailureKind.UNPARSEABLE)
COMMON = {"run_id": RUN, "question_id": Q.id, "parent_id": "p0"}


def _samples() -> dict[type[Message], Message]:
    return {
        QuestionIngested: QuestionIngested(run_id=RUN, question_id=Q.id, question=Q),
        CoTGenerated: CoTGenerated(**COMMON, question=Q, path=PATH),
        Verdict: Verdict(**COMMON, question=Q, path=PATH, verdict="Correct", reason="fine", attempt=1,
                         tier="medium", error_reasons=(JUDGE,)),
        StageFailed: StageFailed(**COMMON, stage=Stage.VERIFY, kind=FailureKind.CALL_FAILED, error_class="ServerError",
                                 message="boom", attempts=3, path="qwen_1",
                                 failed_type="CoTGenerated"),
        TierAssigned: TierAssigned(**COMMON, question=Q, tier="medium", errors=5, correct=(PATH,),
                                   judgements=(JUDGE, JUDGE_NONE)),
        Ranked: Ranked(**COMMON, question=Q, tier="easy", chosen=(PATH, PATH2), reasons={"qwen_1": "clear"},
                       error_reasons=(JUDGE,), called=False),
        Refined: Refined(**COMMON, question=Q, tier="medium", path=PATH, source_path="qwen_1", attempt=2,
                         error_reasons=(JUDGE,)),
        Summarized: Summarized(**COMMON, question=Q, tier="easy", path=PATH, response="B. Pancreas",
                               provenance=PROV, verdict_reason="ok"),
        RecordReady: RecordReady(**COMMON, question=Q, tier="difficult", path=PATH, response="B",
                                 response_provenance=PROV, record_id="r-1"),
        Scored: Scored(**COMMON, target_id="r-1", score=7, justification="good", provenance=PROV),
    }


SAMPLES = _samples()
