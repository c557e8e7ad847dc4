"""Exports are whole or absent: SIGKILL mid-export keeps the previous one, a manifest says what is there.

``reasonmed export`` runs as a subprocess over a finished run; it is SIGKILLed
once its partial directory appears (the export is being written), and the
previous export at the target must be byte-identical afterwards.  A target that
is a file, or a non-empty directory without ``--force``, is refused in one line
(exit 2).  A set without rows is not written; every file written loads with
Hugging Face ``datasets``.
"""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import pytest

from e2e_support import cli_command, cli_env, run_cli
from fault_support import TIMEOUT_S, finished_run, one_line_error


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return finished_run(tmp_path_factory.mktemp("finished"))


def _files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.iterdir())}


def _export(db: Path, out: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli("export", "--db", db, "--out", out, *extra, timeout=TIMEOUT_S)


def test_sigkill_during_a_re_export_leaves_the_previous_export_intact(finished: Path, tmp_path: Path) -> None:
    out = tmp_path / "export"
    assert _export(finished, out).returncode == 0
    before = _files(out)
    killed = 0
    for _ in range(5):  # each attempt: kill as soon as the new export is being written
        proc = subprocess.Popen(cli_command("export", "--db", finished, "--out", out, "--force"),
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=cli_env())
        deadline = time.monotonic() + TIMEOUT_S
        partial = tmp_path / f".export.partial-{proc.pid}"
        while proc.poll() is None and not partial.exists():
            assert time.monotonic() < deadline
            time.sleep(0.001)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += proc.wait(timeout=TIMEOUT_S) == -signal.SIGKILL
        proc.wait(timeout=TIMEOUT_S)
        assert _files(out) == before, "the export at the target changed after a kill"
    assert killed, "no kill landed during an export: nothing was tested"
    proc = _export(finished, out, "--force")  # the next export clears what the killed ones left
    assert proc.returncode == 0, proc.stderr
    assert _files(out) == before
    assert not list(tmp_path.glob(".export.partial-*"))


def test_the_target_is_refused_unless_empty_or_forced(finished: Path, tmp_path: Path) -> None:
    a_file = tmp_path / "notes.txt"
    a_file.write_text("keep me\n")
    proc = _export(finished, a_file)
    assert proc.returncode == 2 and "is not a directory" in one_line_error(proc)
    assert a_file.read_text() == "keep me\n"

    full = tmp_path / "full"
    full.mkdir()
    (full / "mine.txt").write_text("mine\n")
    proc = _export(finished, full)
    assert proc.returncode == 2 and "--force" in one_line_error(proc)
    assert _files(full) == {"mine.txt": b"mine\n"}
    assert _export(finished, full, "--force").returncode == 0
    assert "mine.txt" not in _files(full)

    empty = tmp_path / "empty"
    empty.mkdir()
    assert _export(finished, empty).returncode == 0


def test_the_manifest_describes_the_export(finished: Path, tmp_path: Path) -> None:
    import hashlib

    out = tmp_path / "export"
    proc = _export(finished, out)
    assert proc.returncode == 0, proc.stderr
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["run_ids"] and len(manifest["config_digest"]) == 16
    assert manifest["counts"]["questions"] == 30
    for name, entry in manifest["files"].items():
        data = (out / name).read_bytes()
        assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
        if name.endswith(".jsonl"):
            assert entry["rows"] == data.count(b"\n")
    assert manifest["files"]["records.jsonl"]["rows"] == manifest["counts"]["records"]
    assert set(manifest["files"]) | {"manifest.json"} == set(_files(out))
    if "failures.jsonl" not in manifest["files"]:  # no failures in this run: said, not written
        assert manifest["not_written"]["failures.jsonl"] == "no rows"
        assert "not written, having no rows: failures.jsonl" in proc.stderr
    again = tmp_path / "again"
    assert _export(finished, again).returncode == 0
    assert (again / "manifest.json").read_bytes() == (out / "manifest.json").read_bytes()  # deterministic


def test_every_file_written_loads_with_datasets(finished: Path, tmp_path: Path) -> None:
    datasets = pytest.importorskip("datasets")
    datasets.disable_progress_bars()
    out = tmp_path / "export"
    assert _export(finished, out).returncode == 0
    loaded = 0
    for path in sorted(out.iterdir()):
        kind = {".jsonl": "json", ".parquet": "parquet"}.get(path.suffix)
        if kind is None:
            continue
        rows = datasets.load_dataset(kind, data_files=str(path), split="train", cache_dir=str(tmp_path / "cache"))
        assert len(rows) > 0
        loaded += 1
    assert loaded >= 8
