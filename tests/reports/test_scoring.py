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

from bus import Ranked, Refined
from e2e_support import call_log_keys, messages, query, sim_config
from reasonmed_async import cli
from reasonmed_async.config import parse_config
from reasonmed_async.loaders.dispatch import load_questions
from reasonmed_async.pipeline import Pipeline, file_digest
from reasonmed_async.llm.sim import SimClient
from reasonmed_async.reports.scoring import register, sample_ids

LIMIT = 40
ROW = re.compile(r"^(?P<label>\S.*?)\s{2,}(?P<n>\d+)\s+(?P<mean>[+-]?[\d.]+|nan)\s+(?P<se>[\d.]+|nan)$", re.M)
PAIRED = "post-refine - pre-refine (paired)"


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


def table(out: str) -> dict[str, dict[str, float]]:
    """The printed table's rows: dataset -> samples, mean, se."""
    return {m["label"]: {k: float(m[k]) for k in ("n", "mean", "se")} for m in ROW.finditer(out)}


def score(*args: object, capsys) -> tuple[int, dict[str, float], str]:
    """rc, the first row of the table, everything printed."""
    rc = cli.main(["score", *map(str, args)])
    out, err = capsys.readouterr()
    rows = table(out)
    return rc, next(iter(rows.values()), {}), out + err


def score_calls(db: Path) -> int:
    return query(db, "SELECT COALESCE(SUM(calls), 0) FROM calls WHERE stage='score'")[0][0]


def medium_targets(db: Path) -> tuple[set[str], set[str]]:
    pre = {f"{m.question_id}/{p.name}" for m in messages(db, "Ranked") if isinstance(m, Ranked) and m.tier == "medium"
           for p in m.chosen}
    post = {f"{m.question_id}/{m.source_path}" for m in messages(db, "Refined")
            if isinstance(m, Refined) and m.path.origin == "refined"}
    return pre, post


def test_pre_and_post_refine_scores_are_paired(fresh, capsys):
    """Both stages score the same sampled medium-tier targets; a rewrite that re-verification rejected is
    scored too (and said so); the table ends with the paired difference and its standard error."""
    pre, post = medium_targets(fresh.db)
    assert pre and post and post <= pre, "40 questions should give medium-tier questions refined and re-verified"
    rc, _, text = score("--db", fresh.db, "--stage", "refine", "--seed", 7, capsys=capsys)
    assert rc == 0, text
    rows = table(text)
    for stage, targets in (("pre-refine", pre), ("post-refine", post)):
        assert rows[stage]["n"] == len(targets), text
        assert 1 <= rows[stage]["mean"] <= 10 and 0 < rows[stage]["se"] < 10, text
        stored = {t for (t,) in query(fresh.db, "SELECT target_id FROM scores WHERE label=?", (stage,))}
        assert stored == targets
    scores = {stage: dict(query(fresh.db, "SELECT target_id, score FROM scores WHERE label=?", (stage,)))
              for stage in ("pre-refine", "post-refine")}
    diffs = [scores["post-refine"][t] - scores["pre-refine"][t] for t in sorted(post)]
    mean = sum(diffs) / len(diffs)
    se = math.sqrt(sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1) / len(diffs))
    assert rows[PAIRED]["n"] == len(post), text
    assert rows[PAIRED]["mean"] == pytest.approx(mean, abs=0.006) and rows[PAIRED]["se"] == pytest.approx(se, abs=0.006)
    rejected = {f"{m.question_id}/{m.path.name}" for m in messages(fresh.db, "Verdict")
                if m.attempt == 2 and m.verdict == "Error" and m.path.origin == "refined"}
    if rejected:
        assert f"{len(rejected)} of them rejected by re-verification (scored too)" in text
    # a sample pairs too: the same seed draws the same medium targets for both stages
    rc, _, text = score("--db", fresh.db, "--stage", "pre-refine", "--stage", "post-refine", "--sample", 5,
                        "--seed", 3, capsys=capsys)
    assert rc == 0 and table(text)["pre-refine"]["n"] == 5 and PAIRED in text, text


def test_scorer_requests_carry_no_gold_answer(fresh, tmp_path, capsys, monkeypatch):
    sent = []
    real = SimClient.complete

    async def record(self, req):
        sent.append(req)
        return await real(self, req)

    monkeypatch.setattr(SimClient, "complete", record)
    rc, got, text = score("--db", fresh.db, "--stage", "final", "--sample", 6, capsys=capsys)
    assert rc == 0 and got["n"] == 6 and len(sent) >= 6, text
    for req in sent:
        if len(req.messages) > 2:  # a correction after an unparseable score: the first request was checked
            continue
        assert "gold" not in req.meta and req.messages[0].content == "You are a helpful assistant."
        assert "Correct answer" not in req.messages[-1].content and "[Response]\n<think>" in req.messages[-1].content
        assert (req.temperature, req.top_p, req.max_tokens) == (0.7, 0.95, 4000)
    shown = tmp_path / "shown.toml"
    stored = query(fresh.db, "SELECT config_json FROM runs")[0][0]
    shown.write_text(stored.replace("show_answer = false", "show_answer = true"), encoding="utf-8")
    sent.clear()
    rc, _, text = score("--db", fresh.db, "--stage", "final", "--sample", 6, "--config", shown, capsys=capsys)
    assert rc == 0 and sent and all("Correct answer: " in r.messages[-1].content for r in sent), text


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
    assert path.name in table(out)
    logged = len(call_log_keys(run.log))
    rc, again, out = score(*args, capsys=capsys)
    assert rc == 0 and again == got and len(call_log_keys(run.log)) == logged, out
    rc, one, out = score(*args, "--sample", 2, "--seed", 5, capsys=capsys)
    assert rc == 0 and one["n"] == 2, out


def test_the_scorer_prompt_of_a_file_row(tmp_path):
    from agents.prompts import Templates
    from reasonmed_async.reports.score_targets import file_messages

    rows = _alpaca_rows()
    _, mcq = file_messages(Templates.load(), rows[0])
    assert "[Question]\nWhich vitamin deficiency causes scurvy?" in mcq.content
    assert "A) Vitamin A\nB) Vitamin C" in mcq.content and "Correct answer" not in mcq.content
    _, shown = file_messages(Templates.load(), rows[0], show_answer=True)
    assert "Correct answer: B) Vitamin C\n\n[Response]" in shown.content
    _, open_q = file_messages(Templates.load(), rows[1])
    assert "[Question]\nWhich nerve is injured in wrist drop?" in open_q.content
    _, ctx = file_messages(Templates.load(), rows[2])
    assert "Context:\nA short abstract." in ctx.content and "A) yes\nB) no" in ctx.content


def test_files_compare_in_one_table(run, tmp_path, capsys):
    rows = _alpaca_rows()
    first, second = tmp_path / "ours.jsonl", tmp_path / "theirs.json"
    first.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    second.write_text(json.dumps(rows[:2]), encoding="utf-8")
    rc, _, out = score("--file", first, "--file", second, "--db", tmp_path / "s.db",
                       "--config", run.root / "scoring.toml", capsys=capsys)
    assert rc == 0, out
    assert out.splitlines()[0].split() == ["dataset", "samples", "mean", "score", "se"]
    got = table(out)
    assert got["ours.jsonl"]["n"] == 3 and got["theirs.json"]["n"] == 2 and PAIRED not in out


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
    assert cli.main(["score", "--db", str(tmp_path / "x.db")]) == 2
    assert "give --stage STAGE or --file FILE" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exc:
        cli.main(["score", "--db", str(tmp_path / "x.db"), "--stage", "middle"])
    assert exc.value.code == 2
