"""Export formats: every export loads with Hugging Face ``datasets`` as JSON and as Parquet, LLaMA-Factory's
``dataset_info.json`` names the files, and ``records.jsonl`` carries truncation / rejection marks and the
verifier's agreement with the stated answers.

One in-process run of 20 real PubMedQA questions on the sim backend, with higher truncation and lower
refiner accuracy than the defaults so that truncated paths and rejected rewrites occur.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from bus import FailureKind, Message, Stage, StageFailed, Verdict
from e2e_support import messages, read_jsonl, sim_config
from reasonmed_async.config import parse_config
from reasonmed_async.reports.export import SFT_FILES, export
from reasonmed_async.reports.formats import COLUMNS, PARQUET_MISSING, PARQUET_SETS, read_alpaca, split_instruction
from reasonmed_async.loaders.dispatch import load_questions
from reasonmed_async.pipeline import Pipeline, file_digest
from reasonmed_async.store.checkpoint import CheckpointStore

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local files only: never reach for the hub
datasets = pytest.importorskip("datasets")
pytest.importorskip("pyarrow")
datasets.disable_progress_bars()

LIMIT = 20
SETS = ("reasonmed", "cotmed", "responsemed", "records", "failures")


@dataclass
class Run:
    db: Path
    out: Path
    final_attempt: int
    msgs: list[Message]


@pytest.fixture(scope="module")
def run(pubmedqa, tmp_path_factory) -> Run:
    root = tmp_path_factory.mktemp("export-formats")
    config = parse_config(sim_config(truncation_rate="0.05", refine_accuracy="0.4"), source="formats.toml")
    questions = load_questions(pubmedqa, limit=LIMIT)
    db, out = root / "run.db", root / "export"

    async def go() -> None:
        async with Pipeline.open(config, db) as pipeline:
            await pipeline.start_run(questions, str(pubmedqa), file_digest(pubmedqa), LIMIT)
            assert await pipeline.drive()
            await export(pipeline.store, out, final_attempt=config.flow.refine_attempts)

    asyncio.run(go())
    return Run(db, out, config.flow.refine_attempts, messages(db))


def _load(kind: str, path: Path, cache: Path):
    return datasets.load_dataset(kind, data_files=str(path), split="train", cache_dir=str(cache))


def test_every_export_loads_as_json_and_parquet(run, tmp_path):
    records = read_jsonl(run.out / "records.jsonl")
    failures = read_jsonl(run.out / "failures.jsonl")
    assert records and failures, "the run should export records and failures (else the check is vacuous)"
    for name in SETS:
        lines = read_jsonl(run.out / f"{name}.jsonl")
        as_json = _load("json", run.out / f"{name}.jsonl", tmp_path / "json")
        as_parquet = _load("parquet", run.out / f"{name}.parquet", tmp_path / "parquet")
        assert as_json.num_rows == as_parquet.num_rows == len(lines), name
        assert as_json.column_names == as_parquet.column_names == list(COLUMNS[name]), name
        assert list(lines[0]) == list(COLUMNS[name]), f"{name}.jsonl keys differ from the documented columns"
    assert _load("json", run.out / "reasonmed.jsonl", tmp_path / "j").num_rows == len(records)


def test_parquet_rows_are_the_jsonl_lines(run):
    import pyarrow.parquet as pq

    for name in PARQUET_SETS:
        lines = read_jsonl(run.out / f"{name}.jsonl")
        rows = pq.read_table(run.out / f"{name}.parquet").to_pylist()
        assert len(rows) == len(lines)
        for line, row in zip(lines, rows, strict=True):
            for key, kind in COLUMNS[name].items():
                value = json.loads(row[key]) if kind == "json" else row[key]
                assert value == line[key], f"{name}: {key} differs for {line.get('record_id', line)}"


def test_sft_parquet_columns_are_alpaca(run):
    import pyarrow.parquet as pq

    for name in SFT_FILES:
        schema = pq.read_schema(run.out / name.replace(".jsonl", ".parquet"))
        assert schema.names == ["instruction", "input", "output"]
        assert all(str(t) == "string" for t in schema.types)


def test_dataset_info_is_llama_factory_format(run, tmp_path):
    info = json.loads((run.out / "dataset_info.json").read_text(encoding="utf-8"))
    assert set(info) == {"reasonmed", "cotmed", "responsemed"}
    for name, entry in info.items():
        assert entry["formatting"] == "alpaca"
        assert entry["columns"] == {"prompt": "instruction", "query": "input", "response": "output"}
        path = run.out / entry["file_name"]
        assert path.is_file(), f"dataset_info.json names {entry['file_name']}, which is not there"
        ds = _load("json", path, tmp_path / name)
        assert set(entry["columns"].values()) <= set(ds.column_names)
        assert ds.num_rows == len(read_jsonl(run.out / "records.jsonl"))


def test_records_mark_truncated_paths_and_rejected_rewrites(run):
    truncated: dict[str, set[str]] = {}
    for m in run.msgs:
        if isinstance(m, StageFailed) and m.stage is Stage.GENERATE and m.kind is FailureKind.TRUNCATED:
            truncated.setdefault(m.question_id, set()).add(m.path)
    rejected: dict[str, list[tuple[str, int]]] = {}
    for m in run.msgs:
        if isinstance(m, Verdict) and m.attempt >= 1 and m.verdict == "Error":
            rejected.setdefault(m.question_id, []).append((m.path.name, m.attempt))
    assert truncated and rejected, "truncation_rate / refine_accuracy should give both kinds of marks"
    records = read_jsonl(run.out / "records.jsonl")
    for rec in records:
        qid = rec["question_id"]
        assert rec["truncated_paths"] == sorted(truncated.get(qid, ()))
        assert [(r["path"], r["attempt"]) for r in rec["rejected_rewrites"]] == sorted(rejected.get(qid, []))
        for r in rec["rejected_rewrites"]:
            assert r["reason"] and r["final"] == (r["attempt"] >= run.final_attempt)
        for j in rec["verdicts"]:
            if j["path"] in rec["truncated_paths"]:
                assert j["verdict"] is None and j["stage"] == "generate"
    assert any(rec["truncated_paths"] for rec in records)
    assert any(rec["rejected_rewrites"] for rec in records)


def test_records_say_whether_the_verifier_agrees_with_the_stated_answer(run):
    first_pass = {(m.question_id, m.path.name): m for m in run.msgs if isinstance(m, Verdict) and m.attempt == 0}
    checked = 0
    for rec in read_jsonl(run.out / "records.jsonl"):
        for j in rec["verdicts"]:
            v = first_pass.get((rec["question_id"], j["path"]))
            if v is None:
                assert j["answer_agrees"] is None and j["stated_answer"] is None
                continue
            assert j["stated_answer"] == v.path.stated_answer
            assert j["answer_agrees"] == ((v.path.stated_answer == rec["answer"]) == (v.verdict == "Correct"))
            checked += 1
        for r in rec["reverification"]:
            assert r["answer_agrees"] == ((r["stated_answer"] == rec["answer"]) == (r["verdict"] == "Correct"))
    assert checked


def test_without_pyarrow_a_one_line_note_and_no_parquet(run, tmp_path, monkeypatch, capsys):
    out = tmp_path / "export"

    async def go() -> None:
        async with await CheckpointStore.open(run.db) as store:
            await export(store, out, final_attempt=run.final_attempt)
            assert (out / "records.parquet").is_file()
            monkeypatch.setitem(sys.modules, "pyarrow", None)  # import pyarrow now raises ImportError
            monkeypatch.setitem(sys.modules, "pyarrow.parquet", None)
            capsys.readouterr()
            summary = await export(store, out, final_attempt=run.final_attempt)
            assert not summary.parquet

    asyncio.run(go())
    err = capsys.readouterr().err
    assert err.strip() == PARQUET_MISSING and "pip install reasonmed-async[export]" in err
    assert not list(out.glob("*.parquet")), "an earlier export's Parquet files were left stale"
    for name in SETS:
        assert (out / f"{name}.jsonl").read_bytes() == (run.out / f"{name}.jsonl").read_bytes()
    assert json.loads((out / "dataset_info.json").read_text(encoding="utf-8"))


def test_alpaca_files_read_back(tmp_path):
    rows = [{"instruction": "Please answer the following multiple-choice question:\nWhich?\nA. yes\nB. no",
             "input": "", "output": "A"}, {"instruction": "Explain B. cells.", "output": "They make antibodies."}]
    as_json, as_jsonl = tmp_path / "a.json", tmp_path / "a.jsonl"
    as_json.write_text(json.dumps(rows), encoding="utf-8")
    as_jsonl.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    assert read_alpaca(as_json) == read_alpaca(as_jsonl) == rows
    assert split_instruction(rows[0]["instruction"]) == ("Which?", ["yes", "no"])
    assert split_instruction(rows[1]["instruction"]) == ("Explain B. cells.", [])
    assert split_instruction("Q\nC. x\nD. y") == ("Q\nC. x\nD. y", [])
