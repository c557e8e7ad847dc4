"""Reasoning models' thinking, split and composed: one table of realistic outputs.

DeepSeek-R1-Distill (``<think>`` ... ``</think>`` then the answer; the opening tag often in the
chat template, so only ``</think>`` arrives), QwQ (``<think>`` blocks), HuatuoGPT-o1
(``## Thinking`` / ``## Final Response``), and non-reasoning models (Qwen2.5-72B, GPT-4o-mini,
o1-mini, small local models) whose text has no thinking at all.  For each: the split, the CoT
kept (``keep``: the thinking then the conclusion; ``drop``: the conclusion) and no tag left.
"""

from __future__ import annotations

import re

import pytest

from agents.parsing import compose_cot, split_thinking

R1_T = ("Okay, let's see. A 58-year-old man with tearing chest pain radiating to the back.\n"
        "Blood pressure differs between the arms. That suggests aortic dissection.\n"
        "Pericarditis would give pleuritic pain relieved by sitting forward. MI: possible, but the BP difference?\n"
        "Wait, let me reconsider D. PE gives dyspnoea and tachycardia, not unequal pressures. So C.")
R1_V = "The findings (tearing pain to the back, unequal arm pressures) point to aortic dissection.\n\nFinal answer: C"
HU_T = ("The study compares readmission rates in two cohorts. The intervention group had 12% vs 19%.\n"
        "The p-value is 0.01, so the difference is significant. Confounders were adjusted for.")
HU_V = "Yes. The intervention reduced 30-day readmissions significantly after adjustment.\n\nFinal answer: A"
PLAIN = ("1. Restate the question: which drug is first line for type 2 diabetes?\n"
         "2. Key clinical details: BMI 31, eGFR 80.\n3. Evaluate every option: metformin is first line.\n"
         "4. Rule out: insulin is not first line.\n5. Compare: metformin fits.\n6. Conclude.\n\nFinal answer: A")

