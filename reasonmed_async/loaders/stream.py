"""A question file read as a stream: validated whole first, then read again question by question.

``QuestionSource(path, ...)`` checks every record at construction — the same
checks and the same :class:`InputError` as :func:`load_questions` — but keeps
none of the questions; iterating it reads the file again and yields them in
order (the first ``limit``).  So a run can ingest a file of any size in bounded
batches, and a bad record anywhere refuses the file before anything is ingested.

JSONL files (generic, MedQA) are read line by line, never whole.  JSON
documents (a list, PubMedQA's object), CSV (MMLU) and MedMCQA (whose ``cop``
base is told from the whole file) are parsed whole by ``load_questions``: the
validating pass keeps its questions (the first ``limit``) for the first
iteration, which hands them out and lets them go, so such a file is parsed once
for a run (no more held than while its one pass ran); a later iteration parses
it again.
"""

from __future__ import annotations

import json
import pathlib
from array import array
from collections.abc import Iterator
from itertools import islice

from bus.messages import Question

import msgspec

from reasonmed_async.loaders.common import Collector, detect_test_split, parse_json
from reasonmed_async.loaders.dedup import merge_key
from reasonmed_async.loaders.dispatch import _detect, _is_record, load_questions
from reasonmed_async.loaders.limits import InputLimits, NestingError, clip
from reasonmed_async.loaders.errors import InputError
from reasonmed_async.loaders.generic import GenericParser
from reasonmed_async.loaders.medqa import MedQAParser

__all__ = ["QuestionSource"]

_STREAMED = {"generic": GenericParser, "medqa": MedQAParser}


