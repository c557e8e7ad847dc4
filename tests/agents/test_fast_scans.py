"""The fast scans give exactly what the plain regular expressions give.

``answer_heads`` must yield the matches ``_ANSWER_HEAD.finditer`` yields, and the
tag strip must equal the plain substitution: on every CoT of the realistic answer
table, and on texts built from the pieces where a shortcut could go wrong (heads
whose words are far apart, keywords inside other words, case and the letters
``ſ`` / ``ı`` / ``İ`` that ``re.IGNORECASE`` matches to ASCII ones).
"""

from __future__ import annotations

import random

import pytest

from agents.parsing import answer_heads as heads, thinking
from tests.agents.test_parse_answers_real import CASES

PIECES = [
    "Final answer: C", "final  \n\t answer is B", "FINAL ANSWER = D", "The answer is (A).", "answer\n\nB",
    "the correct option is **C**", "best choice: A", "Correct  option: D", "most likely answer would be B",
    "most   appropriate answer - C", "right answer — A", "answers", "reanswer: B", "options", "optional",
    "the correct  option is B", "beſt option: C", "fınal answer: A", "Fİnal answer: D",
    "ANSWER TO THIS QUESTION IS C",
    "answer for the question: B", "almost answer", "brightanswer", "correct answer", "\n", " ", "  ", ".", ":", "**",
    "1. Restate the question: a 58-year-old with tearing chest pain.", "A) Pericarditis B) MI", "<think>", "</think>",
    " </Think>  \n", "p < 0.05", "Final answer:", " " * 70, "most\n" * 3, "final", "correct", "best",
]


def _texts(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    return ["".join(rng.choice(PIECES) + rng.choice(["", " ", "\n", "  "]) for _ in range(rng.randint(1, 14)))
            for _ in range(n)]


def _spans(matches) -> list[tuple[tuple[int, int], str | None]]:
    return [(m.span(), m.group("final")) for m in matches]


REAL = [c[1] for c in CASES]


def test_long_blank_runs_keep_the_scan_local():
    """Keywords that open no head, each after a long run of blanks: the look-back stays near each keyword
    (it once went back to the start of the text for every one), and the answer at the end is found."""
    text = ("The best answers" + " " * 200) * 400 + "Final answer: B"
    assert _spans(heads.answer_heads(text)) == _spans(heads._ANSWER_HEAD.finditer(text))
    low = heads._folded(text)
    spots = heads._keywords(low)
    assert len(spots) == 401 and all(heads._starts(low, 0, at)[0] >= at - 1024 for at in spots)


@pytest.mark.parametrize("texts", [REAL, _texts(4000, 13)], ids=["real", "built"])
def test_answer_heads_are_the_plain_finditer(texts: list[str]) -> None:
    for text in texts:
        assert _spans(heads.answer_heads(text)) == _spans(heads._ANSWER_HEAD.finditer(text)), text


@pytest.mark.parametrize("texts", [REAL, _texts(1000, 29)], ids=["real", "built"])
def test_tag_strip_is_the_plain_substitution(texts: list[str]) -> None:
    for text in texts:
        assert thinking.strip_think_tags(text) == thinking._ANY_TAG.sub("\n", text).strip(), text
