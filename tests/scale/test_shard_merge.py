"""Sharded runs: three shards of 30 real PubMedQA questions (one SIGKILLed mid-run and resumed), merged, export
byte-identical to a single-process run; merges of shards that are not one run refused in one line."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import pytest

from e2e_support import EXPORT_FILES, cli_command, cli_env, query, run_cli, sim_config, with_concurrency
from reasonmed_async.scale.merge import MergeRefused, check_shards
from reasonmed_async.scale.shard import Fingerprint, Shard, parse_share, parse_shard, select, shard_of
from reasonmed_async.store.merge import ShardFacts
from reasonmed_async.store.schema import STORE_SCHEMA_VERSION
from bus import Question

LIMIT = 30


def _export(db: Path, out: Path) -> dict[str, bytes]:
    r = run_cli("export", "--db", db, "--out", out)
    assert r.returncode == 0, r.stderr
    files = {p.name: p.read_bytes() for p in sorted(out.iterdir())}  # a set without rows is not written
    assert set(EXPORT_FILES) - {"failures.jsonl"} <= set(files), sorted(files)
    return files


def _run_killed(args: list[object], db: Path, err: Path) -> None:
    """Start a run; SIGKILL it once its database holds a stored answer (mid-run), then resume it to the end."""
    with err.open("w") as stderr:
        proc = subprocess.Popen(cli_command(*args), stdout=subprocess.DEVNULL, stderr=stderr, env=cli_env())
        try:
            deadline = time.monotonic() + 60
            while proc.poll() is None and time.monotonic() < deadline:
                if db.exists() and _answers(db) >= 20:
                    proc.send_signal(signal.SIGKILL)
                    break
                time.sleep(0.01)
            rc = proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert rc == -signal.SIGKILL, f"the shard was not killed mid-run (exit {rc}): {err.read_text()}"
    assert query(db, "SELECT status FROM runs") == [("running",)]
    r = run_cli("resume", "--db", db, timeout=120)
    assert r.returncode == 0, r.stderr


def _answers(db: Path) -> int:
    try:
        return query(db, "SELECT COUNT(*) FROM llm_cache")[0][0]
    except Exception:  # noqa: BLE001 - the schema is being created: not yet
        return 0


@pytest.fixture(scope="module")
def config(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("shard-config") / "sim.toml"
    path.write_text(with_concurrency(sim_config(latency_ms="3"), 2), encoding="utf-8")
    return path


@pytest.mark.slow
def test_three_shards_one_killed_merge_into_the_single_process_run(config, pubmedqa, tmp_path) -> None:
    run = ["run", "--config", config, "--input", pubmedqa, "--limit", LIMIT]
    r = run_cli(*run, "--db", tmp_path / "single.db", timeout=120)
    assert r.returncode == 0, r.stderr
    single = _export(tmp_path / "single.db", tmp_path / "single-export")

    shards = [tmp_path / f"shard{i}.db" for i in range(3)]
    for i, db in enumerate(shards):
        if i == 1:
            _run_killed([*run, "--shard", "1/3", "--db", db], db, tmp_path / "shard1.err")
        else:
            r = run_cli(*run, "--shard", f"{i}/3", "--db", db, timeout=120)
            assert r.returncode == 0, r.stderr
    sizes = [query(db, "SELECT COUNT(*) FROM questions")[0][0] for db in shards]
    assert sum(sizes) == LIMIT and all(sizes), sizes  # every shard got some, none twice
    runs = {query(db, "SELECT id FROM runs")[0][0] for db in shards}
    assert runs == {query(tmp_path / "single.db", "SELECT id FROM runs")[0][0]}  # the shard is not the identity

    # a shard is refused in a merge with itself or without the others
    r = run_cli("merge", "--out", tmp_path / "bad.db", shards[0], shards[0], shards[1])
    assert r.returncode == 2 and "both shard 0/3" in r.stderr and "Traceback" not in r.stderr
    r = run_cli("merge", "--out", tmp_path / "bad.db", shards[0], shards[2])
    assert r.returncode == 2 and "1/3 missing" in r.stderr
    assert not (tmp_path / "bad.db").exists()

    merged = tmp_path / "merged.db"
    r = run_cli("merge", "--out", merged, *reversed(shards))  # any order
    assert r.returncode == 0, r.stderr
    assert _export(merged, tmp_path / "merged-export") == single
    assert query(merged, "SELECT questions, status FROM runs") == [(LIMIT, "finished")]
    # v8: each shard's codes and seqs renumbered into the merged database's: every row whole, every parent by seq
    r = run_cli("check", "--db", merged)
    assert r.returncode == 0, r.stdout + r.stderr
    assert query(merged, "SELECT COUNT(*) FROM message_rows WHERE typeof(parent) != 'integer' AND parent != ''") \
        == [(0,)]
    r = run_cli("merge", "--out", merged, *shards)
    assert r.returncode == 2 and "exists" in r.stderr


@pytest.mark.slow
def test_shards_of_another_config_are_refused(config, pubmedqa, tmp_path) -> None:
    other = tmp_path / "other.toml"
    # another seed is another run (a latency, a URL or a limit is not: config_changes)
    other.write_text(config.read_text().replace("seed = 20250611", "seed = 20250612"), encoding="utf-8")
    for i, cfg in ((0, config), (1, other)):
        r = run_cli("run", "--config", cfg, "--input", pubmedqa, "--limit", 6, "--shard", f"{i}/2",
                    "--db", tmp_path / f"s{i}.db", timeout=120)
        assert r.returncode == 0, r.stderr
    r = run_cli("merge", "--out", tmp_path / "m.db", tmp_path / "s0.db", tmp_path / "s1.db")
    assert r.returncode == 2 and "differs" in r.stderr and "not a shard of the same run" in r.stderr
    assert r.stderr.count("\n") == 1 and not (tmp_path / "m.db").exists()


# -- pure parts -----------------------------------------------------------------------------------

def _q(i: int, stem: str, options: tuple[str, ...] = ("yes", "no", "maybe")) -> Question:
    return Question(id=f"q{i}", stem=stem, options=options, answer=0, ordinal=i)


def test_copies_of_a_question_land_in_one_shard_and_ordinals_stay() -> None:
    questions = [_q(i, f"Is drug {i} effective in elderly patients with atrial fibrillation?") for i in range(60)]
    questions += [_q(60, "IS DRUG 7 effective in  elderly patients with atrial fibrillation",
                     ("maybe", "no", "yes"))]  # a copy of q7: case, spacing, option order differ
    parts = [select(questions, Shard(i, 4)) for i in range(4)]
    assert sorted(q.id for p in parts for q in p) == sorted(q.id for q in questions)  # each exactly once
    assert all(len(p) > 5 for p in parts)  # spread
    home = next(p for p in parts if any(q.id == "q7" for q in p))
    assert any(q.id == "q60" for q in home)
    assert all([q.ordinal for q in p] == sorted(q.ordinal for q in p) for p in parts)
    assert shard_of("f" * 64, 3) == int("f" * 16, 16) % 3


@pytest.mark.parametrize(("text", "error"), [("1/3", None), (" 0 / 1 ", None), ("3/3", "0 <= i < N"),
                                              ("-1/3", "expected i/N"), ("1", "expected i/N"), ("0/0", "0 <= i")])
def test_parse_shard(text: str, error: str | None) -> None:
    if error is None:
        assert str(parse_shard(text)) == text.replace(" ", "")
    else:
        with pytest.raises(ValueError, match=error):
            parse_shard(text)


def test_parse_share() -> None:
    assert parse_share("1/4") == parse_share("0.25")
    for bad in ("0", "1.5", "a"):
        with pytest.raises(ValueError, match="--quota-share"):
            parse_share(bad)


def _facts(name: str, index: int, ids: set[str], *, count: int = 2, digest: str = "cfg") -> ShardFacts:
    fp = Fingerprint("run-1", digest, "tpl", "input", count, index, f"1/{count}")
    return ShardFacts(Path(name), str(STORE_SCHEMA_VERSION), [("run-1", "input", digest, "finished", len(ids), "q.jsonl")], fp.to_json(), ids)


@pytest.mark.parametrize(("facts", "message"), [
    ([_facts("a.db", 0, {"q1"}), _facts("b.db", 1, {"q1", "q2"})], "'q1' is in both a.db and b.db"),
    ([_facts("a.db", 0, {"q1"}), _facts("b.db", 1, {"q2"}, count=3)], "count 3 differs"),
    ([_facts("a.db", 0, {"q1"}), _facts("b.db", 1, {"q2"}, digest="other")], "config_digest 'other' differs"),
    ([_facts("a.db", 0, {"q1"})], "1/2 missing"),
])
def test_merge_checks(facts: list[ShardFacts], message: str) -> None:
    with pytest.raises(MergeRefused, match=message):
        check_shards(facts)
    assert [p.index for p in check_shards([_facts("b.db", 1, {"q2"}), _facts("a.db", 0, {"q1"})])] == [0, 1]
