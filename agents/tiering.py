"""The tier router: pure arithmetic over a question's verdicts."""

from __future__ import annotations

from bus.messages import Tier

from .settings import TierPolicy


def assign_tier(errors: int, correct: int, policy: TierPolicy) -> Tier:
    """Easy, medium or difficult by the number of Error verdicts.

    Verdicts that never parsed are not errors: the caller counts only usable
    ones.  A question left with no correct path (possible when some verdicts
    were unusable) has nothing to rank or refine, so it goes to the stronger
    model like a difficult one."""
    if errors < 0 or correct < 0:
        raise ValueError("counts must be >= 0")
    if correct == 0:
        return "difficult"
    if errors <= policy.easy_max:
        return "easy"
    if errors <= policy.medium_max:
        return "medium"
    return "difficult"
