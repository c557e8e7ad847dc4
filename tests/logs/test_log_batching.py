"""The log file is written in batches: within the interval (controllable clock, explicit timer), and at shutdown;
per-call events below the effective level are never built."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
import structlog

from agents.llm import ChatMessage, ChatRequest, Completion
from reasonmed_async.llm import cache
from reasonmed_async.llm.cache import CachedClient
from reasonmed_async.logs.filewriter import BatchedJSONLinesFile
from reasonmed_async.logs.setup import configure, per_call_enabled


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Timers:
    """Records the timers a handler asks for instead of starting threads; ``fire`` runs one."""

    def __init__(self) -> None:
        self.started: list[tuple[float, object]] = []
        self.cancelled = 0

    def __call__(self, delay_s, fn):
        timers = self

        class Timer:
            def cancel(self) -> None:
                timers.cancelled += 1

        self.started.append((delay_s, fn))
        return Timer()

    def fire(self, index: int = -1) -> None:
        self.started[index][1]()


def record(n: int) -> logging.LogRecord:
    return logging.makeLogRecord({"msg": f"line {n}", "levelno": logging.INFO, "levelname": "INFO"})


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


@pytest.fixture
def handler(tmp_path):
    clock, timers = Clock(), Timers()
    h = BatchedJSONLinesFile(tmp_path / "x.log", clock=clock, start_timer=timers, encoding="utf-8")
    h.setFormatter(logging.Formatter("%(message)s"))
    yield h, clock, timers, tmp_path / "x.log"
    h.close()


def test_lines_wait_for_the_interval_then_go_out_together(handler):
    h, clock, timers, path = handler
    h.handle(record(1))
    clock.now += 0.05
    h.handle(record(2))
    assert lines(path) == []  # buffered: the oldest line waited 0.05 s
    assert [d for d, _ in timers.started] == [h.interval_s] and h.interval_s <= 0.1  # one timer per batch
    clock.now += 0.06
    h.handle(record(3))  # the oldest line has now waited 0.11 s: the batch is written
    assert lines(path) == ["line 1", "line 2", "line 3"]
    assert timers.cancelled == 1  # its timer is not needed any more
    h.handle(record(4))
    assert lines(path) == ["line 1", "line 2", "line 3"] and len(timers.started) == 2  # a new batch, a new timer


def test_a_quiet_spell_is_covered_by_the_timer(handler):
    h, clock, timers, path = handler
    h.handle(record(1))
    assert lines(path) == []
    timers.fire()  # no other line comes: the timer writes it
    assert lines(path) == ["line 1"]


def test_close_writes_what_is_buffered(handler):
    h, _clock, _timers, path = handler
    for n in range(5):
        h.handle(record(n))
    assert lines(path) == []
    h.close()
    assert lines(path) == [f"line {n}" for n in range(5)]


def test_a_full_buffer_is_written_at_once(tmp_path):
    timers = Timers()
    h = BatchedJSONLinesFile(tmp_path / "x.log", max_lines=3, clock=Clock(), start_timer=timers, encoding="utf-8")
    h.setFormatter(logging.Formatter("%(message)s"))
    for n in range(7):
        h.handle(record(n))
    assert lines(tmp_path / "x.log") == [f"line {n}" for n in range(6)]
    h.close()
    assert len(lines(tmp_path / "x.log")) == 7


def test_rollover_splits_a_batch_on_line_boundaries(tmp_path):
    h = BatchedJSONLinesFile(tmp_path / "x.log", maxBytes=40, backupCount=3, clock=Clock(), start_timer=Timers(),
                             encoding="utf-8")
    h.setFormatter(logging.Formatter("%(message)s"))
    for n in range(10):  # 7 characters a line: 5 lines fit under 40 bytes
        h.handle(record(n))
    h.close()
    files = [tmp_path / "x.log.1", tmp_path / "x.log"]
    assert not (tmp_path / "x.log.2").exists()
    assert [line for f in files for line in lines(f)] == [f"line {n}" for n in range(10)]
    assert all(f.stat().st_size < 40 for f in files)


def test_logging_shutdown_writes_the_buffer(tmp_path, restore_logging):
    configure(log_file=tmp_path / "x.db.log", file_level=logging.INFO)
    structlog.get_logger("t").info("run.started", run="r")
    logging.shutdown()  # what the interpreter runs at exit
    [event] = [json.loads(line) for line in lines(tmp_path / "x.db.log")]
    assert event["event"] == "run.started"


class MemoryStore:
    def __init__(self) -> None:
        self.data: dict[str, bytes] = {}

    async def cache_get(self, key):
        return self.data.get(key)

    def cache_put(self, key, model, payload, stage, endpoint, prompt=0, completion=0):
        self.data[key] = payload
        return committed()

    def count_call(self, *args):
        return committed()


def committed() -> asyncio.Future[None]:
    """A write-behind's future, as the store sets it once the write is committed (here at once)."""
    done = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


class Backend:
    async def complete(self, request):
        return Completion(text="ok", endpoint="http://x/v1")


@pytest.mark.parametrize(("file_level", "console_level", "built"), [
    (logging.INFO, logging.INFO, 1),
    (logging.WARNING, logging.INFO, 0),  # the console never shows per-call events above DEBUG
    (logging.WARNING, logging.DEBUG, 1),
    (logging.ERROR, logging.WARNING, 0),
])
async def test_per_call_event_below_the_effective_level_is_not_built(tmp_path, restore_logging, monkeypatch,
                                                                     file_level, console_level, built):
    configure(log_file=tmp_path / "x.db.log", file_level=file_level, console_level=console_level)
    made: list[str] = []
    monkeypatch.setattr(cache, "_log_call", lambda _log, model, *_: made.append(model))
    client = CachedClient(Backend(), MemoryStore())
    await client.complete(ChatRequest(model="m", messages=(ChatMessage("user", "hi"),), meta={"task": "generate"}))
    assert len(made) == built
    assert per_call_enabled() == bool(built)


def test_the_flush_thread_calls_back_once_armed_and_never_for_a_cancelled_batch():
    from threading import Event

    from reasonmed_async.logs.filewriter import _FlushThread

    timer, fired, second = _FlushThread(), [], Event()
    timer(60.0, lambda: fired.append("cancelled batch")).cancel()  # written by emit meanwhile: nothing is due
    timer(0.0, lambda: (fired.append("due batch"), second.set()))
    assert second.wait(10)  # an event, not a sleep: the thread wakes as soon as the interval is up
    assert fired == ["due batch"]
