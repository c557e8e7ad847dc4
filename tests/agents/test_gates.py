"""Quality gates: self-reference detection, step counting and record warnings, on realistic CoT text."""

from __future__ import annotations

import pytest

from agents.gates import GateSettings, cot_warnings, self_reference, steps_detected

SIX = """1. Restate the question: which drug lowers mortality after myocardial infarction?
2. Key clinical details: a 62-year-old man, anterior STEMI, ejection fraction 35%.
3. Evaluate each option: A) digoxin improves symptoms only. B) beta-blockers reduce mortality.
4. Rule out: A and D do not lower mortality.
5. Compare the remaining options: B has the strongest trial evidence.
6. Conclusion: B is the best answer.
Final answer: B"""


@pytest.mark.parametrize("text, phrase", [
    ("6. Conclusion: B. Unlike the earlier attempts, it does not overlook the decisive finding.", "earlier attempts"),
    ("This corrects the errors flagged in the earlier attempts.", "the errors flagged in"),
    ("Other reasoning paths confused pericarditis with MI; here we do not.", "Other reasoning"),
    ("As in the original reasoning, step 3 weighs each option.", "the original reasoning"),
    ("The original chain-of-thought missed the lab value.", "The original chain-of-thought"),
    ("Addressing the error reasons provided, we check the troponin.", "error reasons"),
    ("In this refined version, option C is ruled out earlier.", "refined version"),
    ("Previous attempts overlooked the time course.", "Previous attempts"),
    ("Unlike the prior responses, this one compares B and C.", "prior responses"),
    ("**Improved Reasoning:**\n1. Restate the question ...", "Improved Reasoning"),
    ("Taking the provided feedback into account, option C is excluded.", "provided feedback"),
], ids=["unlike-earlier", "flagged-earlier", "other-reasoning", "original-reasoning", "original-cot",
        "error-reasons", "refined-version", "previous-attempts", "prior-responses", "header", "feedback"])
def test_references_outside_the_text_are_found(text: str, phrase: str) -> None:
    assert self_reference(text) == phrase


@pytest.mark.parametrize("text", [
    SIX,
    "The original tumour site was the left breast; metastasis to bone followed.",
    "Other explanations for the anaemia, such as blood loss, are less likely.",
    "The other options each leave at least one decisive finding unexplained.",
    "Earlier studies of the drug showed a 20% reduction in events.",
    "A previous myocardial infarction raises the risk.",
    "The given history of smoking and the improved symptoms with rest point to stable angina.",
], ids=["six-steps", "original-tumour", "other-explanations", "other-options", "earlier-studies", "previous-mi",
        "given-history"])
def test_ordinary_clinical_text_is_self_contained(text: str) -> None:
    assert self_reference(text) is None


@pytest.mark.parametrize("text, steps", [
    (SIX, 6),
    ("**1. Restate**\n**2) Details**\n### 3. Options\nStep 4: rule out\n5) compare\n", 5),
    ("Step 1: restate.\nStep 2: details.\nFinal answer: A", 2),
    ("The answer is A because of 2. reasons.", 0),
    ("<think>1. hmm</think>", 0),
])
def test_steps_detected(text: str, steps: int) -> None:
    assert steps_detected(text) == steps


def test_warnings_name_length_and_steps() -> None:
    assert cot_warnings(SIX, GateSettings(min_cot_words=10)) == (6, ())
    steps, warnings = cot_warnings("Step 1: restate.\nFinal answer: A", GateSettings())
    assert steps == 1
    assert warnings == ("short_cot: 6 words (minimum 120)", "steps: 1 of 6 steps detected")


def test_gate_settings_are_checked() -> None:
    with pytest.raises(ValueError, match="min_cot_words"):
        GateSettings(min_cot_words=-1)
