"""Quality gates: the checks a final CoT must pass before it is exported (issue 12)."""

from __future__ import annotations

from enum import StrEnum


class Gate(StrEnum):
    """A quality gate that rejected a CoT.  ``StageFailed.gate`` names it; failures.jsonl and status count it."""

    ANSWER_AGREEMENT = "answer_agreement"  # the CoT's stated answer is not the gold answer (whatever the verifier said)
    SELF_CONTAINED = "self_contained"      # a rewritten CoT still refers to earlier attempts after being sent back once
