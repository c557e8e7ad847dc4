"""Quality gates on final CoTs: pure checks of a text, and the warnings a record carries.

- answer agreement: the CoT's stated answer must be the gold answer (a verifier can say Correct of a CoT
  that concludes otherwise: such a row would teach the wrong answer);
- self-contained: a rewritten CoT must not refer to the attempts, reasons or "original" it was shown: a
  model trained on it sees none of them;
- length and the six-step structure: warnings in the record, never a rejection.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bus import Gate

__all__ = ["Gate", "GateSettings", "SELF_CONTAINED_INSTRUCTION", "cot_warnings", "self_reference", "steps_detected"]


@dataclass(frozen=True)
class GateSettings:
    """``[gates]`` in the configuration."""

    require_answer_agreement: bool = True
    self_contained: bool = True
    min_cot_words: int = 120
    steps: int = 6

    def __post_init__(self) -> None:
        if self.min_cot_words < 0 or not 0 <= self.steps <= 12:
            raise ValueError("[gates] min_cot_words must be >= 0 and steps within 0..12")


_ATTEMPTS = r"(?:attempts?|tries|reasonings?|responses?|solutions?|versions?|drafts?|chains?[- ]of[- ]thought)"
_PHRASES = (  # ways a CoT refers to what its reader never sees
    rf"\b(?:earlier|previous|prior|other|former|past)\s+(?:\w+\s+)?{_ATTEMPTS}\b",
    rf"\bthe\s+original\s+(?:\w+\s+)?(?:{_ATTEMPTS}|cot|text|argument|explanation|answer|analysis)\b",
    r"\b(?:error|verifier|reviewer)(?:'s)?\s+(?:reasons?|feedback|comments?)\b",
    r"\b(?:the\s+)?(?:errors?|mistakes?)\s+(?:flagged|listed|noted|pointed\s+out|identified)"
    r"\s+(?:above|earlier|before|in)\b",
    r"\bas\s+(?:the\s+)?(?:reviewers?|verifiers?|feedback)\s+(?:said|noted|pointed\s+out)\b",
    r"\b(?:refined|revised|improved|corrected)\s+(?:version|reasoning|chain[- ]of[- ]thought|cot)\b",
    r"\b(?:provided|given)\s+(?:feedback|error\s+reasons?|errors?\s+(?:list|above))\b",
)
# Every phrase starts at a word boundary with one of these letters: elsewhere the search moves on at once
# instead of trying the seven alternatives, each with its own \b, at every character (half the time of a CoT's
# search); it finds what ``"|".join(_PHRASES)`` finds (tests/agents/test_fast_scans.py).
_SELF_REFERENCE = re.compile(r"\b(?=[acefgimoprtv])(?:" + "|".join(_PHRASES) + ")", re.I)

SELF_CONTAINED_INSTRUCTION = (
    "Your reasoning refers to {phrase!r}, which a reader of it alone has never seen. Rewrite the whole reasoning"
    " as a self-contained answer to the question: keep the same six steps and the same final answer, and do not"
    " mention earlier or other attempts, reasonings, reviewers, error reasons, an original or a revised version."
    " End with the line 'Final answer: <letter>'."
)


def self_reference(text: str) -> str | None:
    """The first phrase by which ``text`` refers to attempts or feedback outside itself, or None."""
    m = _SELF_REFERENCE.search(text)
    return " ".join(m.group(0).split()) if m else None


_STEP = re.compile(r"^[ \t>*_#]*(?:step[ \t]*)?\(?([1-9])[.):][ \t*_]", re.I | re.M)


def steps_detected(text: str) -> int:
    """How many distinct step numbers 1..n (``1.``, ``Step 2:``, ``**3)**``) open a line of ``text``."""
    return len({int(m.group(1)) for m in _STEP.finditer(text)})


def cot_warnings(cot: str, settings: GateSettings) -> tuple[int, tuple[str, ...]]:
    """``(steps detected, warnings)`` of a final CoT: too short, or not the six-step structure."""
    steps = steps_detected(cot)
    warnings: list[str] = []
    words = len(cot.split())
    if words < settings.min_cot_words:
        warnings.append(f"short_cot: {words} words (minimum {settings.min_cot_words})")
    if steps < settings.steps:
        warnings.append(f"steps: {steps} of {settings.steps} steps detected")
    return steps, tuple(warnings)
