"""Export formats beside the JSONL files: Parquet copies and LLaMA-Factory's ``dataset_info.json``.

The Parquet files are converted from the JSONL files just written, line by
line in batches (never the whole dataset in memory), so row *n* of
``records.parquet`` is line *n* of ``records.jsonl``.  The SFT sets and
``failures`` keep their flat string / integer columns.  In ``records.parquet``
``options`` and ``truncated_paths`` are lists of strings, ``errors`` is an
integer, and every nested object (``verdicts``, ``ranker``, ``reverification``,
``rejected_rewrites``, ``provenance``, ``response_provenance``) is a string
column holding the same JSON as ``records.jsonl``.

Parquet needs pyarrow, an optional extra: ``pip install reasonmed-async[export]``.
Reading an Alpaca file back (``read_alpaca``, ``split_instruction``) is here too:
``reasonmed score --file`` scores other datasets in that form.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

SFT_SETS = ("reasonmed", "cotmed", "responsemed")
PARQUET_SETS = (*SFT_SETS, "records", "failures")
ALPACA_COLUMNS = {"prompt": "instruction", "query": "input", "response": "output"}
PARQUET_MISSING = ("note: Parquet files not written: pyarrow is not installed "
                   "(pip install reasonmed-async[export])")
BATCH_ROWS = 2048
INSTRUCTION_HEAD = "Please answer the following multiple-choice question:\n"  # as export.instruction writes it
_OPTION = re.compile(r"\s*([A-J])[.)]\s+(.*?)\s*")

#: Columns written with the same order when a file is empty, and their Arrow types
#: ("str", "int", "float", "bool", "strs" = list of strings; "json" = nested value as JSON text).
COLUMNS: dict[str, dict[str, str]] = {
    **{name: {"instruction": "str", "input": "str", "output": "str"} for name in SFT_SETS},
    "failures": {"run_id": "str", "question_id": "str", "kind": "str", "stage": "str", "gate": "str", "path": "str",
                 "reason": "str", "error_class": "str", "message": "str", "raw": "str", "attempts": "int"},
    "records": {
        "record_id": "str", "run_id": "str", "question_id": "str", "question_ids": "strs", "source": "str", "question": "str",
        "context": "str", "options": "strs", "answer": "str", "answer_text": "str", "tier": "str",
        "errors": "int", "path": "str", "origin": "str", "stated_answer": "str", "cot": "str",
        "thinking": "str", "response": "str", "verdicts": "json", "ranker": "json", "rewrites": "json",
        "reverification": "json", "steps": "int", "warnings": "strs", "truncated_paths": "strs",
        "rejected_rewrites": "json", "provenance": "json",
        "response_provenance": "json",
    },
}


def dataset_info() -> dict[str, Any]:
    """LLaMA-Factory's registry of the three SFT sets (its data/README format, Alpaca formatting)."""
    return {name: {"file_name": f"{name}.jsonl", "formatting": "alpaca", "columns": dict(ALPACA_COLUMNS)}
            for name in SFT_SETS}


def write_dataset_info(out: Path) -> Path:
    path = out / "dataset_info.json"
    path.write_text(json.dumps(dataset_info(), indent=2) + "\n", encoding="utf-8")
    return path


def _kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "int" if isinstance(value, int) else "float"
    if value is None or isinstance(value, str):
        return "str"
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "strs"
    return "json"


def _batches(path: Path, size: int) -> Iterator[list[dict[str, Any]]]:
    batch: list[dict[str, Any]] = []
    with path.open(encoding="utf-8") as f:
        for line in f:
            batch.append(json.loads(line))
            if len(batch) == size:
                yield batch
                batch = []
    if batch:
        yield batch


def _first_row(path: Path) -> dict[str, Any] | None:
    with path.open(encoding="utf-8") as f:
        line = f.readline()
    return json.loads(line) if line.strip() else None


def _columns(name: str, path: Path) -> dict[str, str]:
    """The file's columns in its key order: the known types, else guessed from the first row."""
    known = COLUMNS.get(name, {})
    first = _first_row(path)
    if first is None:
        return dict(known)
    return {key: known.get(key) or _kind_of(value) for key, value in first.items()}


def _cell(kind: str, value: Any) -> Any:
    if kind == "json":
        return json.dumps(value, ensure_ascii=False)
    if kind == "str" and value is not None and not isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    return value


def jsonl_to_parquet(src: Path, dst: Path, name: str, *, batch_rows: int = BATCH_ROWS) -> int:
    """Convert one JSONL export to Parquet; returns the number of rows written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    arrow = {"str": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_(),
             "strs": pa.list_(pa.string()), "json": pa.string()}
    columns = _columns(name, src)
    schema = pa.schema([(key, arrow[kind]) for key, kind in columns.items()])
    rows = 0
    tmp = dst.with_suffix(".parquet.tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for batch in _batches(src, batch_rows):
            data = {key: [_cell(kind, row.get(key)) for row in batch] for key, kind in columns.items()}
            writer.write_table(pa.table(data, schema=schema))
            rows += len(batch)
    tmp.replace(dst)
    return rows


def parquet_available() -> bool:
    try:
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        return False
    return True


def write_parquet(out: Path, *, enabled: bool = True) -> bool:
    """``<name>.parquet`` beside each JSONL export; False (nothing written) when disabled or pyarrow
    is missing.  Parquet files of an earlier export are removed first: none is ever left stale."""
    for name in PARQUET_SETS:
        (out / f"{name}.parquet").unlink(missing_ok=True)
    if not enabled or not parquet_available():
        return False
    for name in PARQUET_SETS:
        src = out / f"{name}.jsonl"
        if src.exists():
            jsonl_to_parquet(src, out / f"{name}.parquet", name)
    return True


class AlpacaError(ValueError):
    """A file that is not a JSON list or JSONL of Alpaca records; the message names file and record."""


def read_alpaca(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSON list or JSONL file, each with string ``instruction`` and ``output``."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise AlpacaError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        if text.lstrip().startswith("["):
            rows = list(enumerate(json.loads(text), 1))
        else:
            rows = [(n, json.loads(line)) for n, line in enumerate(text.splitlines(), 1) if line.strip()]
    except json.JSONDecodeError as exc:
        raise AlpacaError(f"{path}: invalid JSON: {exc}") from exc
    for n, row in rows:
        bad = [k for k in ("instruction", "output") if not isinstance(row, dict) or not isinstance(row.get(k), str)]
        if bad:
            raise AlpacaError(f"{path}:{n}: not an Alpaca record: {', '.join(bad)} missing or not a string")
    return [row for _, row in rows]


def split_instruction(text: str) -> tuple[str, list[str]]:
    """(stem, options) of an instruction: its trailing ``A. …`` (or ``A) …``) lines are the options
    when there are two or more, lettered from A in order; without them, the whole text is the stem."""
    lines = text.removeprefix(INSTRUCTION_HEAD).strip().split("\n")
    k = 0
    while k < len(lines) - 1 and _OPTION.fullmatch(lines[-1 - k]):
        k += 1
    found = [m for m in map(_OPTION.fullmatch, lines[len(lines) - k:]) if m]
    if k < 2 or "".join(m.group(1) for m in found) != "ABCDEFGHIJ"[:k]:
        return "\n".join(lines).strip(), []
    return "\n".join(lines[:-k]).strip(), [m.group(2) for m in found]
