"""A controllable clock for pacing and retry tests: time moves only when someone sleeps (or the test says so)."""

from __future__ import annotations

import asyncio


class FakeClock:
    """``now`` advances only when someone sleeps; ``sleep`` records the wait and yields to the loop once."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)