CASES = [
    # --- DeepSeek-R1-Distill
    ("r1-full-tags", f"<think>\n{R1_T}\n</think>\n\n{R1_V}", R1_T, R1_V),
    ("r1-leading-close", f"{R1_T}\n</think>\n\n{R1_V}", R1_T, R1_V),
    ("r1-no-newlines", f"<think>{R1_T}</think>{R1_V}", R1_T, R1_V),
    ("r1-upper", f"<THINK>\n{R1_T}\n</THINK>\n{R1_V}", R1_T, R1_V),
    ("r1-spaces-around", f"  <think>  \n{R1_T}\n  </think>  \n\n{R1_V}\n\n", R1_T, R1_V),
    ("r1-unclosed", f"<think>\n{R1_T}", R1_T, ""),
    ("r1-empty-think", f"<think>\n\n</think>\n\n{R1_V}", "", R1_V),
    ("r1-nested-open", f"<think>\n{R1_T}\n<think>\nsecond thought\n</think>\n\n{R1_V}", R1_T + "\n\nsecond thought", R1_V),
    ("r1-stray-close-after", f"<think>{R1_T}</think>\n{R1_V}\n</think>", R1_T, R1_V),
    ("r1-two-blocks", f"<think>first</think>\nPartial.\n<think>second</think>\n{R1_V}", "first\n\nsecond", "Partial.\n\n" + R1_V),
    ("r1-thinking-tag", f"<thinking>\n{R1_T}\n</thinking>\n{R1_V}", R1_T, R1_V),
    ("r1-leading-close-then-block", f"{R1_T}</think>\n{R1_V}<think>more</think>", R1_T + "\n\nmore", R1_V),
    ("r1-boxed", f"<think>\n{R1_T}\n</think>\n\n**Final Answer**\n\\boxed{{C}}", R1_T, "**Final Answer**\n\\boxed{C}"),
    ("r1-tag-in-middle-of-line", f"Let me think <think>{R1_T}</think> done. {R1_V}", R1_T, "Let me think  done. " + R1_V),
    ("r1-only-close", "</think>\n\n" + R1_V, "", R1_V),
    ("r1-only-open", "<think>", "", ""),
    # --- HuatuoGPT-o1
    ("huatuo", f"## Thinking\n\n{HU_T}\n\n## Final Response\n\n{HU_V}", HU_T, HU_V),
    ("huatuo-tight", f"## Thinking\n{HU_T}\n## Final Response\n{HU_V}", HU_T, HU_V),
    ("huatuo-colons", f"## Thinking:\n{HU_T}\n## Final Response:\n{HU_V}", HU_T, HU_V),
    ("huatuo-lowercase", f"## thinking\n{HU_T}\n## final response\n{HU_V}", HU_T, HU_V),
    ("huatuo-leading-blank", f"\n\n## Thinking\n{HU_T}\n\n## Final Response\n{HU_V}", HU_T, HU_V),
    ("huatuo-subheadings", f"## Thinking\n{HU_T}\n### Confounders\nAdjusted.\n## Final Response\n{HU_V}",
     HU_T + "\n### Confounders\nAdjusted.", HU_V),
    ("huatuo-other-header", f"## Thinking\n{HU_T}\n## Answer\n{HU_V}", HU_T, "## Answer\n" + HU_V),
    ("huatuo-truncated", f"## Thinking\n{HU_T}", HU_T, ""),
    ("huatuo-not-leading", f"Intro.\n## Thinking\n{HU_T}\n## Final Response\n{HU_V}", "",
     f"Intro.\n## Thinking\n{HU_T}\n## Final Response\n{HU_V}"),
    ("huatuo-with-think-tags", f"<think>{HU_T}</think>\n## Final Response\n{HU_V}", HU_T, f"## Final Response\n{HU_V}"),
    ("huatuo-tags-inside", f"## Thinking\n<think>{HU_T}</think>\n## Final Response\n{HU_V}", HU_T, HU_V),
    # --- no thinking at all: Qwen2.5-72B, GPT-4o-mini, o1-mini, small models
    ("qwen-plain", PLAIN, "", PLAIN),
    ("qwen-with-heading", "## Step 1\nRestate.\n## Step 2\nDetails.\nFinal answer: B", "", "## Step 1\nRestate.\n## Step 2\nDetails.\nFinal answer: B"),
    ("4omini-markdown", "### Restate\nWhich drug?\n\n### Final Answer\n**A) Metformin**", "", "### Restate\nWhich drug?\n\n### Final Answer\n**A) Metformin**"),
    ("o1mini-terse", "Final answer: C", "", "Final answer: C"),
    ("small-mentions-thinking", "I am thinking about the options.\nFinal answer: B", "", "I am thinking about the options.\nFinal answer: B"),
    ("small-angle-brackets", "The <b>answer</b> is C. Final answer: C", "", "The <b>answer</b> is C. Final answer: C"),
    ("small-thinking-word-header", "## Thinking about it\nnot a section\nFinal answer: A", "", "## Thinking about it\nnot a section\nFinal answer: A"),
    ("empty", "", "", ""),
    ("whitespace", "  \n\n ", "", ""),
]


@pytest.mark.parametrize("text, thinking, visible", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_real_thinking_split(text: str, thinking: str, visible: str) -> None:
    assert split_thinking(text) == (thinking, visible)


@pytest.mark.parametrize("text, thinking, visible", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_real_thinking_composed(text: str, thinking: str, visible: str) -> None:
    got_thinking, got_visible = split_thinking(text)
    kept = compose_cot(got_thinking, got_visible, "keep")
    dropped = compose_cot(got_thinking, got_visible, "drop")
    for cot in (kept, dropped):
        assert not re.search(r"</?think(?:ing)?>", cot, re.I), cot
    assert kept == "\n\n".join(p for p in (thinking, visible) if p)   # the whole reasoning, thinking first
    assert dropped == (visible or thinking)                           # never empty because of the tags
    if thinking and visible:
        assert len(kept) > len(visible) + len(thinking)               # nothing lost


def test_the_table_is_large_enough() -> None:
    assert 2 * len(CASES) >= 60 and len(CASES) >= 30


def test_an_unknown_mode_is_refused() -> None:
    with pytest.raises(ValueError, match="keep, drop"):
        compose_cot("a", "b", "summarise")  # type: ignore[arg-type]
