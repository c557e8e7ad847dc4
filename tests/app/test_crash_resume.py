"""SIGKILL at random instants, resume, and get exactly the data of an uninterrupted run.

The ``reasonmed`` command runs as a subprocess on 40 real PubMedQA questions
with the sim backend (3 ms simulated latency, every executed call logged).  It
is killed with SIGKILL three times at seeded-random moments and resumed each
time; an uninterrupted run of the same configuration goes into another
database.  The exports must be byte-identical, and the calls paid again after
the kills must be only those that were in flight when they landed.  A SIGTERM
instead stops cleanly (exit 0, calls in flight stored) and a resume then pays
for no call twice.
"""

from __future__ import annotations

import random
import signal
import subprocess
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

from bus import FailureKind, Question, QuestionIngested, Routed, Stage, StageFailed
from e2e_support import (
    EXPORT_FILES,
    cache_keys,
    call_log_keys,
    cli_command,
    cli_env,
    query,
    run_cli,
    sim_config,
    with_concurrency,
)
from reasonmed_async.reports.export import export
from reasonmed_async.store.checkpoint import CheckpointStore

LIMIT = 40
KILLS = 3
SEED = 20250611
CALL_LOG = "calls.log"


def _workdir(root: Path, name: str) -> Path:
    path = root / name
    path.mkdir()
    return path


def _lines(path: Path) -> int:
    if not path.exists():
        return 0
    with path.open("rb") as f:
        return sum(1 for _ in f)


class Killed:
    """What the database and the call log held right after one SIGKILL."""

    def __init__(self, db: Path, log: Path) -> None:
        keys = call_log_keys(log)
        self.logged = len(keys)
        self.cached = cache_keys(db)
        self.in_flight = set(keys) - self.cached  # started (logged) but no stored answer: paid again on resume


def _run_and_kill(cmd: list[str], cwd: Path, log: Path, db: Path, delay_s: float, stdio: Path) -> Killed | None:
    """Start ``cmd``; once it has made its first simulated call, SIGKILL it ``delay_s`` later.

    Returns None if it finished (exit 0) before the kill could land."""
    before = _lines(log)
    with (stdio.with_suffix(".out")).open("w") as out, (stdio.with_suffix(".err")).open("w") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=cli_env(), cwd=cwd)
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None and _lines(log) <= before:
                assert time.monotonic() < deadline, f"{cmd}: no simulated call within 60 s"
                time.sleep(0.005)
            if proc.poll() is None:
                time.sleep(delay_s)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    if rc == 0:
        return None
    assert rc == -signal.SIGKILL, f"{cmd} exited {rc}: {stdio.with_suffix('.err').read_text()}"
    return Killed(db, log)


def _export(db: Path, out: Path) -> dict[str, bytes]:
    r = run_cli("export", "--db", db, "--out", out)
    assert r.returncode == 0, r.stderr
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir())}  # a set without rows is not written
    assert set(EXPORT_FILES) - {"failures.jsonl"} <= set(files), sorted(files)
    return files


@dataclass
class CleanRun:
    """The uninterrupted run everything is compared with."""

    config: Path
    run_args: tuple[object, ...]
    wall_s: float
    exported: dict[str, bytes]
    keys: list[str]


@pytest.fixture(scope="module")
def clean_run(pubmedqa, tmp_path_factory) -> CleanRun:
    root = tmp_path_factory.mktemp("clean-run")
    config = root / "sim.toml"
    # the call log's path is relative: every run shares one config text (so one run id), and each
    # process, started in its own directory, logs to its own file
    config.write_text(with_concurrency(sim_config(latency_ms="3", call_log=f'"{CALL_LOG}"'), 2), encoding="utf-8")
    run_args = ("run", "--config", config, "--input", pubmedqa, "--limit", LIMIT)
    cwd = _workdir(root, "clean")
    db, log = cwd / "run.db", cwd / CALL_LOG
    started = time.monotonic()
    r = run_cli(*run_args, "--db", db, cwd=cwd, timeout=90)
    wall_s = time.monotonic() - started
    assert r.returncode == 0, r.stderr
    assert "SIMULATED" in r.stderr
    exported = _export(db, root / "export")
    assert exported["reasonmed.jsonl"], "the uninterrupted run exported nothing"
    keys = call_log_keys(log)
    assert len(keys) == len(set(keys)), "the uninterrupted run paid for a call twice"
    return CleanRun(config, run_args, wall_s, exported, keys)


