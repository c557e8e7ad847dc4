"""The opt-in loop-lag sampler: its percentiles, off by default, and the file it writes when on."""

from __future__ import annotations

import asyncio
import json

import pytest

from reasonmed_async.logs import loop_lag


@pytest.mark.parametrize("values, q, expected", [
    ([], 0.5, 0.0),
    ([0.004], 0.99, 0.004),
    ([0.001, 0.002, 0.003, 0.004], 0.5, 0.002),       # nearest rank: ceil(0.5 * 4) = 2nd
    ([0.001, 0.002, 0.003, 0.004], 0.51, 0.003),
    ([i / 1000 for i in range(1, 101)], 0.99, 0.099),  # 99th of 100
    ([i / 1000 for i in range(1, 101)], 1.0, 0.100),
])
def test_percentile_is_nearest_rank(values: list[float], q: float, expected: float) -> None:
    assert loop_lag.percentile(values, q) == pytest.approx(expected)


def test_summary_is_in_milliseconds() -> None:
    lags = [0.0002] * 98 + [0.015, 0.240]  # a loop mostly idle, one 15 ms and one 240 ms stall
    got = loop_lag.summarize(lags, 0.1)
    assert got["samples"] == 100 and got["interval_ms"] == pytest.approx(100)
    assert got["p50_ms"] == pytest.approx(0.2) and got["p99_ms"] == pytest.approx(15)
    assert got["max_ms"] == pytest.approx(240) and got["mean_ms"] == pytest.approx((98 * 0.2 + 255) / 100)
    # the worst stalls, in order of time: the 240 ms one came at the 100th wake-up, ~10.27 s in
    assert len(got["worst"]) == 5 and got["worst"][-2][1] == pytest.approx(15)
    assert got["worst"][-1] == [pytest.approx(10.0 + 98 * 0.0002 + 0.255, abs=1e-3), pytest.approx(240)]


def test_off_unless_the_variable_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(loop_lag.FILE_ENV, raising=False)

    async def work() -> int:
        return 3

    coro = work()
    assert loop_lag.sampled(coro) is coro  # nothing wraps it, nothing runs beside it
    assert asyncio.run(coro) == 3


def test_on_it_writes_the_figures_and_keeps_the_result(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    out = tmp_path / "lag.json"
    monkeypatch.setenv(loop_lag.FILE_ENV, str(out))
    monkeypatch.setenv(loop_lag.INTERVAL_ENV, "10")

    async def work() -> int:
        await asyncio.sleep(0.05)  # the sampler's 10 ms timers come due before this one: at least one sample
        return 7

    assert asyncio.run(loop_lag.sampled(work())) == 7
    got = json.loads(out.read_text())
    assert got["samples"] >= 1 and got["interval_ms"] == pytest.approx(10)
    assert 0 <= got["p50_ms"] <= got["p99_ms"] <= got["max_ms"]


def test_a_failing_command_still_writes_and_raises(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    out = tmp_path / "lag.json"
    monkeypatch.setenv(loop_lag.FILE_ENV, str(out))
    monkeypatch.setenv(loop_lag.INTERVAL_ENV, "not-a-number")  # falls back to 100 ms

    async def work() -> None:
        raise ValueError("bad input")

    with pytest.raises(ValueError, match="bad input"):
        asyncio.run(loop_lag.sampled(work()))
    assert json.loads(out.read_text())["interval_ms"] == pytest.approx(100)
