"""The report's counting, message by message: paths lost before a verdict, keys without a config."""

from __future__ import annotations

from agents.settings import GeneratorModel
from bus import FailureKind, Path, Provenance, Question, Stage, StageFailed, Verdict
from bus.gates import Gate

from reasonmed_async.reports.report.tally import Tally, path_keys

Q = Question(id="q1", stem="Which nerve is injured in a midshaft humerus fracture?",
             options=("Axillary", "Radial", "Median", "Ulnar"), answer=1)
GENS = (GeneratorModel("qwen", "qwen2.5-72b-instruct"), GeneratorModel("deepseek", "deepseek-r1-distill-llama-70b"))


def verdict(name: str, label: str, temperature: float, model: str) -> Verdict:
    prov = Provenance(role="generate", model=model, backend="openai", temperature=temperature, template="abc123")
    return Verdict(run_id="r", question_id=Q.id, question=Q, verdict=label, reason="why",
                   path=Path(name=name, cot="1. ...\nFinal answer: B", stated_answer="B", provenance=(prov,)))


def test_lost_paths_are_counted_per_model_and_temperature() -> None:
    t = Tally(path_keys(GENS))
    t.add(verdict("qwen_1", "Correct", 0.7, "qwen2.5-72b-instruct"))
    t.add(StageFailed(run_id="r", question_id=Q.id, stage=Stage.VERIFY, path="qwen_2", kind=FailureKind.UNPARSEABLE,
                      error_class="JudgeFailed", message="unparseable judge output after 3 attempts"))
    t.add(StageFailed(run_id="r", question_id=Q.id, stage=Stage.GENERATE, path="deepseek_3",
                      kind=FailureKind.TRUNCATED, message="finish_reason=length after 8192 tokens"))
    rows = {r["label"]: r for r in t.verdict_rows()}
    assert (rows["qwen T=0.7"]["correct"], rows["qwen T=0.9"]["no_verdict"], rows["deepseek T=1"]["not_generated"]) \
        == (1, 1, 1)
    assert rows["qwen T=0.9"]["pass_rate"]["n"] == 0 and rows["qwen T=0.9"]["pass_rate"]["rate"] is None
    t.add(StageFailed(run_id="r", question_id=Q.id, stage=Stage.ASSEMBLE, path="qwen_1", gate=Gate.ANSWER_AGREEMENT,
                      kind=FailureKind.REJECTED, message="answer_agreement: the CoT states C, the gold answer is B"))
    assert {(r["stage"], r["count"]) for r in t.failure_rows()} == {("verify", 1), ("generate", 1), ("assemble", 1)}
    assert t.gate_rows() == [{"gate": "answer_agreement", "rejected": 1}]


def test_without_a_config_the_keys_come_from_provenance() -> None:
    t = Tally({})
    t.add(verdict("huatuo_2", "Error", 0.9, "huatuogpt-o1-70b"))
    t.add(verdict("huatuo_2", "Correct", 0.9, "huatuogpt-o1-70b"))
    (row,) = t.verdict_rows()
    assert (row["label"], row["model"], row["correct"], row["error"]) == ("huatuo T=0.9", "huatuogpt-o1-70b", 1, 1)
    assert t.template_rows() == [{"role": "generate", "model": "huatuogpt-o1-70b", "template": "abc123"}]
