"""One vocabulary for where work is and why it failed: stages and failure kinds as enums.

Every module that decides something about a stage or a failure (tierer, status, jobs,
export, config keys, tests) compares these members, never a reason text. ``StrEnum``
keeps the wire and database form the plain lower-case word.
"""

from __future__ import annotations

from enum import StrEnum


class Stage(StrEnum):
    """A step of the ReasonMed flow (SPEC §2, "The flow as messages")."""

    GENERATE = "generate"
    VERIFY = "verify"
    TIER = "tier"
    RANK = "rank"
    REFINE = "refine"
    REGENERATE = "regenerate"
    REVERIFY = "reverify"
    SUMMARIZE = "summarize"
    ASSEMBLE = "assemble"
    SCORE = "score"

    @property
    def per_path(self) -> bool:
        """A failure here loses one of the nine paths, not the question: the tierer decides what follows."""
        return self in (Stage.GENERATE, Stage.VERIFY)


class FailureKind(StrEnum):
    """Why a stage gave up on its input."""

    CALL_FAILED = "call_failed"      # the LLM call failed for good (a permanent error, or retries spent)
    UNPARSEABLE = "unparseable"      # the output did not parse, corrections included; the raw text is kept
    TRUNCATED = "truncated"          # finish_reason=length: the output was cut at the token limit
    REJECTED = "rejected"            # the method's own verdict: re-verification or a quality gate said no
    INSUFFICIENT = "insufficient"    # too few usable verdicts to tier the question
    INTERNAL = "internal"            # a bug or an unexpected error in a handler
