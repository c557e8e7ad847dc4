"""``reasonmed logs``: print the structured log of a database, filtered, and follow it live.

    reasonmed logs [--db PATH | --file LOG] [-f] [-n N] [--agent A] [--question Q]
                   [--level L] [--event E] [--json]

The log is ``<db>.log`` (JSON lines, written by a ``RotatingFileHandler``).
Without ``--json`` each event is one compact line (time, level, event,
key=value of its context); with it the JSON lines come out as they are.

``-f`` follows the file like ``tail -F``: there is no portable file-change
notification, so it looks for new data every ``FOLLOW_INTERVAL_S`` (0.1 s) —
a sleep between reads, never a busy loop.  When the file is rotated (renamed
to ``.log.1``, a new one opened), it reads the rest of the old file, then any
whole file rotated past it meanwhile, then the new file from its start; a file
that shrinks (truncated) is read again from its start.  A line is shown only
once it is complete.  Ctrl-C or SIGTERM stops it, exit 0.

Exit codes: 0 done, 1 the file could not be read, 2 no such log file
(without ``-f``, which waits for it to appear).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import signal
import sys
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import BinaryIO

from reasonmed_async.commands.summaries import SUMMARIES
from reasonmed_async.logs.setup import log_path_for
from reasonmed_async.logs.filter import Filter, parse_level, parse_line, pretty

FOLLOW_INTERVAL_S = 0.1
CHUNK = 1 << 20
MAX_BACKUPS = 1000  # how far to look for a rotated file (.log.1 ... .log.N)


def _ident(st: os.stat_result) -> tuple[int, int]:
    return st.st_dev, st.st_ino


class Follower:
    """Complete lines of a log file, in order, across rotation and truncation.

    ``poll`` returns the lines available now ([] at the end of what is written)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._files: list[BinaryIO] = []  # the one being read first; rotated-away ones before the newest
        self._ident: tuple[int, int] | None = None  # the newest file's
        self._buf = b""

    def open(self) -> bool:
        try:
            fh = self.path.open("rb")
        except FileNotFoundError:
            return False
        self._files = [fh]
        self._ident = _ident(os.fstat(fh.fileno()))
        return True

    def close(self) -> None:
        for fh in self._files:
            fh.close()
        self._files = []

    def _split(self, data: bytes) -> list[bytes]:
        *lines, self._buf = (self._buf + data).split(b"\n")
        return lines

    def rest(self) -> list[bytes]:
        """What remains of an unterminated last line (at the very end, not following)."""
        line, self._buf = self._buf, b""
        return [line] if line.strip() else []

    def poll(self) -> list[bytes]:
        while self._files:
            data = self._files[0].read(CHUNK)
            if data:
                lines = self._split(data)
                if lines:
                    return lines
                continue  # a line longer than a chunk: read on
            if len(self._files) == 1:
                self._check_rotation()
                if len(self._files) == 1:
                    return []
                continue  # read the old one to its end once more: its last lines may have landed since
            self._files.pop(0).close()  # a rotated-away file, read to its end
            if self._buf:  # a record cut at the rotation: pass it on (it will not parse)
                line, self._buf = self._buf, b""
                return [line]
        return []

    def _check_rotation(self) -> None:
        current = self._files[0]
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            return  # renamed away and not yet recreated: keep reading the old one
        if _ident(st) == self._ident:
            if st.st_size < current.tell():  # truncated in place
                current.seek(0)
                self._buf = b""
            return
        try:
            newest = self.path.open("rb")
        except FileNotFoundError:
            return  # gone again: next time
        self._files += [*self._rotated_since(current), newest]
        self._ident = _ident(os.fstat(newest.fileno()))

    def _rotated_since(self, ours: BinaryIO) -> list[BinaryIO]:
        """Whole files rotated past ours before we looked, oldest first: ``.log.k-1`` ... ``.log.1`` when
        ours is now ``.log.k``; if ours is among none of them (rotated out of existence), those written after it."""
        old = os.fstat(ours.fileno())
        newer: list[tuple[Path, int]] = []
        for k in range(1, MAX_BACKUPS + 1):
            backup = Path(f"{self.path}.{k}")
            try:
                st = os.stat(backup)
            except FileNotFoundError:
                newer = [(b, m) for b, m in newer if m > old.st_mtime_ns]
                break
            if _ident(st) == _ident(old):
                break
            newer.append((backup, st.st_mtime_ns))
        opened = []
        for backup, _ in reversed(newer):
            with contextlib.suppress(FileNotFoundError):
                opened.append(backup.open("rb"))
        return opened


