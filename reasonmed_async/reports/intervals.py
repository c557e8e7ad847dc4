"""Confidence intervals of proportions: the Wilson score interval (95 % by default).

Wilson rather than the normal approximation: it stays inside [0, 1] and is
honest at 0 or n successes and at small n, which a run's per-cell counts often are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

Z95 = 1.959963984540054


@dataclass(frozen=True)
class Proportion:
    successes: int
    n: int
    low: float
    high: float

    @property
    def rate(self) -> float:
        return self.successes / self.n if self.n else math.nan

    def as_dict(self) -> dict[str, float | int | None]:
        finite = self.n > 0
        return {"successes": self.successes, "n": self.n, "rate": round(self.rate, 6) if finite else None,
                "ci95_low": round(self.low, 6) if finite else None, "ci95_high": round(self.high, 6) if finite else None}


def wilson(successes: int, n: int, z: float = Z95) -> Proportion:
    """The Wilson score interval of ``successes`` out of ``n`` (NaN bounds when ``n`` is 0)."""
    if not 0 <= successes <= n:
        raise ValueError(f"wilson: need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return Proportion(0, 0, math.nan, math.nan)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return Proportion(successes, n, max(0.0, centre - half), min(1.0, centre + half))
