"""One process drives a database at a time: a lock beside it, released by the kernel even on SIGKILL."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from reasonmed_async.store.sql import StoreError


class OwnerLock:
    """``<db>.lock``, held (flock) while a run, a resume or a daemon works on the database.

    Two processes delivering the same pending messages would pay for the same
    calls twice; status, export, logs and score do not deliver, so they need no lock."""

    def __init__(self, db: str | Path) -> None:
        self.path = Path(f"{db}.lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise StoreError(f"{str(self.path)[:-5]} is in use by another reasonmed process (pid {holder}):"
                             " one run, resume or daemon per database at a time") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def held_elsewhere(self) -> bool:
        """Whether some process holds the lock now (a run, resume or daemon is driving the database).

        A non-blocking shared ``flock`` that is released at once: it takes
        nothing from a holder and never waits; a SIGKILLed holder holds nothing."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return False  # never locked here
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)  # closing drops the probe's own shared lock
        return False

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
