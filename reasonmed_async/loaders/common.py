"""What every question loader shares: reading, JSON parsing, field checks, the collector.

A :class:`Collector` gathers the questions of one file.  Each source parser
(``loaders_generic``, ``loaders_pubmedqa``, ``loaders_medqa``, ``loaders_medmcqa``,
``loaders_mmlu``) validates a record with its helpers and hands the fields to
:meth:`Collector.add`, which numbers the questions and refuses a duplicate id.
Errors are :class:`InputError` located by ``loc``: ``{"line": n}`` (JSONL, CSV),
``{"line": n, "record": n}`` (JSON list) or ``{"line": n, "record": "pmid 1"}``.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
import re
from typing import Any

from bus.messages import LETTERS, Question

from reasonmed_async.loaders.errors import InputError
from reasonmed_async.loaders.limits import InputLimits, NestingError, clip, depth_problem, text_problem
from reasonmed_async.loaders.seen import SeenIds

__all__ = ["Collector", "content_id", "detect_test_split", "hash_id", "kind", "parse_json", "read_text"]


def hash_id(prefix: str, stem: str, options: tuple[str, ...] | list[str]) -> str:
    """``prefix`` + a hash of stem and options: the stable id of a question given without one."""
    joined = stem + "\x1f" + "\x1f".join(options)
    return prefix + hashlib.blake2b(joined.encode(), digest_size=8).hexdigest()


def content_id(stem: str, options: tuple[str, ...] | list[str]) -> str:
    """The stable id of a generic question given without one: a hash of stem and options."""
    return hash_id("q-", stem, options)


# -- the test-split rule ------------------------------------------------------

_TOKENS = re.compile(r"[^0-9a-z]+")


def detect_test_split(path: str | pathlib.Path) -> str | None:
    """Why ``path`` names a test split, or None.

    A test split is a path (as given) with a directory named ``test``, or a file
    name with ``test`` as a whole word between non-alphanumeric separators:
    ``US/test.jsonl``, ``medmcqa/test.json``, ``data/test/anatomy_test.csv``,
    ``clinical_knowledge_test.csv``, ``test_ground_truth.json``,
    ``test-00000-of-00001.parquet``.  ``tests/``, ``latest.jsonl`` or
    ``contest_train.jsonl`` are not.  Case does not matter.
    """
    pure = pathlib.PurePath(path)
    for part in pure.parts[:-1]:
        if part.lower() == "test":
            return f"it is under a directory named {part!r}"
    if "test" in _TOKENS.split(pure.name.lower()):
        return f"its name {pure.name!r} has the word 'test'"
    return None


# -- reading and JSON ---------------------------------------------------------


def read_text(path: pathlib.Path, name: str) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(name, f"cannot read the file: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise InputError(name, f"not valid UTF-8 (byte {exc.start})", line=line) from exc


class _Obj(dict):
    """A JSON object that remembers the first key it saw twice."""

    dup: str | None = None


def _pairs(pairs: list[tuple[str, Any]]) -> _Obj:
    obj = _Obj()
    for key, value in pairs:
        if key in obj and obj.dup is None:
            obj.dup = key
        obj[key] = value
    return obj


def parse_json(text: str, max_depth: int = InputLimits.max_depth) -> Any:
    """``json.loads``, with every object an ``_Obj`` that records a repeated key in ``dup``;
    ``NestingError`` for nesting deeper than ``max_depth`` (also where ``json`` itself would recurse too deep)."""
    try:
        value = json.loads(text, object_pairs_hook=_pairs)
    except RecursionError:
        raise NestingError(f"nests deeper than {max_depth} levels ([input] max_depth)") from None
    problem = depth_problem(value, max_depth)
    if problem is not None:
        raise NestingError(problem)
    return value


def kind(value: Any) -> str:
    """The JSON name of a value's type, for messages."""
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "list"}.get(
        type(value), "object" if isinstance(value, dict) else type(value).__name__
    )


# -- the collector ------------------------------------------------------------


