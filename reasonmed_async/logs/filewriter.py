"""The log file's writer: JSON lines in batches, rotated by size."""

from __future__ import annotations

import logging
import logging.handlers
import os
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

FLUSH_INTERVAL_S = 0.1  # the file gets a line at most this long after it was logged


class BatchedJSONLinesFile(logging.handlers.RotatingFileHandler):
    """JSON lines, batched: a line is formatted once at ``emit`` and written with the lines around it.

    The buffer is written when its oldest line has waited ``interval_s`` (checked at each ``emit``;
    a timer started with the first line of a batch covers a quiet spell), when it holds
    ``max_lines``, and on ``flush`` / ``close`` (``logging.shutdown`` at exit).  One ``write`` and one
    flush per batch instead of per line.  Rolls over only a regular file, like the stock handler, and
    never in the middle of a line.  ``clock`` and ``start_timer`` are seams for tests."""

    _rotatable = True

    def __init__(self, filename: Path, *, interval_s: float = FLUSH_INTERVAL_S, max_lines: int = 4096,
                 clock: Callable[[], float] = time.monotonic,
                 start_timer: Callable[[float, Callable[[], None]], Any] | None = None, **kwargs: Any) -> None:
        super().__init__(filename, **kwargs)
        self.interval_s = interval_s
        self.max_lines = max_lines
        self._clock = clock
        self._start_timer = start_timer or _FlushThread()
        self._lines: list[str] = []
        self._size = 0  # characters buffered
        self._oldest = 0.0
        self._timer: Any = None

    def _open(self):  # type: ignore[no-untyped-def]
        stream = super()._open()
        self._rotatable = stat.S_ISREG(os.fstat(stream.fileno()).st_mode)
        return stream

    def emit(self, record: logging.LogRecord) -> None:  # called with the handler's lock held
        try:
            line = self.format(record) + self.terminator
        except RecursionError:
            raise
        except Exception:  # noqa: BLE001 - what logging does: report on stderr, never raise
            self.handleError(record)
            return
        self.add_line(line)

    def add_line(self, line: str) -> None:
        """Buffer one formatted line (ending in the terminator); called with the handler's lock held."""
        now = self._clock()
        if not self._lines:
            self._oldest = now
            self._timer = self._start_timer(self.interval_s, self._flush_due)
        self._lines.append(line)
        self._size += len(line)
        if len(self._lines) >= self.max_lines or now - self._oldest >= self.interval_s:
            self._write_buffer()

    def _flush_due(self) -> None:  # the timer's thread
        self.acquire()
        try:
            self._write_buffer()
        finally:
            self.release()

    def _write_buffer(self) -> None:
        lines, self._lines, size, self._size = self._lines, [], self._size, 0
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not lines:
            return
        try:
            if self.stream is None:
                self.stream = self._open()
            if self.maxBytes > 0 and self._rotatable and self.stream.tell() + size >= self.maxBytes:
                self._write_rotating(lines)
            else:
                self.stream.write("".join(lines))
            self.stream.flush()
        except Exception:  # noqa: BLE001 - what logging does: report on stderr, never raise
            self.handleError(logging.makeLogRecord({"msg": f"{len(lines)} log lines lost"}))

    def _write_rotating(self, lines: list[str]) -> None:
        """Whole lines while they fit under ``maxBytes``, then a rollover; a line alone larger stays whole."""
        first = 0
        while first < len(lines):
            written = self.stream.tell()
            room, end = self.maxBytes - written, first
            while end < len(lines) and (room > len(lines[end]) or (end == first and not written)):
                room -= len(lines[end])
                end += 1
            if end > first:
                self.stream.write("".join(lines[first:end]))
                first = end
            if first < len(lines):
                self.doRollover()

    def flush(self) -> None:
        self.acquire()
        try:
            self._write_buffer()
        finally:
            self.release()

    def close(self) -> None:
        self.flush()
        super().close()


class _FlushThread:
    """The timer of a handler's batches: one daemon thread, started with the first batch, asleep until a batch
    is armed, then waiting out the interval (or a disarm) and calling back.  ``__call__`` arms it (the
    ``start_timer`` seam); the handle's ``cancel`` disarms it."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._armed: tuple[float, Callable[[], None]] | None = None
        self._thread: threading.Thread | None = None

    def __call__(self, delay_s: float, fn: Callable[[], None]) -> _FlushThread:
        with self._cond:
            self._armed = (delay_s, fn)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="log-flush", daemon=True)
                self._thread.start()  # daemon: never keeps the process alive; logging.shutdown flushes at exit
            self._cond.notify()
        return self

    def cancel(self) -> None:
        with self._cond:
            self._armed = None
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._armed is not None)
                armed = self._armed
                assert armed is not None
                self._cond.wait(armed[0])  # the interval, or until disarmed (then nothing is due)
                fire = self._armed is armed
                if fire:
                    self._armed = None  # one call back per arming
            if fire:
                armed[1]()


class LineSink:
    """A structlog logger writing rendered lines straight into a ``BatchedJSONLinesFile``: the per-call events'
    path, without a stdlib ``LogRecord`` and the handlers it would be offered to."""

    def __init__(self, handler: BatchedJSONLinesFile, name: str) -> None:
        self.handler = handler
        self.name = name  # structlog's add_logger_name reads it

    def msg(self, line: str) -> None:
        handler = self.handler
        with handler.lock:  # what ``acquire`` / ``release`` take, without their two Python calls
            handler.add_line(line + handler.terminator)

    info = debug = warning = error = critical = exception = msg
