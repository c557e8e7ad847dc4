"""Streamed intake: questions ingested in bounded batches, read lazily; an intake cut short is finished by the same
run command; ``resume`` opens the store once."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from e2e_support import SIM_TOML, query, run_cli
from reasonmed_async import pipeline as pipeline_module
from reasonmed_async.cli import main
from reasonmed_async.config import load_config
from reasonmed_async.loaders.stream import QuestionSource
from reasonmed_async.pipeline import Pipeline, RunConflict, file_digest, stored_config
from reasonmed_async.store.checkpoint import CheckpointStore


def write_questions(path: Path, n: int) -> Path:
    with path.open("w", encoding="utf-8") as f:
        for i in range(n):
            f.write(json.dumps({"id": f"q-{i}", "question": f"A 7-year-old with pallor and fatigue ({i}): cause?",
                                "options": ["Iron deficiency", "Lead poisoning", "Thalassemia"], "answer": "A"}) + "\n")
    return path


class Pulled:
    """Wraps a source; records how many questions had been pulled from it at each intake commit."""

    def __init__(self, source: QuestionSource) -> None:
        self.source, self.pulled, self.at_commit = source, 0, []

    def __len__(self) -> int:
        return len(self.source)

    def __iter__(self):
        for question in self.source:
            self.pulled += 1
            yield question


@pytest.fixture
def small_batches(monkeypatch):
    monkeypatch.setattr(pipeline_module, "INTAKE_BATCH", 4)


def _watch_commits(monkeypatch, store: CheckpointStore, source: Pulled, sizes: list[int]) -> None:
    create, add = store.create_run, store.add_intake

    async def create_run(run, questions, routed):
        sizes.append(len(questions))
        source.at_commit.append(source.pulled)
        return await create(run, questions, routed)

    async def add_intake(run_id, questions, routed, *, last):
        sizes.append(len(questions))
        source.at_commit.append(source.pulled)
        return await add(run_id, questions, routed, last=last)

    monkeypatch.setattr(store, "create_run", create_run)
    monkeypatch.setattr(store, "add_intake", add_intake)


async def test_questions_are_ingested_in_bounded_batches_read_as_they_go(tmp_path, small_batches, monkeypatch):
    path = write_questions(tmp_path / "qs.jsonl", 10)
    source = Pulled(QuestionSource(path))
    db = tmp_path / "run.db"
    sizes: list[int] = []
    async with Pipeline.open(load_config(SIM_TOML), db) as p:
        _watch_commits(monkeypatch, p.store, source, sizes)
        run_id = await p.start_run(source, str(path), file_digest(path), None)
        assert await p.drive()
    assert sizes == [4, 4, 2]
    assert source.at_commit == [5, 9, 10]  # one question read ahead of the batch committed (to tell the last)
    assert query(db, "SELECT status, questions FROM runs") == [("finished", 10)]
    assert query(db, "SELECT COUNT(*), MIN(ordinal), MAX(ordinal) FROM questions WHERE run_id=?", (run_id,)) == [
        (10, 0, 9)]
    # the same data as one intake of all ten at once
    monkeypatch.setattr(pipeline_module, "INTAKE_BATCH", 1000)
    async with Pipeline.open(load_config(SIM_TOML), tmp_path / "one.db") as p:
        await p.start_run(QuestionSource(path), str(path), file_digest(path), None)
        assert await p.drive()
    records = "SELECT record_id, question_id, path FROM records ORDER BY record_id"
    assert query(db, records) == query(tmp_path / "one.db", records) and len(query(db, records)) >= 10


class CutShort(Exception):
    pass


class Crashing(Pulled):
    def __iter__(self):
        for i, question in enumerate(self.source):
            if i == 9:
                raise CutShort  # the process dies in the middle of the intake
            yield question


async def test_an_intake_cut_short_is_refused_by_resume_and_finished_by_the_same_run(tmp_path, small_batches):
    path = write_questions(tmp_path / "qs.jsonl", 10)
    db = tmp_path / "run.db"
    config = load_config(SIM_TOML)
    async with Pipeline.open(config, db) as p:
        with pytest.raises(CutShort):
            await p.start_run(Crashing(QuestionSource(path)), str(path), file_digest(path), None)
    assert query(db, "SELECT status FROM runs") == [("ingesting",)]
    # the two batches committed before the 10th question was read (one question is read ahead of each)
    assert query(db, "SELECT COUNT(*) FROM questions") == [(8,)]

    async with await CheckpointStore.open(db) as store:
        with pytest.raises(RunConflict, match="stopped while its questions were being ingested"):
            await stored_config(store)
    resumed = run_cli("resume", "--db", db)
    assert resumed.returncode == 2 and resumed.stderr.count("\n") == 1 and "reasonmed run" in resumed.stderr

    async with Pipeline.open(config, db) as p:
        await p.start_run(QuestionSource(path), str(path), file_digest(path), None)
        assert await p.drive()
    assert query(db, "SELECT status, questions FROM runs") == [("finished", 10)]
    assert query(db, "SELECT COUNT(*) FROM questions") == [(10,)]
    assert query(db, "SELECT COUNT(*) FROM messages WHERE type='QuestionIngested'") == [(10,)]
    assert query(db, "SELECT COUNT(*), COUNT(DISTINCT message_seq || consumer) FROM deliveries") == \
        query(db, "SELECT COUNT(*), COUNT(*) FROM deliveries")  # nothing delivered twice
    assert {q for (q,) in query(db, "SELECT question_id FROM records")} <= {f"q-{i}" for i in range(10)}
    assert query(db, "SELECT COUNT(DISTINCT question_id) FROM messages WHERE type='TierAssigned'") == [(10,)]


async def test_a_run_refuses_to_start_beside_an_intake_cut_short(tmp_path, small_batches):
    path = write_questions(tmp_path / "qs.jsonl", 10)
    other = write_questions(tmp_path / "other.jsonl", 3)
    db = tmp_path / "run.db"
    async with Pipeline.open(load_config(SIM_TOML), db) as p:
        with pytest.raises(CutShort):
            await p.start_run(Crashing(QuestionSource(path)), str(path), file_digest(path), None)
        with pytest.raises(RunConflict, match="run its `reasonmed run` command again"):
            await p.start_run(QuestionSource(other), str(other), file_digest(other), None)


def test_resume_opens_the_store_once(tmp_path, monkeypatch, capsys):
    path = write_questions(tmp_path / "qs.jsonl", 3)
    db = tmp_path / "run.db"
    assert main(["run", "--config", str(SIM_TOML), "--input", str(path), "--db", str(db)]) == 0
    with sqlite3.connect(db) as con:
        con.execute("UPDATE runs SET status='running'")  # as if stopped before the end
    opened: list[Path] = []
    real_open = CheckpointStore.open.__func__

    async def counting_open(cls, db_path, **kw):
        opened.append(Path(db_path))
        return await real_open(cls, db_path, **kw)

    monkeypatch.setattr(CheckpointStore, "open", classmethod(counting_open))
    assert main(["resume", "--db", str(db)]) == 0
    assert opened == [db]
    assert "stopped before the end" not in capsys.readouterr().out