class QuestionSource:
    """The validated questions of one file, read again on each iteration; ``len()`` is their number."""

    def __init__(self, path: str | pathlib.Path, *, limit: int | None = None, source_format: str | None = None,
                 allow_test_split: bool = False, cop_base: int | None = None, merge_duplicates: bool = False,
                 limits: InputLimits | None = None) -> None:
        self.path = pathlib.Path(path)
        self.name = str(path)
        self.limits = limits or InputLimits()
        self._options = {"source_format": source_format, "allow_test_split": allow_test_split, "cop_base": cop_base,
                         "limits": self.limits}
        if not allow_test_split and detect_test_split(path) is not None:
            load_questions(path, **self._options)  # refuses it, with the same words
        self._streamed = self._stream_format(source_format)
        self._limit = limit
        # duplicates merged as ``dedup.merge_duplicates`` merges them, found in the same pass (16 bytes a question)
        first: dict[bytes, int] = {}
        self._merged: dict[int, list[str]] = {}  # position of a kept question -> the ids merged into it
        total = 0
        self._ids = array("I")  # each question's id hashed: a later pass must read the same ids
        self._validated = False
        #: a document parsed whole: its validated questions, for the first iteration (then None)
        self._held: list[Question] | None = None
        for i, q in enumerate(self._validating_pass()):  # every record is checked, the limit counts after
            if limit is not None and i >= limit:
                continue
            total += 1
            if merge_duplicates and (at := first.setdefault(merge_key(q), i)) != i:
                self._merged.setdefault(at, []).append(q.id)
        self._validated = True
        self._kept = set(first.values()) if self._merged else None
        self._count = len(self._kept) if self._kept is not None else total
        self.duplicates: dict[str, tuple[str, ...]] = {}  # kept id -> the ids merged into it, in input order
        if self._merged:
            held = self._held if self._held is not None else islice(self._questions(), limit)
            self.duplicates = {q.id: tuple(self._merged[i]) for i, q in enumerate(held) if i in self._merged}

    def __len__(self) -> int:
        return self._count

    def __iter__(self) -> Iterator[Question]:
        held, self._held = self._held, None
        questions = iter(held) if held is not None else islice(self._questions(), self._limit)
        if not self._merged:
            return questions
        return self._merging(questions)

    def _merging(self, questions: Iterator[Question]) -> Iterator[Question]:
        assert self._kept is not None
        kept = 0
        for i, q in enumerate(questions):
            if i in self._kept:
                yield msgspec.structs.replace(q, ordinal=kept, duplicate_ids=tuple(self._merged.get(i, ())))
                kept += 1

    def _validating_pass(self) -> Iterator[Question]:
        """The first pass; a document parsed whole is parsed here once and its first ``limit`` questions kept."""
        if self._streamed is not None:
            return self._questions()
        whole = load_questions(self.path, **self._options)
        self._held = whole if self._limit is None else whole[: self._limit]
        return iter(whole)

    def _questions(self) -> Iterator[Question]:
        if self._streamed is None:
            yield from load_questions(self.path, **self._options)
            return
        # The first pass checks ids for repeats (a table of every id); later passes compare each id with the
        # first pass's (4 bytes a question) instead: the same ids in the same order cannot repeat.
        validated = self._validated
        col = Collector(self.name, self.limits, check_ids=not validated)
        parser = self._streamed(col)
        ids = self._ids
        for rec, loc, where in self._records():
            parser.feed(rec, loc, where)
            for q in col.questions:
                self._same_id(ids, validated, q, loc)
            yield from col.questions
            col.questions.clear()
        parser.finish()
        for q in col.questions:
            self._same_id(ids, validated, q, {})
        yield from col.questions
        if not col.count:
            raise InputError(self.name, "no questions in the file")

    def _same_id(self, ids: array, validated: bool, q: Question, loc: dict) -> None:
        """First pass: note ``q``'s id; later passes: refuse an id that is not the one first read there."""
        h = hash(q.id) & 0xFFFFFFFF
        if not validated:
            ids.append(h)
        elif q.ordinal >= len(ids) or ids[q.ordinal] != h:
            raise InputError(self.name, f"the file changed while it was being read (the id here is now {clip(q.id)}):"
                             " run the command again", field="id", **loc)

    def _stream_format(self, fmt: str | None) -> type[GenericParser] | type[MedQAParser] | None:
        """The parser to stream the file with, or None when it must be parsed whole."""
        if self.path.suffix.lower() == ".csv" or fmt not in (None, *_STREAMED):
            return None
        head = next(((n, line) for n, line in self._lines() if line.strip()), None)
        if head is None:
            return None  # empty: load_questions says so
        if not head[1].lstrip().startswith("{"):
            return None  # no JSON object (a list as `json.dump` writes it, one line, CSV, ...): parsed whole, once
        try:
            first = parse_json(head[1], self.limits.max_depth)
        except (json.JSONDecodeError, NestingError):
            return None  # a JSON document over several lines, or not JSON: parsed whole
        if not isinstance(first, dict) or (fmt is None and not _is_record(first)):
            return None
        return _STREAMED.get(fmt or _detect(first))

    def _lines(self) -> Iterator[tuple[int, str]]:
        offset = 0
        try:
            with self.path.open("rb") as f:
                for n, raw in enumerate(f, 1):
                    try:
                        line = raw.decode("utf-8-sig" if n == 1 else "utf-8")
                    except UnicodeDecodeError as exc:
                        raise InputError(self.name, f"not valid UTF-8 (byte {offset + exc.start})", line=n) from exc
                    offset += len(raw)
                    yield n, line[:-1] if line.endswith("\n") else line
        except OSError as exc:
            raise InputError(self.name, f"cannot read the file: {exc.strerror or exc}") from exc

    def _records(self) -> Iterator[tuple[object, dict, str]]:
        for n, line in self._lines():
            if not line.strip():
                continue
            try:
                rec = parse_json(line, self.limits.max_depth)
            except NestingError as exc:
                raise InputError(self.name, str(exc), line=n) from None
            except json.JSONDecodeError as exc:
                raise InputError(self.name, f"invalid JSON: {exc.msg} (column {exc.colno})", line=n) from exc
            yield rec, {"line": n}, f"line {n}"
