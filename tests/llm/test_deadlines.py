"""``Deadlines``: one timer for a backend's exchanges, with ``asyncio.timeout``'s outcomes — a late exchange
ends in ``TimeoutError``, one that ends in time is never touched, a cancellation from outside still propagates.
The event loop's clock is the test's (``ManualClockLoop``): time moves only when the test moves it."""

from __future__ import annotations

import asyncio

import pytest

from reasonmed_async.llm.deadlines import Deadlines


class ManualClockLoop(asyncio.SelectorEventLoop):
    def __init__(self) -> None:
        super().__init__()
        self.now = 1000.0

    def time(self) -> float:
        return self.now


@pytest.fixture
def run():
    loop = ManualClockLoop()
    try:
        yield loop.run_until_complete
    finally:
        loop.close()


async def exchange(deadlines: Deadlines, answer: asyncio.Future) -> str:
    """What ``post_chat`` does around its request: start, await, end (with the error, if any)."""
    deadline = deadlines.start()
    try:
        result = await answer
    except BaseException as exc:
        deadlines.end(deadline, exc)
        raise
    deadlines.end(deadline)
    return result


async def settle(loop: ManualClockLoop, advance_s: float = 0.0) -> None:
    """Let every ready task run, move the clock, and let the timer and the tasks it cancels run."""
    for _ in range(3):
        await asyncio.sleep(0)
    loop.now += advance_s
    for _ in range(3):
        await asyncio.sleep(0)


def test_a_late_exchange_times_out_and_the_next_is_timed_from_its_own_start(run) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(10.0)
        first = asyncio.ensure_future(exchange(deadlines, loop.create_future()))
        await settle(loop, 4.0)
        second = asyncio.ensure_future(exchange(deadlines, loop.create_future()))
        await settle(loop, 6.0)  # 10 s after the first started, 6 s after the second
        assert first.done() and isinstance(first.exception(), TimeoutError)
        assert not second.done() and len(deadlines) == 1
        await settle(loop, 3.9)
        assert not second.done()
        await settle(loop, 0.1)
        assert isinstance(second.exception(), TimeoutError)
        assert len(deadlines) == 0 and deadlines._timer is None

    run(main())


def test_an_exchange_that_answers_in_time_is_never_cancelled(run) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(10.0)
        answer = loop.create_future()
        task = asyncio.ensure_future(exchange(deadlines, answer))
        await settle(loop, 9.0)
        answer.set_result("ok")
        await settle(loop)
        assert task.result() == "ok" and task.cancelling() == 0 and len(deadlines) == 0
        await settle(loop, 5.0)  # past its deadline: the timer fires, finds nothing due, and is not set again
        assert not task.cancelled() and deadlines._timer is None

    run(main())


def test_a_cancellation_from_outside_propagates_even_when_the_deadline_passed_too(run) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(10.0)
        plain = asyncio.ensure_future(exchange(deadlines, loop.create_future()))
        both = asyncio.ensure_future(exchange(deadlines, loop.create_future()))
        await settle(loop)
        plain.cancel()
        await settle(loop)
        assert plain.cancelled()
        loop.now += 10.0
        both.cancel()  # cancelled by its owner (a TaskGroup, a shutdown) as the deadline fires
        await settle(loop)
        assert both.cancelled()  # not turned into a TimeoutError

    run(main())


def test_a_shorter_timeout_after_a_reload_applies_to_the_exchanges_started_after_it(run) -> None:
    async def main() -> None:
        loop = asyncio.get_running_loop()
        deadlines = Deadlines(600.0)
        old = asyncio.ensure_future(exchange(deadlines, loop.create_future()))
        await settle(loop)
        deadlines.timeout_s = 5.0
        new = asyncio.ensure_future(exchange(deadlines, loop.create_future()))
        await settle(loop, 5.0)
        assert isinstance(new.exception(), TimeoutError) and not old.done()
        old.cancel()
        await settle(loop)

    run(main())