def _render(lines: list[bytes], keep: Filter, as_json: bool) -> list[str]:
    out = []
    for raw in lines:
        line = raw.decode("utf-8", errors="replace").rstrip("\r")
        if not line.strip():
            continue
        event = parse_line(line)
        if event is None:
            if keep.empty:
                out.append(line)  # not JSON: shown only when nothing is filtered
        elif keep(event):
            out.append(line if as_json else pretty(event))
    return out


def _emit(lines: list[str]) -> None:
    if lines:
        sys.stdout.write("\n".join(lines) + "\n")
        sys.stdout.flush()


async def _until(stop: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await stop.wait()


async def tail(path: Path, keep: Filter, *, as_json: bool, follow: bool, last: int | None,
               stop: asyncio.Event, interval_s: float = FOLLOW_INTERVAL_S) -> int:
    follower = Follower(path)
    try:
        if not follower.open():
            if not follow:
                print(f"reasonmed: error: {path}: no such log file", file=sys.stderr)
                return 2
            print(f"reasonmed: waiting for {path} to appear", file=sys.stderr)
            while not follower.open():
                await _until(stop, interval_s)
                if stop.is_set():
                    return 0
        backlog: deque[str] = deque(maxlen=last)  # what is already there: only the last N if asked
        while not stop.is_set():  # the file as it is now
            lines = follower.poll()
            if not lines:
                break
            backlog.extend(_render(lines, keep, as_json))
            await asyncio.sleep(0)  # let a signal in between chunks of a big file
        if not follow:
            backlog.extend(_render(follower.rest(), keep, as_json))
        _emit(list(backlog))
        while follow and not stop.is_set():
            lines = follower.poll()
            if lines:
                _emit(_render(lines, keep, as_json))
                await asyncio.sleep(0)
            else:
                await _until(stop, interval_s)
        return 0
    except BrokenPipeError:  # the reader went away (| head): nothing more to say
        with contextlib.suppress(OSError):
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except OSError as exc:
        print(f"reasonmed: error: {path}: {exc}", file=sys.stderr)
        return 1
    finally:
        follower.close()


def _level(text: str) -> int:
    try:
        return parse_level(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _count(text: str) -> int:
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a count >= 0, got {text!r}")
    return int(text)


def add_arguments(p: argparse.ArgumentParser) -> None:
    where = p.add_mutually_exclusive_group()
    where.add_argument("--db", default="reasonmed.db",
                       help="the database whose log to read: <db>.log (default: reasonmed.db)")
    where.add_argument("--file", help="a log file, instead of --db")
    p.add_argument("-f", "--follow", action="store_true",
                   help=f"keep printing new events, across rotation (checks every {FOLLOW_INTERVAL_S} s); Ctrl-C stops")
    p.add_argument("-n", "--lines", type=_count, default=None, metavar="N",
                   help="of the events already in the file, only the last N that match (default: all)")
    p.add_argument("--agent", help="only this agent's events (exact)")
    p.add_argument("--question", help="only this question's events (exact id)")
    p.add_argument("--level", type=_level, default=0, help="minimum level: debug, info, warning, error, critical")
    p.add_argument("--event", help="only this event, or events starting with a prefix ending in * (llm.*)")
    p.add_argument("--json", action="store_true", help="the JSON lines as they are, instead of compact lines")


async def run_logs(args: argparse.Namespace) -> int:
    """The handler of ``reasonmed logs``."""
    path = Path(args.file) if args.file else log_path_for(args.db)
    keep = Filter(agent=args.agent, question=args.question, min_level=args.level, event=args.event)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(ValueError, RuntimeError, NotImplementedError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
            installed.append(sig)
    try:
        return await tail(path, keep, as_json=args.json, follow=args.follow, last=args.lines, stop=stop)
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)


def register(subparsers: argparse._SubParsersAction) -> None:
    """Adds ``logs`` to the ``reasonmed`` command (see ``cli.EXTRA_COMMANDS``)."""
    p = subparsers.add_parser("logs", help=SUMMARIES["logs"],
                              description=__doc__.split("\n\n")[0])
    add_arguments(p)
    p.set_defaults(handler=run_logs)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m reasonmed_async.logs.tail ...``: the same command outside the ``reasonmed`` CLI."""
    p = argparse.ArgumentParser(prog="reasonmed logs", description=__doc__.split("\n\n")[0])
    add_arguments(p)
    return asyncio.run(run_logs(p.parse_args(argv)))


if __name__ == "__main__":
    sys.exit(main())
