"""A filling disk stops a run cleanly (exit 4, one line naming the database and the space left), and a
resume after space is freed finishes byte-identical to an uninterrupted run.

The disk is real: a small tmpfs mounted for the test (root only; skipped with
the reason otherwise) and a filler file that leaves a few MB free.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from e2e_support import query, run_cli
from fault_support import QUESTIONS, TIMEOUT_S, make_config, one_line_error

MB = 1024 * 1024
SPACE = {"min_free_mb": "8", "warn_free_mb": "10"}


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mount = tmp_path / "disk"
    mount.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)], capture_output=True,
                          text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip() or proc.returncode}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path, leave_mb: int) -> Path:
    """A filler file leaving about ``leave_mb`` MB free."""
    filler = disk / "filler"
    st = os.statvfs(disk)
    size = st.f_bavail * st.f_frsize - leave_mb * MB
    with filler.open("wb") as f:
        f.truncate(0)
        chunk = b"\0" * MB
        for _ in range(size // MB):
            f.write(chunk)
    return filler


def _export(db: Path, out: Path) -> dict[str, bytes]:
    proc = run_cli("export", "--db", db, "--out", out, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def test_a_run_below_the_floor_does_not_start(small_disk: Path, tmp_path: Path) -> None:
    _fill(small_disk, leave_mb=4)
    db = small_disk / "run.db"
    proc = run_cli("run", "--config", make_config(tmp_path, **SPACE), "--input", QUESTIONS, "--db", db,
                   timeout=TIMEOUT_S)
    assert proc.returncode == 4, proc.stderr
    line = one_line_error(proc)
    assert str(db) in line and "MB free" in line and "min_free_mb" in line, line
    assert not db.exists()


def test_a_filling_disk_stops_cleanly_and_the_resume_is_byte_identical(small_disk: Path, tmp_path: Path) -> None:
    config = make_config(tmp_path, **SPACE)
    reference = tmp_path / "reference" / "run.db"
    proc = run_cli("run", "--config", config, "--input", QUESTIONS, "--db", reference, timeout=TIMEOUT_S)
    assert proc.returncode in (0, 3), proc.stderr  # 3: the sim cut one rewrite short
    expected = _export(reference, tmp_path / "expected")

    # 11 MB free: the warning after 1 MB written, the floor after 3. The 30-question run peaks at ~8.5 MB of
    # database, write-ahead log and log file (schema v6); with 16 MB free it could finish above the floor.
    filler = _fill(small_disk, leave_mb=11)
    db = small_disk / "run.db"
    proc = run_cli("run", "--config", config, "--input", QUESTIONS, "--db", db, timeout=TIMEOUT_S)  # no hang
    assert proc.returncode == 4, proc.stderr
    line = one_line_error(proc)
    assert str(db) in line and "MB free" in line and "resume" in line, line
    assert "space_warning" in proc.stderr, "no warning before the floor"
    assert query(db, "SELECT status FROM runs") == [("running",)]
    assert run_cli("check", "--db", db, timeout=TIMEOUT_S).returncode == 0, "the stop left damage"

    filler.unlink()
    proc = run_cli("resume", "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode in (0, 3), proc.stderr
    assert _export(db, tmp_path / "resumed") == expected
