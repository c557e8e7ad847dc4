"""The payloads messages carry: the question, a reasoning path, a judgement, provenance, rewrite inputs.

Frozen ``msgspec.Struct``s validated when built and when decoded, as the messages
(``bus/messages.py``) that carry them are.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import msgspec

from .vocabulary import FailureKind, Stage

Tier = Literal["easy", "medium", "difficult"]
VerdictLabel = Literal["Correct", "Error"]
Origin = Literal["generated", "refined", "optimized", "regenerated"]

LETTERS = "ABCDEFGHIJ"


def _digest(*parts: object) -> str:
    joined = "\x1f".join([str(p) for p in parts])
    return hashlib.blake2b(joined.encode(), digest_size=12).hexdigest()


class Question(msgspec.Struct, frozen=True, kw_only=True):
    """A multiple-choice question with its known answer (an option index)."""

    id: str
    stem: str
    options: tuple[str, ...]
    answer: int
    source: str = "generic"
    context: str = ""
    ordinal: int = 0
    duplicate_ids: tuple[str, ...] = ()  # ids of the same question merged into this one at intake

    def __post_init__(self) -> None:
        if not self.id:
            raise ValueError("question id is empty")
        if not self.stem.strip():
            raise ValueError(f"question {self.id}: stem is empty")
        if not 2 <= len(self.options) <= len(LETTERS):
            raise ValueError(f"question {self.id}: needs 2..{len(LETTERS)} options, got {len(self.options)}")
        if not 0 <= self.answer < len(self.options):
            raise ValueError(f"question {self.id}: answer index {self.answer} is not an option")

    @property
    def answer_letter(self) -> str:
        return LETTERS[self.answer]

    @property
    def answer_text(self) -> str:
        return self.options[self.answer]


class Provenance(msgspec.Struct, frozen=True, kw_only=True):
    """Who wrote a text, and how: enough to reproduce or audit the call."""

    role: str
    model: str
    backend: str
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    template: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Judgement(msgspec.Struct, frozen=True, kw_only=True):
    """The verifier's view of one path: a verdict, or why there is none.

    ``model`` / ``temperature`` / ``stated_answer`` describe the path judged (its generator), ``judge``
    the call that judged it; ``stage`` and ``kind`` say where and why a path has no verdict."""

    path: str
    verdict: VerdictLabel | None
    reason: str
    stage: Stage = Stage.VERIFY
    kind: FailureKind | None = None  # why there is no verdict (None when there is one)
    model: str = ""
    temperature: float | None = None
    stated_answer: str | None = None
    judge: Provenance | None = None


class RewriteInput(msgspec.Struct, frozen=True, kw_only=True):
    """What a rewriting stage was given: the CoT before (empty when writing from scratch) and the reasons.

    ``resent`` is the phrase for which the rewrite was sent back once to be made self-contained ("" if not)."""

    attempt: int
    origin: Origin
    source_path: str
    cot_before: str
    reasons: tuple[Judgement, ...] = ()
    resent: str = ""


class Path(msgspec.Struct, frozen=True, kw_only=True):
    """One reasoning path: a CoT under its name (``qwen_1``, ``qwen_1.r1``, ``regen_1``).

    ``rewrites`` lists, in order, the input of every rewrite that led to this CoT."""

    name: str
    cot: str
    stated_answer: str | None = None
    thinking: str = ""
    origin: Origin = "generated"
    provenance: tuple[Provenance, ...] = ()
    rewrites: tuple[RewriteInput, ...] = ()

    def __post_init__(self) -> None:
        if not self.name:
            raise ValueError("path name is empty")
