"""One process drives a database at a time: an advisory lock on the database file itself.

The lock (``flock``) belongs to the file, not to the name it was opened by, so a
symlink or a hard link to a database in use is refused like the database itself;
the kernel releases it even on SIGKILL.  (``flock`` and SQLite's own POSIX
record locks do not interact on Linux.  The descriptor is closed only after the
store's connections are, so closing it never drops a lock SQLite holds.)
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from reasonmed_async.store.errors import StoreError


def _flock_holder(st: os.stat_result) -> str | None:
    """The pid holding a flock on the file of ``st``, from ``/proc/locks``; None if none; "?" if unknowable."""
    ident = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    try:
        with open("/proc/locks", encoding="ascii", errors="replace") as f:
            for line in f:
                fields = line.split()
                if "FLOCK" in fields and ident in fields and "->" not in fields:
                    return fields[fields.index(ident) - 1]
    except OSError:
        return "?"
    return None


def holder_of(fd: int) -> str:
    """The pid holding a flock on ``fd``'s file ("?" where it cannot be told)."""
    return _flock_holder(os.fstat(fd)) or "?"


class OwnerLock:
    """Held while a run, a resume or a daemon works on the database.

    Two processes delivering the same pending messages would pay for the same
    calls twice; status, export, check, logs and score do not deliver, so they need no lock."""

    def __init__(self, db: str | Path) -> None:
        self.path = Path(db)
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot open the database: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = holder_of(fd)
            os.close(fd)
            raise StoreError(f"{self.path} is in use by another reasonmed process (pid {holder}):"
                             " one run, resume or daemon per database at a time (links to it included)") from None
        self._fd = fd

    def held_elsewhere(self) -> bool:
        """Whether some process holds the lock now (a run, resume or daemon is driving the database).

        Read from ``/proc/locks`` by the file's identity, without opening the file: a reader that has
        the database open through SQLite must not open and close another descriptor of it (closing
        one drops every POSIX lock the process holds on the file, SQLite's included).  Where
        ``/proc/locks`` cannot be read, a non-blocking shared ``flock`` probe, released at once."""
        try:
            holder = _flock_holder(os.stat(self.path))
        except OSError:
            return False  # no database: never locked
        if holder != "?":
            return holder is not None
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None
