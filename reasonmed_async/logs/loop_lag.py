"""Opt-in event-loop lag sampler, for capacity benchmarks (off unless ``REASONMED_LOOP_LAG_FILE`` is set).

With ``REASONMED_LOOP_LAG_FILE=/path/lag.json`` a command's event loop carries one extra task that
sleeps ``REASONMED_LOOP_LAG_INTERVAL_MS`` (default 100) at a time and records how late each wake-up
came: the time a ready callback waits for the loop, which is what every request, commit and log
line in the process waits too.  When the command ends, the file gets the percentiles as JSON
(``summarize``).  Without the variable ``sampled(coro)`` is ``coro`` itself: nothing runs, nothing
is written.  It is a measuring timer, not a poll: it waits for nothing but the clock.
"""

from __future__ import annotations

import asyncio
import json
import os
from array import array
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

FILE_ENV = "REASONMED_LOOP_LAG_FILE"
INTERVAL_ENV = "REASONMED_LOOP_LAG_INTERVAL_MS"
T = TypeVar("T")


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q``-quantile (0..1) of sorted values, nearest-rank (the value at rank ceil(q·n)); 0 for none."""
    if not ordered:
        return 0.0
    rank = max(1, -int(-q * len(ordered) // 1))
    return ordered[min(rank, len(ordered)) - 1]


def summarize(lags_s: Sequence[float], interval_s: float) -> dict[str, Any]:
    """Lag figures in milliseconds: samples, mean, p50, p90, p99, p99.9, max, and the five worst stalls
    as ``[seconds since the sampler started, lag ms]`` (when in the command they happened)."""
    worst = sorted(range(len(lags_s)), key=lags_s.__getitem__, reverse=True)[:5]
    ordered = sorted(lags_s)
    ms = {f"p{label}_ms": percentile(ordered, q) * 1e3 for label, q in (("50", 0.5), ("90", 0.9), ("99", 0.99),
                                                                        ("99_9", 0.999))}
    return {"samples": len(ordered), "interval_ms": interval_s * 1e3,
            "mean_ms": (sum(ordered) / len(ordered) * 1e3) if ordered else 0.0, **ms,
            "max_ms": (ordered[-1] * 1e3) if ordered else 0.0,
            "worst": [[round((i + 1) * interval_s + sum(lags_s[: i + 1]), 3), lags_s[i] * 1e3] for i in sorted(worst)]}


async def _sample(lags: array, interval_s: float) -> None:
    loop = asyncio.get_running_loop()
    while True:
        due = loop.time() + interval_s
        await asyncio.sleep(interval_s)
        lags.append(max(0.0, loop.time() - due))


async def _with_sampler(coro: Coroutine[Any, Any, T], out: Path, interval_s: float) -> T:
    lags: array = array("d")
    sampler = asyncio.get_running_loop().create_task(_sample(lags, interval_s), name="loop-lag-sampler")
    try:
        return await coro
    finally:
        sampler.cancel()
        try:
            await sampler
        except asyncio.CancelledError:
            if asyncio.current_task().cancelling():  # type: ignore[union-attr]  # we were cancelled too
                raise
        finally:
            out.write_text(json.dumps(summarize(lags, interval_s)) + "\n", encoding="utf-8")


def sampled(coro: Coroutine[Any, Any, T]) -> Coroutine[Any, Any, T]:
    """``coro``, with the loop-lag sampler around it when ``REASONMED_LOOP_LAG_FILE`` is set."""
    target = os.environ.get(FILE_ENV)
    if not target:
        return coro
    try:
        interval_ms = float(os.environ.get(INTERVAL_ENV) or 100)
    except ValueError:  # a benchmark knob: a bad value falls back to the default rather than stopping the run
        interval_ms = 100.0
    return _with_sampler(coro, Path(target), max(1.0, interval_ms) / 1e3)
