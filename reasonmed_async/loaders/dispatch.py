"""Question loaders: the façade that tells the source format and dispatches.

``load_questions`` reads a whole file, validates every record and returns all
questions, or raises one :class:`InputError` naming the file, the line (or
record) and the field of the first problem.  It never returns a partial list:
``limit`` cuts the list only after the whole file has been validated.

Formats (``SOURCE_FORMATS``; each module's docstring has the details):

* ``generic`` (``loaders_generic``): JSONL or a JSON list of
  ``{"id"?, "question", "options", "answer", "context"?, "source"?}``;
* ``pubmedqa`` (``loaders_pubmedqa``): ``ori_pqal.json``, an object keyed by PubMed id;
* ``medqa`` (``loaders_medqa``): JSONL with ``question``, ``options`` as a dict
  ``{"A": …}``, ``answer_idx`` (and ``answer`` text, checked against it);
* ``medmcqa`` (``loaders_medmcqa``): JSONL with ``id``, ``question``,
  ``opa``..``opd``, ``cop``; whether ``cop`` counts from 0 or 1 is told per file,
  or given with ``cop_base``;
* ``mmlu`` (``loaders_mmlu``): hendrycks CSV, six columns question, A, B, C, D, answer.

With ``source_format=None`` the format is told from the content:

* a ``.csv`` file is MMLU;
* a JSON object whose values are records (not itself a record) is PubMedQA;
* JSONL (one object per line; ``file:line`` in errors) or a JSON list
  (``record N``) takes the format of its first record: MedMCQA if it has most of
  ``opa``..``opd``, ``cop`` and no ``options``; MedQA if it has ``answer_idx``
  and a dict of ``options``; generic otherwise;
* a file that is not JSON but whose first record is a six-column CSV row is MMLU.

**Test splits are refused** (the paper never generated from them) unless
``allow_test_split=True`` (``--allow-test-split``).  The rule looks at the path as
given, before reading it: a directory named ``test``, or ``test`` as a whole word
of the file name (words split at anything not a letter or digit), e.g.
``US/test.jsonl``, ``medmcqa/test.json``, ``clinical_knowledge_test.csv``,
``test_ground_truth.json``.  ``train``, ``dev`` and ``val`` files load.
"""

from __future__ import annotations

import json
import pathlib
from collections.abc import Iterable, Iterator
from typing import Any

from bus.messages import Question

from reasonmed_async.loaders.errors import InputError
from reasonmed_async.loaders.formats import SOURCE_FORMATS
from reasonmed_async.loaders.common import Collector, content_id, detect_test_split, kind, parse_json, read_text
from reasonmed_async.loaders.limits import InputLimits, NestingError
from reasonmed_async.loaders.generic import GenericParser
from reasonmed_async.loaders.medmcqa import MedMCQAParser, looks_like_medmcqa
from reasonmed_async.loaders.medqa import MedQAParser, looks_like_medqa
from reasonmed_async.loaders.mmlu import load_mmlu, looks_like_mmlu
from reasonmed_async.loaders.pubmedqa import PUBMEDQA_OPTIONS, load_pubmedqa

__all__ = ["PUBMEDQA_OPTIONS", "SOURCE_FORMATS", "InputError", "content_id", "detect_test_split", "load_questions"]

_RECORD_KEYS = ("question", "options", "answer")

Records = Iterable[tuple[Any, dict[str, Any], str]]  # (record, location, "line N" / "record N")


def load_questions(
    path: str | pathlib.Path,
    *,
    limit: int | None = None,
    source_format: str | None = None,
    allow_test_split: bool = False,
    cop_base: int | None = None,
    limits: InputLimits | None = None,
) -> list[Question]:
    """Read, validate and return every question of ``path`` (the first ``limit``).

    ``source_format`` is one of ``SOURCE_FORMATS``, or None to tell it from the
    content.  ``allow_test_split`` lets a test split through (see the module
    docstring).  ``cop_base`` (0, 1 or None = tell from the file) says which
    option MedMCQA's ``cop`` counts from; other formats ignore it.
    """
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if source_format is not None and source_format not in SOURCE_FORMATS:
        raise ValueError(f"source_format must be one of {', '.join(SOURCE_FORMATS)} or None, got {source_format!r}")
    if cop_base not in (None, 0, 1):
        raise ValueError(f"cop_base must be 0, 1 or None, got {cop_base!r}")
    name = str(path)
    if not allow_test_split and (reason := detect_test_split(path)) is not None:
        raise InputError(name, f"refused as a test split: {reason}. The ReasonMed paper never generated from test "
                         "splits; pass --allow-test-split (allow_test_split=True) to load it anyway")
    text = read_text(pathlib.Path(path), name)
    if not text.strip():
        raise InputError(name, "the file is empty (no questions)")
    col = Collector(name, limits)
    _load(col, text, pathlib.Path(path), source_format, cop_base)
    if not col.questions:
        raise InputError(name, "no questions in the file")
    return col.questions if limit is None else col.questions[:limit]


