"""SIGKILL mid-run on the v3 layout (texts stored once, referenced by messages and cached completions).

A message and the texts it references are written in one transaction, so a database killed at any instant holds
no reference to a text it lacks: ``check`` finds nothing wrong right after each kill, and the resumed run's
export is byte for byte that of an uninterrupted run.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e_support import EXPORT_FILES, query, run_cli
from fault_support import QUESTIONS, TIMEOUT_S, running, slow_config, wait_calls

KILLS_AT = (40, 150, 330)  # simulated calls made before each SIGKILL (a run makes ~650)


def _export(db: Path, out: Path) -> dict[str, bytes]:
    proc = run_cli("export", "--db", db, "--out", out, timeout=TIMEOUT_S)
    assert proc.returncode == 0, proc.stderr
    return {name: (out / name).read_bytes() for name in EXPORT_FILES if (out / name).exists()}


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_exports_byte_for_byte_an_uninterrupted_run(tmp_path):
    log = tmp_path / "calls.log"
    config = slow_config(tmp_path, log)
    db = tmp_path / "killed.db"
    for i, calls in enumerate(KILLS_AT):
        args = ["run", "--config", config, "--input", QUESTIONS, "--db", db] if i == 0 else ["resume", "--db", db]
        with running(args, log, calls=1) as proc:
            wait_calls(proc, log, calls)
        assert query(db, "SELECT status FROM runs") == [("running",)], "the run ended before the kill"
        check = run_cli("check", "--db", db, timeout=TIMEOUT_S)
        assert check.returncode == 0, check.stdout + check.stderr  # no message references a text it lacks
        assert query(db, "SELECT COUNT(*) FROM texts")[0][0] > 0
    proc = run_cli("resume", "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode in (0, 3), proc.stderr
    clean = tmp_path / "clean.db"
    proc = run_cli("run", "--config", config, "--input", QUESTIONS, "--db", clean, timeout=TIMEOUT_S)  # one run id
    assert proc.returncode in (0, 3), proc.stderr
    killed, uninterrupted = _export(db, tmp_path / "killed"), _export(clean, tmp_path / "clean")
    assert "reasonmed.jsonl" in killed and killed == uninterrupted
