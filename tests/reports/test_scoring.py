"""``reasonmed score``: the paper's before / after comparison of the medium tier, resumable, and other datasets.

One in-process run of 40 real PubMedQA questions on the sim backend (every simulated call logged); then
``reasonmed score`` through ``reasonmed_async.cli.main`` with the command registered the way ``cli`` does.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from bus import Ranked, Verdict
from e2e_support import call_log_keys, messages, query, sim_config
from reasonmed_async import cli
from reasonmed_async.config import parse_config
from reasonmed_async.loaders.dispatch import load_questions
from reasonmed_async.pipeline import Pipeline, file_digest
from reasonmed_async.reports.scoring import register, sample_ids

LIMIT = 40
LINE = re.compile(r"^(?P<label>\S+): n=(?P<n>\d+) mean=(?P<mean>[\d.]+|nan) se=(?P<se>[\d.]+|nan) ", re.M)


@dataclass
class Run:
    root: Path
    db: Path
    log: Path


@pytest.fixture(autouse=True)
def score_command(monkeypatch):
    monkeypatch.setattr(cli, "EXTRA_COMMANDS", [register])


@pytest.fixture(scope="module")
def run(pubmedqa, tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp("scoring")
    log = root / "calls.log"
    config = parse_config(sim_config(call_log=json.dumps(str(log))), source="scoring.toml")
    questions = load_questions(pubmedqa, limit=LIMIT)
    db = root / "run.db"

    async def go() -> None:
        async with Pipeline.open(config, db) as pipeline:
            await pipeline.start_run(questions, str(pubmedqa), file_digest(pubmedqa), LIMIT)
            assert await pipeline.drive()

    asyncio.run(go())
    (root / "scoring.toml").write_text(config.text, encoding="utf-8")
    return Run(root, db, log)


@pytest.fixture
def fresh(run, tmp_path) -> Run:
    """A copy of the run's database, so that each test starts with no score."""
    db = tmp_path / "run.db"
    shutil.copy(run.db, db)
    return Run(tmp_path, db, run.log)


def score(*args: object, capsys) -> tuple[int, dict[str, float], str]:
    rc = cli.main(["score", *map(str, args)])
    out, err = capsys.readouterr()
    m = LINE.search(out)
    parsed = {k: float(v) for k, v in m.groupdict().items() if k != "label"} if m else {}
    return rc, parsed, out + err


def score_calls(db: Path) -> int:
    return query(db, "SELECT COALESCE(SUM(calls), 0) FROM calls WHERE stage='score'")[0][0]


def medium_targets(db: Path) -> tuple[set[str], set[str]]:
    pre = {f"{m.question_id}/{p.name}" for m in messages(db, "Ranked") if isinstance(m, Ranked) and m.tier == "medium"
           for p in m.chosen}
    post = {f"{m.question_id}/{m.path.name}" for m in messages(db, "Verdict")
            if isinstance(m, Verdict) and m.attempt >= 1 and m.verdict == "Correct" and m.path.origin == "refined"}
    return pre, post


def test_pre_and_post_refine_scores(fresh, capsys):
    pre, post = medium_targets(fresh.db)
    assert pre and post and post <= pre, "40 questions should give medium-tier questions refined and re-verified"
    for stage, targets in (("pre-refine", pre), ("post-refine", post)):
        rc, got, text = score("--db", fresh.db, "--stage", stage, "--seed", 7, capsys=capsys)
        assert rc == 0, text
        assert got["n"] == len(targets), text
        assert 1 <= got["mean"] <= 10 and 0 < got["se"] < 10 and math.isfinite(got["se"]), text
        stored = {t for (t,) in query(fresh.db, "SELECT target_id FROM scores WHERE label=?", (stage,))}
        assert stored == targets


def test_rerun_calls_no_llm_and_gives_the_same_mean(fresh, capsys):
    args = ("--db", fresh.db, "--stage", "pre-refine", "--sample", 12, "--seed", 3)
    rc, first, text = score(*args, capsys=capsys)
    assert rc == 0 and first["n"] == 12, text
    calls, logged = score_calls(fresh.db), len(call_log_keys(fresh.log))
    assert calls > 0
    rc, again, text = score(*args, capsys=capsys)
    assert rc == 0 and again == first, text
    assert "0 newly scored" in text
    assert score_calls(fresh.db) == calls and len(call_log_keys(fresh.log)) == logged, "a rerun called the LLM"
    # Without the stored scores, the LLM response cache still answers every call.
    query_rw(fresh.db, "DELETE FROM scores")
    rc, cached, text = score(*args, capsys=capsys)
    assert rc == 0 and cached == first, text
    assert len(call_log_keys(fresh.log)) == logged, "the LLM cache did not answer the scorer's calls"


def query_rw(db: Path, sql: str) -> None:
    import sqlite3

    con = sqlite3.connect(db)
    try:
        con.execute(sql)
        con.commit()
    finally:
        con.close()


def test_sample_is_sorted_ids_then_seeded_sample(fresh, capsys):
    pre, _ = medium_targets(fresh.db)
    rc, got, text = score("--db", fresh.db, "--stage", "pre-refine", "--sample", 5, "--seed", 11, capsys=capsys)
    assert rc == 0 and got["n"] == 5, text
    expected = set(random.Random(11).sample(sorted(pre), 5))
    assert {t for (t,) in query(fresh.db, "SELECT target_id FROM scores")} == expected
    assert sample_ids(list(pre), 5, 11) == sorted(expected)
    assert sample_ids(list(pre), None, 11) == sample_ids(list(pre), 10_000, 11) == sorted(pre)


