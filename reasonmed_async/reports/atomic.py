"""An export appears whole or not at all: written beside the target, then swapped into place.

The files go to ``.<name>.partial-<pid>`` in the target's directory, with a
``manifest.json`` (per-file rows, bytes and SHA-256, the run ids, the config
digest), are synced, and the directory is then exchanged with the target in one
``renameat2(RENAME_EXCHANGE)`` (renamed into place when there is no target yet).
A SIGKILL at any instant leaves either the previous export or the new one at
the target, never a mix; the leftover partial directory of a killed export is
removed by the next one.  An existing non-empty target is replaced only with
``--force``; a file there is refused.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import hashlib
import json
import os
import shutil
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")
MANIFEST = "manifest.json"
_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


class ExportTargetError(ValueError):
    """The export's target cannot be used as it is (a file, or a directory with files): exit 2."""


def check_target(out: Path, *, force: bool) -> None:
    if out.is_symlink() or (out.exists() and not out.is_dir()):
        raise ExportTargetError(f"--out {out}: exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ExportTargetError(f"--out {out}: the directory is not empty; --force replaces its contents")


def _exchange(a: Path, b: Path) -> bool:
    """Swap two directories atomically (Linux renameat2); False where the call is unavailable."""
    libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    if fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _sync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_partials(out: Path) -> None:
    for leftover in out.parent.glob(f".{out.name}.partial-*"):
        pid = leftover.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not Path(f"/proc/{pid}").exists():
            shutil.rmtree(leftover, ignore_errors=True)


def file_entry(path: Path) -> dict[str, Any]:
    digest, size, lines = hashlib.sha256(), 0, 0
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
            size += len(chunk)
            lines += chunk.count(b"\n")
    entry: dict[str, Any] = {"bytes": size, "sha256": digest.hexdigest()}
    if path.suffix == ".jsonl":
        entry["rows"] = lines
    return entry


def write_manifest(directory: Path, *, run_ids: Sequence[str], config_digest: str,
                   counts: dict[str, int], not_written: Sequence[str]) -> None:
    """Nothing time-dependent: the same data gives a byte-identical manifest."""
    files = {p.name: file_entry(p) for p in sorted(directory.iterdir()) if p.is_file() and p.name != MANIFEST}
    manifest = {"run_ids": list(run_ids), "config_digest": config_digest, "counts": counts,
                "files": files, "not_written": {name: "no rows" for name in not_written}}
    (directory / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n", encoding="utf-8")


async def write_atomically(out: Path, write: Callable[[Path], Awaitable[T]], *, force: bool) -> T:
    """``write(temp_dir)``, then the temp dir swapped in at ``out``; on any error nothing changes at ``out``."""
    out = out.absolute()
    check_target(out, force=force)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(out)
    partial = out.parent / f".{out.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        result = await write(partial)
        for path in partial.iterdir():
            with path.open("rb") as f:
                os.fsync(f.fileno())
        _sync_dir(partial)
        if out.exists():
            if not _exchange(partial, out):  # no renameat2: two renames, a short window without a target
                old = out.parent / f".{out.name}.old-{os.getpid()}"
                os.rename(out, old)
                os.rename(partial, out)
                partial = old
        else:
            os.rename(partial, out)
        _sync_dir(out.parent)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return result


def drop_empty_sets(directory: Path, sets: Sequence[str], sft_sets: Sequence[str]) -> list[str]:
    """Remove the files of every set with no rows (``datasets`` cannot load an empty JSONL or Parquet
    split) and their ``dataset_info.json`` entries; the names of the files not written."""
    dropped: list[str] = []
    for name in sets:
        jsonl = directory / f"{name}.jsonl"
        if jsonl.exists() and jsonl.stat().st_size == 0:
            jsonl.unlink()
            dropped.append(jsonl.name)
            parquet = directory / f"{name}.parquet"
            if parquet.exists():
                parquet.unlink()
                dropped.append(parquet.name)
    info = directory / "dataset_info.json"
    gone = [name for name in sft_sets if f"{name}.jsonl" in dropped]
    if gone and info.exists():
        entries = json.loads(info.read_text(encoding="utf-8"))
        kept = {k: v for k, v in entries.items() if k not in gone}
        info.write_text(json.dumps(kept, indent=2) + "\n", encoding="utf-8")
    return dropped


async def export_atomically(store: Any, out: Path, config: Any, run_ids: Sequence[str], *,
                            force: bool, run_id: str | None = None,
                            exclude: frozenset[str] = frozenset()) -> tuple[Any, list[str]]:
    """The whole export (``export.export``, empty sets dropped, the manifest) swapped in at ``out``."""
    from reasonmed_async.reports.export import SFT_FILES, export
    from reasonmed_async.reports.formats import PARQUET_SETS

    async def write(directory: Path) -> tuple[Any, list[str]]:
        summary = await export(store, directory, final_attempt=config.flow.refine_attempts, run_id=run_id,
                               exclude=exclude)
        dropped = drop_empty_sets(directory, PARQUET_SETS, [f.removesuffix(".jsonl") for f in SFT_FILES])
        counts = {"questions": summary.questions, "records": summary.records, "failures": summary.failures,
                  "rejected": summary.rejected}
        write_manifest(directory, run_ids=run_ids, config_digest=config.digest, counts=counts, not_written=dropped)
        return summary, dropped

    return await write_atomically(out, write, force=force)