class Collector:
    """The questions of one file so far, and the checks shared by every source."""

    def __init__(self, name: str, limits: InputLimits | None = None, *, check_ids: bool = True) -> None:
        """``check_ids=False``: ids are not checked for repeats (a pass over a file already validated whole,
        whose ids its reader compares with the first pass's: ``QuestionSource``)."""
        self.name = name
        self.check_ids = check_ids
        self.limits = limits or InputLimits()
        self.questions: list[Question] = []  # a streaming reader takes them out as they come
        self.count = 0  # questions added so far: the next one's ordinal
        self.seen = SeenIds()  # question id -> where it was first seen (a compact table: 200,000 ids in ~8 MiB)

    def err(self, loc: dict[str, Any], field: str | None, message: str) -> InputError:
        return InputError(self.name, message, field=field, **loc)

    def str_field(self, rec: dict, key: str, loc: dict, *, required: bool = True, empty_ok: bool = False,
                  null_ok: bool = False) -> str | None:
        """``rec[key]`` as a string; None when it is absent (and not required) or null (and ``null_ok``)."""
        if key not in rec:
            if required:
                raise self.err(loc, key, "missing")
            return None
        value = rec[key]
        if value is None and null_ok:
            return None
        if not isinstance(value, str):
            raise self.err(loc, key, f"must be a string, got a {kind(value)}")
        if not empty_ok and not value.strip():
            raise self.err(loc, key, "is empty")
        return value

    def record(self, rec: Any, loc: dict) -> dict:
        """``rec`` if it is a JSON object without a repeated key."""
        if not isinstance(rec, dict):
            raise self.err(loc, None, f"expected a JSON object, got a {kind(rec)}")
        if getattr(rec, "dup", None) is not None:
            raise self.err(loc, rec.dup, "appears twice in the record")
        return rec

    def options(self, items: list[tuple[str, Any]], loc: dict) -> tuple[str, ...]:
        """Check options given as ``(field, value)`` in order: 2..10 distinct non-empty strings."""
        if not 2 <= len(items) <= len(LETTERS):
            field = items[0][0] if items else "options"
            raise self.err(loc, field, f"needs 2..{len(LETTERS)} options, got {len(items)}")
        seen: dict[str, int] = {}
        for i, (field, opt) in enumerate(items):
            label = f"option {LETTERS[i]}"
            if not isinstance(opt, str):
                raise self.err(loc, field, f"{label} must be a string, got a {kind(opt)}")
            if not opt.strip():
                raise self.err(loc, field, f"{label} is empty")
            key = opt.strip().casefold()
            if key in seen:
                raise self.err(loc, field, f"{label} repeats option {LETTERS[seen[key]]} ({clip(opt.strip())})")
            seen[key] = i
        return tuple(opt.strip() for _, opt in items)

    def letter_options(self, rec: dict, loc: dict) -> tuple[str, ...]:
        """``rec["options"]``: a list of strings, or a dict keyed ``A``, ``B``, … in order (MedQA)."""
        if "options" not in rec:
            raise self.err(loc, "options", "missing")
        raw = rec["options"]
        if isinstance(raw, dict):
            keys = list(raw)
            if keys != list(LETTERS[: len(keys)]):
                raise self.err(loc, "options", f"keys must be A, B, C, ... in order, got {', '.join(keys)}")
            raw = list(raw.values())
        if not isinstance(raw, list):
            raise self.err(loc, "options", f"must be a list of strings, got a {kind(raw)}")
        return self.options([("options", opt) for opt in raw], loc)

    def add(self, loc: dict, where: str, **fields: Any) -> None:
        """Append a question (ordinal = its position), refusing an id seen before."""
        qid = fields["id"]
        if self.check_ids and (first := self.seen.first(qid)) is not None:
            raise self.err(loc, "id", f"duplicate id {clip(qid)} (first at {first}, again at {where})")
        self.check_text(loc, fields)
        try:
            question = Question(ordinal=self.count, **fields)
        except (ValueError, TypeError) as exc:  # msgspec.ValidationError is a ValueError
            raise self.err(loc, None, str(exc)) from exc
        if self.check_ids:
            self.seen.add(qid, where)
        self.questions.append(question)
        self.count += 1

    def check_text(self, loc: dict, fields: dict[str, Any]) -> None:
        """Every text of a question valid Unicode (no lone surrogate, no NUL) and within its size limit."""
        lim = self.limits
        texts = [("id", fields.get("id"), 1_000), ("stem", fields.get("stem"), lim.max_question_chars),
                 ("context", fields.get("context"), lim.max_context_chars),
                 *((f"options[{i}]", o, lim.max_option_chars) for i, o in enumerate(fields.get("options", ())))]
        for name, value, limit in texts:
            if isinstance(value, str) and (problem := text_problem(value, limit)) is not None:
                raise self.err(loc, name, problem)
