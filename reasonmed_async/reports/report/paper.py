"""The figures the ReasonMed paper reports (arXiv 2506.09513; SPEC §1), to show beside a run's own.

Every value here is the paper's, never a run's: the report labels them so.
"""

from __future__ import annotations

PAPER = "ReasonMed paper (arXiv 2506.09513)"
PAPER_QUESTIONS = 194_925

# Table 5: questions answered correctly by one model of a pair and not by the other.
COMPLEMENTARITY_1V1: dict[tuple[str, str], tuple[int, int]] = {
    ("deepseek", "huatuo"): (8_168, 27_339),
    ("deepseek", "qwen"): (19_017, 23_267),
    ("qwen", "huatuo"): (10_018, 24_939),
}
# Table 6: questions missed by one model while both others answered correctly.
COMPLEMENTARITY_1V2: dict[str, int] = {"deepseek": 3_430, "huatuo": 9_352, "qwen": 5_280}

# GPT-4o scores, 1,000 samples each.
SCORES: dict[str, float] = {
    "pre-refine (medium tier, before refinement)": 7.37,
    "post-refine (medium tier, after refinement)": 8.17,
    "medical-o1-reasoning-SFT": 8.03,
    "Medical-R1-Distill-Data": 8.18,
    "ReasonMed (final)": 8.45,
}
SCORE_BY_LABEL: dict[str, float] = {"pre-refine": 7.37, "post-refine": 8.17, "final": 8.45}

# Table 4: ReasonMed-7B accuracy % (± standard error), and the benchmark sizes used.
TABLE4_ROWS: tuple[tuple[str, str, int, float, float], ...] = (
    # (key, label as in the paper, questions, accuracy %, SE)
    ("medqa", "MedQA", 1_273, 66.9, 1.3),
    ("medmcqa", "MedMCQA (val)", 4_183, 65.1, 0.7),
    ("pubmedqa", "PubMedQA", 1_000, 82.0, 5.5),
    ("mmlu:anatomy", "MMLU Anatomy", 135, 75.6, 3.7),
    ("mmlu:clinical_knowledge", "MMLU Clinical Knowledge", 265, 79.3, 2.5),
    ("mmlu:college_biology", "MMLU College Biology", 144, 79.2, 3.4),
    ("mmlu:college_medicine", "MMLU College Medicine", 173, 73.4, 3.4),
    ("mmlu:medical_genetics", "MMLU Medical Genetics", 100, 85.0, 3.6),
    ("mmlu:professional_medicine", "MMLU Professional Medicine", 272, 80.9, 2.4),
)
TABLE4_TOTAL = {"ReasonMed-7B": (69.6, 626), "CoTMed-7B": (69.1, 555), "ResponseMed-7B": (67.0, 225)}

TIER_RULE = "easy 0-4 Error verdicts, medium 5-7, difficult 8-9 (of nine paths)"


def complementarity_rows() -> list[dict[str, object]]:
    """Tables 5 and 6 as rows with the shares of the paper's 194,925 questions."""
    rows: list[dict[str, object]] = []
    for (a, b), (only_a, only_b) in COMPLEMENTARITY_1V1.items():
        rows.append({"a": a, "b": b, "only_a": only_a, "only_a_pct": round(100 * only_a / PAPER_QUESTIONS, 2),
                     "only_b": only_b, "only_b_pct": round(100 * only_b / PAPER_QUESTIONS, 2)})
    return rows
