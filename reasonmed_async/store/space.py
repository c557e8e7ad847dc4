"""Free space on the database's filesystem: checked at start, watched after every group commit.

Below ``[store] warn_free_mb`` a warning is logged (once per crossing); below
``[store] min_free_mb`` the run stops cleanly — intake stops, handlers in flight
finish and are checkpointed — and the command exits 4 (resumable) with one line
naming the database and the space left.  Free the space and ``resume``: the run
finishes as if it had not stopped.  The floor keeps room for what the handlers
in flight still write, so SQLite never meets a full disk in the ordinary case.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import structlog

log = structlog.get_logger("store")
MB = 1024 * 1024


class LowDiskSpace(Exception):
    """Free space fell below the floor: the run stopped, resumable (exit 4)."""


def free_bytes(path: Path) -> int:
    """Bytes an unprivileged writer may still use on the filesystem holding ``path`` (or its directory)."""
    try:  # one system call after every commit: the database exists then
        st = os.statvfs(path)
    except FileNotFoundError:
        st = os.statvfs(path.parent)
    return st.f_bavail * st.f_frsize


def low_space_line(db: Path, free: int, floor_mb: float) -> str:
    return (f"{db}: {free / MB:.1f} MB free on its filesystem, below the floor of {floor_mb:g} MB"
            f" ([store] min_free_mb): free some space, then `reasonmed resume --db {db}`")


def check_free(db: Path, floor_mb: float) -> None:
    """At start: refuse to begin below the floor."""
    free = free_bytes(db)
    if free < floor_mb * MB:
        raise LowDiskSpace(low_space_line(db, free, floor_mb))


class SpaceWatch:
    """Called after each commit (a ``statvfs``: microseconds); ``on_floor`` once the floor is crossed."""

    def __init__(self, db: Path, *, warn_mb: float, floor_mb: float, measure: Callable[[Path], int] = free_bytes) -> None:
        self.db = db
        self.warn = warn_mb * MB
        self.floor_mb = floor_mb
        self.floor = floor_mb * MB
        self._measure = measure
        self._warned = False
        self.low: LowDiskSpace | None = None
        self.on_floor: Callable[[], None] | None = None

    def after_commit(self) -> None:
        if self.low is not None:
            return
        free = self._measure(self.db)
        if free < self.floor:
            self.low = LowDiskSpace(low_space_line(self.db, free, self.floor_mb))
            log.error("store.low_space", db=str(self.db), free_mb=round(free / MB, 1), floor_mb=self.floor_mb)
            if self.on_floor is not None:
                self.on_floor()
        elif free < self.warn and not self._warned:
            self._warned = True
            log.warning("store.space_warning", db=str(self.db), free_mb=round(free / MB, 1),
                        warn_mb=self.warn / MB, floor_mb=self.floor_mb)
        elif free >= self.warn:
            self._warned = False
