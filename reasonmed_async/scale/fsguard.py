"""Refuse a checkpoint database on a network file system.

SQLite's WAL mode keeps its index in a memory-mapped ``-shm`` file that every
connection must share through the same kernel's page cache: over NFS, SMB,
Lustre, GPFS, CephFS or a FUSE file system two nodes (or even one, after a
lease hiccup) see different copies, and the database can be corrupted
silently.  So the database lives on a node-local disk; ``--allow-network-fs``
turns the refusal into a warning for a site that knows its file system locks
correctly from one node.

The file system is told by ``statfs(2)``'s ``f_type`` (its magic number), read
through ``fs_magic`` — a seam the tests replace.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys
from collections.abc import Callable
from pathlib import Path

from reasonmed_async.store.sql import StoreError

#: statfs f_type magic numbers (linux/magic.h and the file systems' own headers) of shared, networked file systems
NETWORK_FS: dict[int, str] = {
    0x6969: "NFS",
    0x517B: "SMB",
    0xFF534D42: "CIFS",
    0xFE534D42: "SMB2",
    0x0BD00BD0: "Lustre",
    0x47504653: "GPFS (IBM Storage Scale)",
    0x00C36400: "CephFS",
    0x65735546: "FUSE (e.g. sshfs, s3fs, JuiceFS)",
    0x01021997: "9P (v9fs)",
    0x5346414F: "AFS",
    0x6B414653: "AFS (kAFS)",
    0x7461636F: "OCFS2",
    0x01161970: "GFS2",
    0x19830326: "BeeGFS",
    0xAAD7AAEA: "PanFS",
    0x564C: "NCP",
}


class NetworkFilesystem(StoreError):
    """The database would live on a network file system (exit 2)."""


def fs_magic(path: str) -> int | None:
    """``statfs(path).f_type``, or None where it cannot be read (not Linux, no libc)."""
    if not sys.platform.startswith("linux"):
        return None
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return None
    libc = ctypes.CDLL(libc_name, use_errno=True)
    buf = ctypes.create_string_buffer(256)  # struct statfs is 120 bytes on 64-bit Linux; f_type comes first
    if libc.statfs(os.fsencode(path), buf) != 0:
        return None
    return ctypes.c_ulong.from_buffer(buf).value & 0xFFFFFFFF


def _existing(path: Path) -> Path:
    """The database file if it exists, else its nearest existing parent directory (where it will be created)."""
    path = path.absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path("/")


def network_fs_of(db: str | Path, *, statfs: Callable[[str], int | None] | None = None) -> str | None:
    """The name of the network file system ``db`` is (or would be created) on, or None if it is local.

    ``statfs`` (default: ``fs_magic``, looked up when called) gives a path's f_type."""
    magic = (statfs or fs_magic)(str(_existing(Path(db))))
    return None if magic is None else NETWORK_FS.get(magic)


def guard_database_location(db: str | Path, *, allow_network_fs: bool = False,
                            statfs: Callable[[str], int | None] | None = None,
                            warn: Callable[[str], None] | None = None) -> None:
    """Raise ``NetworkFilesystem`` for a database on a network file system (only warn with ``allow_network_fs``)."""
    kind = network_fs_of(db, statfs=statfs)
    if kind is None:
        return
    why = (f"{db} is on a network file system ({kind}): SQLite's WAL mode needs shared memory on a node-local"
           " disk, and over a network file system the database can be corrupted")
    if not allow_network_fs:
        raise NetworkFilesystem(f"{why}; put --db on a local disk (e.g. /tmp or the node's scratch SSD), or pass"
                                " --allow-network-fs if you accept the risk")
    (warn or _stderr)(f"reasonmed: warning: {why}; going on because of --allow-network-fs")


def _stderr(message: str) -> None:
    print(message, file=sys.stderr)
