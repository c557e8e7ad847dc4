"""The fast scans give exactly what the plain regular expressions give.

``answer_heads`` must yield the matches ``_ANSWER_HEAD.finditer`` yields, and the
tag strip must equal the plain substitution: on every CoT of the realistic answer
table, and on texts built from the pieces where a shortcut could go wrong (heads
whose words are far apart, keywords inside other words, case and the letters
``ſ`` / ``ı`` / ``İ`` that ``re.IGNORECASE`` matches to ASCII ones).
"""

from __future__ import annotations

import random
import re

import pytest

from agents import gates
from agents.parsing import answer_heads as heads, json_out, thinking
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


FENCED = [
    'Here is my verdict:\n```json\n{"verdict": "Correct", "reason": "Step 4 rules out B."}\n```',
    '```JSON\n{"verdict": "Error"}\n```\nand a second one:\n```\n{"verdict": "Correct"}\n```',
    '```json {"verdict": "Correct", "reason": "fine"}```', '```Json\t\n{"a": 1}', "``` ``` ```", "``````json\n{}",
    '<think>maybe ```json {"draft": 1}``` no</think>\n```json\n{"verdict": "Error", "reason": "B, not A"}\n```',
    "no fence at all {\"verdict\": \"Correct\"}", "`json` and ``two`` backticks", "",
]
FENCE_PIECES = ["`", "``", "```", "json", "JSON", "Json", "jso", " ", "\t", "\n", "{", "}", '"verdict"', ":", "x"]


@pytest.mark.parametrize("seed", [3, 11])
def test_fenced_bodies_are_the_plain_finditer(seed: int) -> None:
    rng = random.Random(seed)
    built = ["".join(rng.choice(FENCE_PIECES) for _ in range(rng.randint(0, 16))) for _ in range(20000)]
    for text in FENCED + built:
        assert json_out._fenced(text) == [m.group(1) for m in json_out._FENCE.finditer(text)], text


SELF_PIECES = [
    "earlier", "PREVIOUS", "prior", "other", "former", "past", "the", "The", "original", "attempt", "attempts",
    "cot", "error", "Verifier's", "reviewer", "reasons", "feedback", "errors", "mistakes", "flagged", "pointed", "out",
    "above", "as", "said", "refined", "Revised", "version", "chain-of-thought", "provided", "given", "list", "in",
    "noted", "Improved", "corrected", "reasoning", "comments", "tries", "drafts", "İ", "ı", "ſ", "K", "x", "2.",
]


def test_the_self_reference_search_finds_what_the_plain_alternation_finds() -> None:
    plain = re.compile("|".join(gates._PHRASES), re.I)
    rng = random.Random(5)
    built = ["".join(rng.choice(SELF_PIECES) + rng.choice([" ", "  ", "\n", "-", ".", ""])
                     for _ in range(rng.randint(0, 9))) for _ in range(30000)]
    for text in REAL + built:
        fast, slow = gates._SELF_REFERENCE.search(text), plain.search(text)
        assert (fast and (fast.span(), fast.group(0))) == (slow and (slow.span(), slow.group(0))), text