def test_partial_scores_are_kept_and_resumed(fresh, capsys):
    """With half the calls failing for good, the scores that came back stay; a rerun scores the rest."""
    flaky = fresh.root / "flaky.toml"
    flaky.write_text(sim_config(failure_rate="0.5", attempts="1", call_log=json.dumps(str(fresh.log))),
                     encoding="utf-8")
    args = ("--db", fresh.db, "--stage", "final", "--sample", 20, "--seed", 1)
    rc, partial, text = score(*args, "--config", flaky, capsys=capsys)
    assert rc == 1 and "rerun" in text, text
    assert 0 < partial["n"] < 20, text
    logged = len(call_log_keys(fresh.log))
    rc, full, text = score(*args, capsys=capsys)
    assert rc == 0 and full["n"] == 20, text
    new = call_log_keys(fresh.log)[logged:]
    assert 20 - partial["n"] <= len(new) <= 3 * (20 - partial["n"]), "rescored targets that were already scored"


def test_final_scores_record_responses(fresh, capsys):
    records = query(fresh.db, "SELECT COUNT(*) FROM records")[0][0]
    rc, got, text = score("--db", fresh.db, "--stage", "final", "--sample", 1000, capsys=capsys)
    assert rc == 0 and got["n"] == records, text


def _alpaca_rows() -> list[dict[str, str]]:
    return [
        {"instruction": "Please answer the following multiple-choice question:\nWhich vitamin deficiency causes "
                        "scurvy?\nA. Vitamin A\nB. Vitamin C\nC. Vitamin D\nD. Vitamin K",
         "input": "", "output": "<think>Scurvy is ascorbic acid deficiency.</think>The answer is B.", "answer": "B"},
        {"instruction": "Which nerve is injured in wrist drop?", "input": "",
         "output": "The radial nerve, which supplies the wrist extensors."},
        {"instruction": "Is aspirin an antiplatelet agent?\nA. yes\nB. no", "input": "A short abstract.",
         "output": "Yes: it irreversibly inhibits COX-1 in platelets."},
    ]


@pytest.mark.parametrize("form", ["json", "jsonl"])
def test_score_an_alpaca_file(run, tmp_path, capsys, form):
    rows = _alpaca_rows()
    path = tmp_path / f"other.{form}"
    text = json.dumps(rows) if form == "json" else "".join(json.dumps(r) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")
    db = tmp_path / "scores.db"
    args = ("--file", path, "--db", db, "--config", run.root / "scoring.toml")
    rc, got, out = score(*args, capsys=capsys)
    assert rc == 0 and got["n"] == 3 and 1 <= got["mean"] <= 10, out
    assert out.startswith(f"file:{path.name}:")
    logged = len(call_log_keys(run.log))
    rc, again, out = score(*args, capsys=capsys)
    assert rc == 0 and again == got and len(call_log_keys(run.log)) == logged, out
    rc, one, out = score(*args, "--sample", 2, "--seed", 5, capsys=capsys)
    assert rc == 0 and one["n"] == 2, out


def test_the_scorer_prompt_of_a_file_row(tmp_path):
    from agents.prompts import Templates
    from reasonmed_async.reports.scoring import file_messages

    rows = _alpaca_rows()
    mcq, = file_messages(Templates.load(), rows[0])
    assert "Question: Which vitamin deficiency causes scurvy?" in mcq.content
    assert "A) Vitamin A\nB) Vitamin C" in mcq.content and "Correct answer: B) Vitamin C" in mcq.content
    open_q, = file_messages(Templates.load(), rows[1])
    assert "Question: Which nerve is injured in wrist drop?" in open_q.content and "(not given)" in open_q.content
    ctx, = file_messages(Templates.load(), rows[2])
    assert "Context:\nA short abstract." in ctx.content and "A) yes\nB) no" in ctx.content


@pytest.mark.parametrize("args, words", [
    (["--stage", "final", "--sample", "0"], "--sample must be >= 1"),
    (["--stage", "final", "--db", "{tmp}/missing.db"], "no such database"),
    (["--file", "{tmp}/other.json"], "needs --config"),
    (["--file", "{tmp}/bad.jsonl", "--config", "{cfg}"], "bad.jsonl:2: not an Alpaca record"),
])
def test_bad_usage_exits_2(run, tmp_path, capsys, args, words):
    (tmp_path / "bad.jsonl").write_text('{"instruction": "Q", "output": "A"}\n{"instruction": "Q"}\n')
    argv = [a.format(tmp=tmp_path, cfg=run.root / "scoring.toml") for a in args]
    if "--db" not in argv:
        argv += ["--db", str(tmp_path / "new.db")]
    rc = cli.main(["score", *argv])
    err = capsys.readouterr().err
    assert rc == 2 and words in err, err


def test_stage_or_file_is_required(tmp_path, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main(["score", "--db", str(tmp_path / "x.db")])
    assert exc.value.code == 2
    with pytest.raises(SystemExit):
        cli.main(["score", "--db", str(tmp_path / "x.db"), "--stage", "final", "--file", "f.json"])