@pytest.mark.slow
def test_sigkill_and_resume_equals_uninterrupted_run(clean_run, tmp_path):
    run_args, wall_s = clean_run.run_args, clean_run.wall_s
    cwd = _workdir(tmp_path, "crash")
    db, log = cwd / "run.db", cwd / CALL_LOG
    rng = random.Random(SEED)
    kills: list[Killed] = []
    cmd = cli_command(*run_args, "--db", db)
    finished = False
    for k in range(KILLS):
        killed = _run_and_kill(cmd, cwd, log, db, rng.uniform(0.08, 0.25) * wall_s, tmp_path / f"proc{k}")
        if killed is None:
            finished = True
            break
        kills.append(killed)
        (status,) = query(db, "SELECT status FROM runs")
        if status == ("finished",):  # the kill landed after the run was marked finished, before the exit
            finished = True
            break
        assert status == ("running",)
        if k == 0:
            again = run_cli(*run_args, "--db", db, cwd=cwd)
            assert again.returncode == 2, again.stderr
            assert "resume" in again.stderr and "unfinished" in again.stderr
            assert _lines(log) == killed.logged, "a refused `run` made LLM calls"
        cmd = cli_command("resume", "--db", db)
    assert kills, "the run finished before the first kill: nothing was tested"
    if not finished:
        r = run_cli("resume", "--db", db, cwd=cwd, timeout=90)
        assert r.returncode == 0, r.stderr
    assert query(db, "SELECT status FROM runs") == [("finished",)]

    # the data: byte for byte the uninterrupted run's
    resumed = _export(db, tmp_path / "crash-export")
    assert sorted(resumed) == sorted(clean_run.exported)
    for name in resumed:
        assert resumed[name] == clean_run.exported[name], f"{name} differs after {len(kills)} kills and resumes"

    # the calls: the same set, and only those in flight at a kill paid again
    clean_keys, crash_keys = clean_run.keys, call_log_keys(log)
    assert set(crash_keys) == set(clean_keys)
    extra = len(crash_keys) - len(clean_keys)
    in_flight = [len(k.in_flight) for k in kills]
    print(f"{len(kills)} kills after {[k.logged for k in kills]} calls, in flight {in_flight}; "
          f"{extra} of {len(crash_keys)} calls paid again (uninterrupted: {len(clean_keys)})")
    assert 0 <= extra <= sum(in_flight), f"{extra} calls paid again, in flight at the kills: {in_flight}"
    repeats = Counter(crash_keys)
    for key, n in repeats.items():
        assert n - 1 <= sum(key in k.in_flight for k in kills), f"call {key} paid {n} times"
    for i, k in enumerate(kills):
        again = k.cached.intersection(crash_keys[k.logged:])
        assert not again, f"{len(again)} calls answered before kill {i + 1} were paid again after it"


async def test_failures_export_does_not_depend_on_commit_order(tmp_path):
    """Two paths of one question fail in concurrent handlers (say both re-verifications find unparseable
    judge output): which commits first is a matter of timing, and differs between an uninterrupted run
    and a resumed one.  The export must not depend on it."""
    q = Question(id="pubmedqa-1", stem="Does X cause Y?", options=("yes", "no", "maybe"), answer=0,
                 source="pubmedqa", context="BACKGROUND: ...")
    run = {"id": "run-order", "input_path": "in.json", "input_digest": "d", "config_digest": "c",
           "config_json": "", "questions": 1}
    failures = [
        StageFailed(run_id=run["id"], question_id=q.id, parent_id=f"refined-{path}", stage=Stage.REVERIFY,
                    path=path, kind=FailureKind.UNPARSEABLE, error_class="JudgeFailed",
                    message=f"unparseable judge output after 3 attempts ({path})", attempts=3,
                    raw="I cannot judge this", failed_type="Refined")
        for path in ("huatuo_3", "qwen_1")
    ]
    exported = []
    for n, order in enumerate((failures, failures[::-1])):
        store = await CheckpointStore.open(tmp_path / f"order{n}.db")
        try:
            await store.create_run(run, [(q.id, 0, q.source)],
                                   [Routed(QuestionIngested(run_id=run["id"], question_id=q.id, question=q), ())])
            for failure in order:
                await store.commit([Routed(failure, ())])
            await export(store, tmp_path / f"out{n}")
        finally:
            await store.close()
        exported.append((tmp_path / f"out{n}" / "failures.jsonl").read_bytes())
    assert exported[0].count(b"\n") == 2
    assert exported[0] == exported[1], "failures.jsonl follows the order in which handlers happened to commit"


@pytest.mark.slow
def test_sigterm_stops_cleanly_and_resume_pays_nothing_twice(clean_run, tmp_path):
    """SIGTERM: intake stops, calls in flight finish and are stored, exit 143 (0 if the run had ended
    first); resume completes the run."""
    cwd = _workdir(tmp_path, "term")
    db, log = cwd / "run.db", cwd / CALL_LOG
    with (tmp_path / "term.out").open("w") as out, (tmp_path / "term.err").open("w") as err:
        proc = subprocess.Popen(cli_command(*clean_run.run_args, "--db", db), stdout=out, stderr=err, env=cli_env(),
                                cwd=cwd)
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None and _lines(log) == 0:
                assert time.monotonic() < deadline, "no simulated call within 60 s"
                time.sleep(0.005)
            time.sleep(0.2 * clean_run.wall_s)
            stopped = proc.poll() is None
            if stopped:
                proc.send_signal(signal.SIGTERM)
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    left = query(db, "SELECT status FROM runs") == [("running",)]
    assert rc == (143 if left else 0), (tmp_path / "term.err").read_text()
    if stopped and left:
        assert "SIGTERM" in (tmp_path / "term.err").read_text()
        assert "resume" in (tmp_path / "term.out").read_text()
        logged = set(call_log_keys(log))
        assert logged <= cache_keys(db), "a call that finished during the grace period was not stored"
        assert query(db, "SELECT COUNT(*) FROM deliveries WHERE state='pending'")[0][0] > 0
        r = run_cli("resume", "--db", db, cwd=cwd, timeout=90)
        assert r.returncode == 0, r.stderr
    assert query(db, "SELECT status FROM runs") == [("finished",)]
    keys = call_log_keys(log)
    assert sorted(keys) == sorted(clean_run.keys), "a graceful stop and resume paid for some call twice"
    resumed = _export(db, tmp_path / "export")
    assert sorted(resumed) == sorted(clean_run.exported)
    for name in resumed:
        assert resumed[name] == clean_run.exported[name], f"{name} differs after SIGTERM and resume"
