"""The stated answer of real CoTs: one table of realistic endings in six models' styles.

The CoT given is the visible conclusion (``split_thinking`` has moved the thinking aside),
as the generator and the rewriter call ``stated_answer``.
"""

from __future__ import annotations

import pytest

from agents.parsing import split_thinking, stated_answer

MCQ = ("Pericarditis", "Myocardial infarction", "Aortic dissection", "Pulmonary embolism")
PMQ = ("yes", "no", "maybe")
FIVE = ("Metformin", "Insulin glargine", "Glipizide", "Sitagliptin", "Pioglitazone")

STEPS = ("1. Restate the question: a 58-year-old with tearing chest pain.\n"
         "2. Key clinical details: pain radiates to the back; blood pressure differs between arms.\n"
         "3. Evaluate every option: A) pericarditis gives pleuritic pain; B) MI rarely gives unequal pressures.\n"
         "4. Rule out: A, B and D.\n5. Compare what remains: C fits.\n")

CASES = [
    # --- Qwen2.5-72B: the six steps, then the line the template asks for
    ("qwen-final-line", STEPS + "6. Conclude: the findings point to aortic dissection.\n\nFinal answer: C", MCQ, "C"),
    ("qwen-final-bold", STEPS + "6. Conclude: aortic dissection.\n\n**Final answer: C**", MCQ, "C"),
    ("qwen-final-bold-letter", STEPS + "**Final Answer:** **C**", MCQ, "C"),
    ("qwen-final-letter-text", STEPS + "Final answer: C) Aortic dissection", MCQ, "C"),
    ("qwen-final-letter-dot-text", STEPS + "Final answer: C. Aortic dissection", MCQ, "C"),
    ("qwen-answer-dot-text", STEPS + "Answer: C. Aortic dissection is the most likely diagnosis.", MCQ, "C"),
    ("qwen-final-option", STEPS + "Final answer: Option C", MCQ, "C"),
    ("qwen-correct-answer-is", STEPS + "Therefore, the correct answer is **C) Aortic dissection**.", MCQ, "C"),
    ("qwen-changed-mind", "Initially the answer is A.\n" + STEPS + "Final answer: C", MCQ, "C"),
    ("qwen-final-beats-later", "Final answer: B\n\nNote: the answer is not D.", MCQ, "B"),
    ("qwen-lowercase-final", STEPS + "final answer: c", MCQ, "C"),
    ("qwen-answer-is-c-paren", STEPS + "The answer is (C).", MCQ, "C"),
    ("qwen-answer-to-question", STEPS + "The answer to this question is A) Pericarditis.", MCQ, "A"),
    ("qwen-answer-to-question-bare", "The answer to this question is A)", MCQ, "A"),
    ("qwen-best-answer", STEPS + "The best answer is D, pulmonary embolism.", MCQ, "D"),
    ("qwen-correct-option", STEPS + "The correct option is **C**.", MCQ, "C"),
    ("qwen-would-be", STEPS + "So the answer would be B.", MCQ, "B"),
    ("qwen-dash", STEPS + "Answer - D", MCQ, "D"),
    ("qwen-five-options", "Step 6: metformin is first line.\nFinal answer: A", FIVE, "A"),
    ("qwen-five-e", "Final answer: E) Pioglitazone", FIVE, "E"),
    # --- headings (GPT-4o-mini, Qwen)
    ("heading-bold", STEPS + "### Final Answer\n**C) Aortic dissection**", MCQ, "C"),
    ("heading-bold-unclosed", STEPS + "### Final Answer\n**C", MCQ, "C"),
    ("heading-plain", STEPS + "## Final Answer\n\nC", MCQ, "C"),
    ("heading-colon", STEPS + "### Final Answer:\nB) Myocardial infarction", MCQ, "B"),
    ("4omini-bold-sentence", STEPS + "### Conclusion\nThe most likely diagnosis is aortic dissection.\n\n**Final Answer: C**", MCQ, "C"),
    ("4omini-answer-bold", STEPS + "**Answer: B) Myocardial infarction**", MCQ, "B"),
    # --- \boxed (DeepSeek-R1-Distill, o1-style)
    ("r1-boxed", "So, the answer is clearly dissection.\n\n\\boxed{C}", MCQ, "C"),
    ("r1-boxed-text", "The final answer is $\\boxed{\\text{C}}$.", MCQ, "C"),
    ("r1-boxed-option-text", "\\boxed{C) Aortic dissection}", MCQ, "C"),
    ("r1-boxed-last-wins", "Not \\boxed{A}. Reconsidering: \\boxed{C}", MCQ, "C"),
    ("r1-boxed-yes", "Therefore: \\boxed{yes}", PMQ, "A"),
    ("r1-think-then-final", split_thinking("<think>\nMaybe A? No, C.\n</think>\n\n**Final Answer**\n\\boxed{C}")[1], MCQ, "C"),
    # --- a bold or parenthesised letter alone
    ("bold-last-line", STEPS + "**C**", MCQ, "C"),
    ("bold-letter-text-last", STEPS + "\n**B) Myocardial infarction**", MCQ, "B"),
    ("paren-answer", "Answer: (C)", MCQ, "C"),
    ("bracket-answer", "Final answer: [D]", MCQ, "D"),
    # --- the option's text instead of its letter
    ("text-final", STEPS + "Final answer: Aortic dissection", MCQ, "C"),
    ("text-final-lower", "Final answer: aortic dissection.", MCQ, "C"),
    ("text-answer-is", "The answer is Myocardial infarction", MCQ, "B"),
    ("text-bold", "Final answer: **Pulmonary embolism**", MCQ, "D"),
    ("text-five", "Final answer: Insulin glargine", FIVE, "B"),
    # --- PubMedQA yes / no / maybe
    ("pmq-final-yes", "The trial shows fewer readmissions.\nFinal answer: A", PMQ, "A"),
    ("pmq-final-word", "Final answer: yes", PMQ, "A"),
    ("pmq-final-word-cap", "Final answer: No", PMQ, "B"),
    ("pmq-final-maybe", "The evidence is mixed.\n\nFinal answer: maybe", PMQ, "C"),
    ("pmq-answer-yes-comma", "Answer: Yes, the intervention reduced mortality.", PMQ, "A"),
    ("huatuo-final-yes", split_thinking("## Thinking\nThe study found a benefit.\n\n## Final Response\nYes, the data support a reduced risk of readmission.")[1], PMQ, "A"),
    ("huatuo-final-no", split_thinking("## Thinking\nNo association was found.\n## Final Response\nNo. The cohort showed no association between the two.")[1], PMQ, "B"),
    ("pmq-conclusion-paragraph", "The study compared two cohorts.\n\nMaybe. The results were not significant after adjustment.", PMQ, "C"),
    ("pmq-text-answer-is", "So the answer is no.", PMQ, "B"),
    # --- o1-mini: terse
    ("o1mini-terse", "C", MCQ, "C"),
    ("o1mini-answer", "**Answer:** C", MCQ, "C"),
    ("o1mini-final-paren", "Final answer: (B)", MCQ, "B"),
    # --- small local models: echoes and non-answers are not answers
    ("echo-placeholder", STEPS + "Final answer: <letter>", MCQ, None),
    ("echo-option-list-next-line", "Final answer:\nA) Pericarditis\nB) Myocardial infarction\nC) Aortic dissection\nD) Pulmonary embolism", MCQ, None),
    ("echo-option-list-same-line", "Final answer: A) Pericarditis B) Myocardial infarction C) Aortic dissection D) Pulmonary embolism", MCQ, None),
    ("echo-options-only", "Options:\nA) Pericarditis\nB) Myocardial infarction\nC) Aortic dissection\nD) Pulmonary embolism", MCQ, None),
    ("echo-pmq-list", "Final answer: A) yes B) no C) maybe", PMQ, None),
    ("no-answer", "I cannot determine the answer from the information given.", MCQ, None),
    ("lowercase-a-word", "The answer is a rare complication of surgery.", MCQ, None),
    ("beyond-options", "Final answer: E", MCQ, None),
    ("beyond-pmq", "Final answer: D", PMQ, None),
    ("evaluate-every-option", "3. Evaluate every option: A) pericarditis is unlikely.", MCQ, None),
    ("unknown-text", "Final answer: Takotsubo cardiomyopathy", MCQ, None),
    ("small-final-lower-letter", "final answer: b", MCQ, "B"),
    ("small-answer-equals", "answer = D", MCQ, "D"),
    ("small-final-letter-dot", "Final answer: D.", MCQ, "D"),
]


@pytest.mark.parametrize("text, options, expected", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_real_stated_answers(text: str, options: tuple[str, ...], expected: str | None) -> None:
    assert stated_answer(text, options) == expected


def test_the_table_is_large_enough() -> None:
    assert len(CASES) >= 60
