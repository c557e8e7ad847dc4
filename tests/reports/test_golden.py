"""Golden test: a fixed 10-question input through the whole flow gives byte-for-byte the checked-in records.

Input ``tests/golden/questions.jsonl`` (ten of the project's demo questions, demo-001..008, 013 and 027,
chosen so that the three tiers, a context, truncated paths and rejected rewrites all occur), configuration
``examples/sim.toml`` with its simulator seed pinned, run in process, exported; ``records.jsonl`` must equal
``tests/golden/records.jsonl`` byte for byte (stable record ids, stable order, no time in it).

After an intended change of the output (a new records field, a prompt template, the simulator, the
example configuration), regenerate the golden file, review its diff and commit it::

    REASONMED_REGENERATE_GOLDEN=1 .venv/bin/python -m pytest tests/reports/test_golden.py
"""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from e2e_support import sim_config
from reasonmed_async.config import parse_config
from reasonmed_async.reports.export import export
from reasonmed_async.loaders.dispatch import load_questions
from reasonmed_async.pipeline import Pipeline, file_digest

GOLDEN = Path(__file__).resolve().parents[1] / "golden"
QUESTIONS = GOLDEN / "questions.jsonl"
RECORDS = GOLDEN / "records.jsonl"
SEED = 20250611
REGENERATE = "REASONMED_REGENERATE_GOLDEN"


def produce(root: Path) -> bytes:
    config = parse_config(sim_config(seed=str(SEED)), source="examples/sim.toml (golden)")
    questions = load_questions(QUESTIONS)
    db, out = root / "golden.db", root / "export"

    async def go() -> None:
        async with Pipeline.open(config, db) as pipeline:
            await pipeline.start_run(questions, str(QUESTIONS), file_digest(QUESTIONS), None)
            assert await pipeline.drive(), "the golden run did not finish"
            await export(pipeline.store, out, final_attempt=config.flow.refine_attempts, parquet=False)

    asyncio.run(go())
    return (out / "records.jsonl").read_bytes()


def first_difference(expected: bytes, actual: bytes) -> str:
    """Where two JSONL texts first differ: the line, the first differing field, both lines."""
    want, got = expected.decode("utf-8").splitlines(), actual.decode("utf-8").splitlines()
    for n, (a, b) in enumerate(zip(want, got, strict=False), start=1):
        if a != b:
            break
    else:
        n = min(len(want), len(got)) + 1
        if len(want) == len(got):  # same lines: the bytes differ in line endings or a final newline
            return "the files differ only in line endings or the final newline"
        a, b = (want[n - 1] if n <= len(want) else "<end of file>"), (got[n - 1] if n <= len(got) else "<end of file>")
    where = ""
    try:
        ja, jb = json.loads(a), json.loads(b)
        keys = [k for k in dict.fromkeys([*ja, *jb]) if ja.get(k) != jb.get(k)]
        where = f" (record {ja.get('record_id')!r}; fields differing: {', '.join(keys)})"
    except (ValueError, AttributeError):
        pass
    clip = 600
    return (f"first difference at line {n} of {len(want)} expected / {len(got)} produced{where}\n"
            f"- expected: {a[:clip]}{'…' if len(a) > clip else ''}\n"
            f"+ produced: {b[:clip]}{'…' if len(b) > clip else ''}")


def test_records_match_the_golden_file(tmp_path):
    actual = produce(tmp_path)
    assert actual, "the golden run exported no record"
    if os.environ.get(REGENERATE):
        RECORDS.write_bytes(actual)
        lines = actual.count(b"\n")
        pytest.skip(f"regenerated {RECORDS} ({lines} records): review its diff and commit it")
    assert RECORDS.is_file(), f"{RECORDS} is missing: create it with {REGENERATE}=1 pytest tests/reports/test_golden.py"
    expected = RECORDS.read_bytes()
    if actual != expected:
        pytest.fail(f"records.jsonl differs from {RECORDS.relative_to(GOLDEN.parents[2])}: "
                    f"{first_difference(expected, actual)}\n"
                    f"If the change is intended: {REGENERATE}=1 pytest tests/reports/test_golden.py, then review the diff.",
                    pytrace=False)


def test_first_difference_names_line_and_field():
    a = b'{"record_id": "q/a", "cot": "x", "tier": "easy"}\n{"record_id": "q/b", "cot": "y"}\n'
    b = b'{"record_id": "q/a", "cot": "x", "tier": "easy"}\n{"record_id": "q/b", "cot": "z"}\n'
    msg = first_difference(a, b)
    assert msg.startswith("first difference at line 2 of 2 expected / 2 produced") and "fields differing: cot" in msg
    assert "line 2 of 1 expected / 2 produced" in first_difference(a.split(b"\n")[0] + b"\n", b)
