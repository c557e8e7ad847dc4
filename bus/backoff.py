"""Bounded retry with exponential backoff and full jitter: pure arithmetic."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Backoff:
    """``attempts`` tries in all; the wait before try k+1 is uniform in [0, min(cap, base·2^(k-1))]."""

    attempts: int = 3
    base_s: float = 0.05
    cap_s: float = 5.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("Backoff.attempts must be >= 1")
        if self.base_s < 0 or self.cap_s < 0:
            raise ValueError("Backoff delays must be >= 0")

    def ceiling(self, failed_attempts: int) -> float:
        """The longest wait after ``failed_attempts`` failures (1-based)."""
        return min(self.cap_s, self.base_s * 2 ** max(0, failed_attempts - 1))

    def delay(self, failed_attempts: int, *, at_least: float = 0.0) -> float:
        """Seconds to wait before the next try; ``at_least`` honours a server's Retry-After."""
        return max(at_least, self.rng.uniform(0.0, self.ceiling(failed_attempts)))
