"""MMLU in the original (hendrycks) CSV form: ``data/{dev,val,test}/<subject>_<split>.csv``.

Each record has six columns and no header: question, A, B, C, D, answer (the
letter of the correct option).  A first row ``question,A,B,C,D,answer`` is taken
as a header and skipped.  Fields are read with the :mod:`csv` module, so quoted
fields may hold commas, quotes and newlines; a malformed quote is an error.
Errors give the line where the record starts.  Blank lines are skipped.

When the file name is ``<subject>_<split>.csv`` (split dev, val, test or train,
e.g. ``clinical_knowledge_dev.csv``) the id is ``mmlu-<subject>-<split>-<row>``
(row: 1-based, header and blank lines not counted; the split keeps dev and val
of one subject apart) and the source ``mmlu/<subject>``.  Otherwise the id is
``mmlu-`` + a hash of stem and options, and the source ``mmlu``.
"""

from __future__ import annotations

import csv
import io
import pathlib
import re

from bus.messages import LETTERS

from reasonmed_async.loaders.limits import clip
from reasonmed_async.loaders.common import Collector, hash_id

__all__ = ["MMLU_COLUMNS", "load_mmlu", "looks_like_mmlu", "mmlu_subject"]

MMLU_COLUMNS = ("question", "A", "B", "C", "D", "answer")
_HEADER = [c.lower() for c in MMLU_COLUMNS]
_NAME = re.compile(r"^(?P<subject>[A-Za-z0-9_]+?)_(?P<split>dev|val|test|train)$")


def mmlu_subject(path: str | pathlib.Path) -> tuple[str, str] | None:
    """``(subject, split)`` from a file named ``<subject>_<split>.csv``, else None."""
    match = _NAME.match(pathlib.PurePath(path).stem)
    return (match["subject"], match["split"]) if match else None


def looks_like_mmlu(text: str) -> bool:
    """Not JSON, and the first record parses as CSV with six columns."""
    stripped = text.lstrip()
    if not stripped or stripped[0] in "{[":
        return False
    try:
        first = next((row for row in csv.reader(io.StringIO(stripped, newline=""), strict=True) if row), None)
    except csv.Error:
        return False
    return first is not None and len(first) == len(MMLU_COLUMNS)


def load_mmlu(col: Collector, text: str, path: str | pathlib.Path) -> None:
    """Validate every record of an MMLU CSV file into ``col``."""
    named = mmlu_subject(path)
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    rows = 0
    end = 0  # the last line of the previous record
    while True:
        start = end + 1
        try:
            row = next(reader)
        except StopIteration:
            break
        except csv.Error as exc:
            raise col.err({"line": start}, None, f"malformed CSV record: {exc}") from exc
        end = reader.line_num
        if not row or (len(row) == 1 and not row[0].strip()):
            continue
        loc = {"line": start}
        if len(row) != len(MMLU_COLUMNS):
            raise col.err(loc, None, f"expected {len(MMLU_COLUMNS)} columns ({', '.join(MMLU_COLUMNS)}), "
                          f"got {len(row)}")
        if rows == 0 and [c.strip().lower() for c in row] == _HEADER:
            continue
        rows += 1
        _record(col, row, loc, rows, named)


def _record(col: Collector, row: list[str], loc: dict, n: int, named: tuple[str, str] | None) -> None:
    stem = row[0].strip()
    if not stem:
        raise col.err(loc, "question", "is empty")
    options = col.options(list(zip(MMLU_COLUMNS[1:5], row[1:5])), loc)
    given = row[5].strip()
    if len(given) != 1 or given.upper() not in LETTERS[:4]:
        raise col.err(loc, "answer", f"{clip(row[5])} is not a letter A-D")
    answer = LETTERS.index(given.upper())
    if named is None:
        qid, source = hash_id("mmlu-", stem, options), "mmlu"
    else:
        subject, split = named
        qid, source = f"mmlu-{subject}-{split}-{n}", f"mmlu/{subject}"
    col.add(loc, f"line {loc['line']}", id=qid, stem=stem, options=options, answer=answer, source=source)