def _load(col: Collector, text: str, path: pathlib.Path, fmt: str | None, cop_base: int | None) -> None:
    suffix = path.suffix.lower()
    if fmt == "mmlu" or (fmt is None and suffix == ".csv"):
        load_mmlu(col, text, path)
        return
    try:
        whole = parse_json(text, col.limits.max_depth)
    except NestingError as exc:
        raise InputError(col.name, str(exc)) from None
    except json.JSONDecodeError as exc:
        if fmt != "pubmedqa" and (suffix == ".jsonl" or _looks_like_jsonl(text)):
            _feed(col, _jsonl(col.name, text, col.limits.max_depth), fmt, cop_base)
        elif fmt is None and looks_like_mmlu(text):
            load_mmlu(col, text, path)
        else:
            raise InputError(col.name, f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno) from exc
        return
    first = text.count("\n", 0, len(text) - len(text.lstrip())) + 1  # the first line that is not blank
    if fmt == "pubmedqa":
        load_pubmedqa(col, whole)
    elif isinstance(whole, list):
        _feed(col, ((rec, {"line": n, "record": n}, f"record {n}") for n, rec in enumerate(whole, 1)), fmt, cop_base)
    elif isinstance(whole, dict) and (fmt is not None or _is_record(whole)):
        _feed(col, [(whole, {"line": first}, f"line {first}")], fmt, cop_base)  # a one-line JSONL file
    elif isinstance(whole, dict):
        load_pubmedqa(col, whole)
    else:
        raise InputError(col.name, f"expected a list or an object of questions, got a {kind(whole)}", line=first)


def _is_record(obj: dict) -> bool:
    return any(k in obj for k in _RECORD_KEYS) or looks_like_medmcqa(obj)


def _detect(rec: Any) -> str:
    """The format of a JSON record: ``medmcqa``, ``medqa`` or ``generic``."""
    if looks_like_medmcqa(rec):
        return "medmcqa"
    if looks_like_medqa(rec):
        return "medqa"
    return "generic"


def _feed(col: Collector, records: Records, fmt: str | None, cop_base: int | None) -> None:
    """Validate ``records`` with the parser of ``fmt`` (or of the first record's format)."""
    parser: GenericParser | MedQAParser | MedMCQAParser | None = None
    for rec, loc, where in records:
        if parser is None:
            chosen = fmt or _detect(rec)
            parser = (MedMCQAParser(col, cop_base) if chosen == "medmcqa" else
                      MedQAParser(col) if chosen == "medqa" else GenericParser(col))
        parser.feed(rec, loc, where)
    if parser is not None:
        parser.finish()


def _looks_like_jsonl(text: str) -> bool:
    line = next(ln for ln in text.split("\n") if ln.strip())
    try:
        return isinstance(parse_json(line), dict)
    except (json.JSONDecodeError, NestingError):
        return False


def _jsonl(name: str, text: str, max_depth: int) -> Iterator[tuple[Any, dict[str, Any], str]]:
    # split on "\n" only: str.splitlines() would also split on U+2028 inside strings
    for n, line in enumerate(text.split("\n"), 1):
        if not line.strip():
            continue
        try:
            rec = parse_json(line, max_depth)
        except NestingError as exc:
            raise InputError(name, str(exc), line=n) from None
        except json.JSONDecodeError as exc:
            raise InputError(name, f"invalid JSON: {exc.msg} (column {exc.colno})", line=n) from exc
        yield rec, {"line": n}, f"line {n}"
