"""``reasonmed retry`` against a real local server: 10 % of requests fail for good (a 400 for that body every
time), the run exits 3; the server is fixed; ``retry`` makes every question final and the export is byte-identical
to that of a run whose calls all succeeded the first time."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from fake_llm_server import Faults, FakeLLMServer

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = ROOT / "examples" / "questions.jsonl"
KEY = "sk-retry-test-00112233445566778899"
FILES = ("reasonmed.jsonl", "cotmed.jsonl", "responsemed.jsonl", "records.jsonl", "failures.jsonl")
FAST_RETRY = """
[retry]
attempts = 2
base_s = 0.01
cap_s = 0.05
timeout_s = 20
handler_attempts = 2
"""

pytestmark = pytest.mark.slow


async def _cli(*args: object, env: dict[str, str]) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "reasonmed_async.cli", *map(str, args), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    return proc.returncode or 0, out.decode(), err.decode()


def _config(tmp_path: Path) -> Path:
    text = (ROOT / "examples" / "openai.toml").read_text()
    start, end = text.index("[retry]"), text.index("[store]")
    path = tmp_path / "openai.toml"
    path.write_text(text[:start] + FAST_RETRY.strip() + "\n\n" + text[end:])
    return path


def _exported(out: Path) -> dict[str, bytes]:
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir())}  # a set without rows is not written
    assert set(FILES) - {"failures.jsonl"} <= set(files), sorted(files)
    return files


async def test_retry_after_the_server_is_fixed_gives_the_export_of_a_clean_run(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("REASONMED_", "AZURE_OPENAI"))}
    config = _config(tmp_path)
    async with FakeLLMServer(api_key=KEY) as server:
        env.update(REASONMED_OPENAI_BASE_URL=server.openai_url, REASONMED_OPENAI_API_KEY=KEY,
                   REASONMED_OPENAI_MODEL="fake-model")
        clean, faulty = tmp_path / "clean.db", tmp_path / "faulty.db"
        rc, _, err = await _cli("run", "--config", config, "--input", QUESTIONS, "--db", clean, "--limit", 16, env=env)
        assert rc == 0, err
        assert (await _cli("export", "--db", clean, "--out", tmp_path / "clean", env=env))[0] == 0

        server.faults = Faults(seed=5, rate_400=0.10)  # one request in ten fails, every time it is sent
        start = len(server.requests)
        rc, out, err = await _cli("run", "--config", config, "--input", QUESTIONS, "--db", faulty, "--limit", 16,
                                  env=env)
        assert rc == 3, err  # completed, but some questions failed
        assert "questions failed" in out and f"reasonmed retry --db {faulty}" in out
        refused = sum(r.status == 400 for r in server.requests)
        assert refused > 0
        rc, _, err = await _cli("resume", "--db", faulty, env=env)
        assert rc == 2 and "reasonmed retry" in err, err  # not a dead end: it names the way out

        server.faults = Faults()  # the server is fixed
        before = len(server.requests)
        faulty_run = before - start
        rc, out, err = await _cli("retry", "--db", faulty, env=env)
        assert rc == 0, err
        assert "made pending again" in err
        reissued = len(server.requests) - before
        rc, _, err = await _cli("export", "--db", faulty, "--out", tmp_path / "retried", env=env)
        assert rc == 0, err
        assert (await _cli("retry", "--db", faulty, env=env))[0] == 0  # nothing left: a no-op

    clean_files, retried = _exported(tmp_path / "clean"), _exported(tmp_path / "retried")
    assert set(retried) == set(clean_files)
    for name in set(clean_files) - {"manifest.json"}:  # the manifest names each run's own id and config digest
        assert retried[name] == clean_files[name], f"{name} differs from the clean run's after retry"
    assert 0 < reissued < faulty_run / 2, "retry re-paid for calls that had succeeded"
