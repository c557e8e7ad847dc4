"""The daemon's inbox: question files dropped into a directory become jobs.

A file is claimed atomically (renamed into ``inbox/processing/``), submitted,
then moved to ``inbox/done/`` — or to ``inbox/rejected/`` beside a
``<name>.error`` that says why.  Write a file elsewhere (or under a name
starting with ``.`` or ending in ``.tmp`` / ``.part``) and rename it into the
inbox when complete: a rename is atomic, a slow write is not.

Arrivals are noticed through Linux inotify (no polling); where inotify is not
available the directory is rescanned every ``rescan_s`` seconds.
"""

from __future__ import annotations

import asyncio
import ctypes
import ctypes.util
import os
import struct
from collections.abc import Awaitable, Callable
from pathlib import Path

import structlog

log = structlog.get_logger("inbox")

SUFFIXES = (".json", ".jsonl", ".csv")
IN_CLOSE_WRITE, IN_MOVED_TO, IN_NONBLOCK = 0x00000008, 0x00000080, 0o4000

Submit = Callable[[Path], Awaitable[str]]  # returns a job id; raises to reject the file


def wanted(path: Path) -> bool:
    name = path.name
    return (path.is_file() and not name.startswith(".") and not name.endswith((".tmp", ".part"))
            and name.endswith(SUFFIXES))


class _Inotify:
    """Just enough of inotify(7) through libc: one watch, readable on the event loop."""

    def __init__(self, directory: Path) -> None:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = libc.inotify_init1(IN_NONBLOCK)
        if self.fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        if libc.inotify_add_watch(self.fd, str(directory).encode(), IN_CLOSE_WRITE | IN_MOVED_TO) < 0:
            os.close(self.fd)
            raise OSError(ctypes.get_errno(), f"inotify_add_watch {directory} failed")

    def drain(self) -> list[str]:
        names = []
        try:
            data = os.read(self.fd, 65536)
        except BlockingIOError:
            return names
        offset = 0
        while offset + 16 <= len(data):
            _wd, _mask, _cookie, length = struct.unpack_from("iIII", data, offset)
            names.append(data[offset + 16 : offset + 16 + length].rstrip(b"\0").decode(errors="replace"))
            offset += 16 + length
        return names

    def close(self) -> None:
        os.close(self.fd)


class Inbox:
    def __init__(self, directory: Path, submit: Submit, *, rescan_s: float = 2.0) -> None:
        self.directory = directory
        self._submit = submit
        self._rescan_s = rescan_s
        self.accepting = True
        for sub in ("processing", "done", "rejected"):
            (directory / sub).mkdir(parents=True, exist_ok=True)

    async def run(self) -> None:
        """Take what is already there, then whatever arrives, until cancelled."""
        loop = asyncio.get_running_loop()
        try:
            watch: _Inotify | None = _Inotify(self.directory)
        except (OSError, AttributeError) as exc:
            log.warning("inbox.polling", reason=str(exc), rescan_s=self._rescan_s)
            watch = None
        wake = asyncio.Event()
        if watch is not None:
            loop.add_reader(watch.fd, wake.set)
        try:
            await self._recover()
            while True:
                await self.scan()
                if watch is None:
                    await asyncio.sleep(self._rescan_s)
                    continue
                await wake.wait()
                wake.clear()
                watch.drain()
        finally:
            if watch is not None:
                loop.remove_reader(watch.fd)
                watch.close()

    async def _recover(self) -> None:
        """Files a crash left in processing/ go back to the inbox: a job id is stable, so nothing doubles."""
        for path in sorted((self.directory / "processing").iterdir()):
            if path.is_file():
                path.rename(self.directory / path.name)

    async def scan(self) -> None:
        for path in sorted(p for p in self.directory.iterdir() if wanted(p)):
            if not self.accepting:
                return
            await self.take(path)

    async def take(self, path: Path) -> None:
        claimed = self.directory / "processing" / path.name
        try:
            path.rename(claimed)  # atomic: a second daemon on the same inbox cannot take it too
        except FileNotFoundError:
            return
        try:
            job = await self._submit(claimed)
        except asyncio.CancelledError:
            claimed.rename(path)
            raise
        except Exception as exc:  # noqa: BLE001 - the file is rejected with the reason, the daemon goes on
            rejected = self.directory / "rejected" / path.name
            claimed.rename(rejected)
            rejected.with_name(rejected.name + ".error").write_text(f"{exc}\n", encoding="utf-8")
            log.warning("inbox.rejected", file=path.name, error=str(exc))
            return
        claimed.rename(self.directory / "done" / path.name)
        log.info("inbox.accepted", file=path.name, job=job)
