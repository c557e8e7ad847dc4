"""Question loaders: generic JSONL / JSON and PubMedQA's ``ori_pqal.json``.

``load_questions`` reads a whole file, validates every record and returns all
questions, or raises one :class:`InputError` naming the file, the line (or
record) and the field of the first problem.  It never returns a partial list.

The format is told from the content, not the file name:

* a JSON list of question objects (``record N`` in errors);
* a JSON object keyed by PubMed id whose values carry ``QUESTION``,
  ``CONTEXTS`` (``LABELS``) and ``final_decision`` (PubMedQA);
* otherwise one question object per line (JSONL; ``file:line`` in errors).

A generic question is ``{"id"?, "question", "options", "answer", "context"?,
"source"?}``; ``options`` is a list of 2..10 strings (or a dict keyed ``A``,
``B``, … in order, as MedQA ships it) and ``answer`` is the text of one option
or its letter.
"""

from __future__ import annotations

import hashlib
import json
import pathlib
from typing import Any

from bus.messages import LETTERS, Question

from .input_errors import InputError

__all__ = ["InputError", "content_id", "load_questions"]

PUBMEDQA_OPTIONS = ("yes", "no", "maybe")
_GENERIC_KEYS = ("question", "options", "answer")


def content_id(stem: str, options: tuple[str, ...] | list[str]) -> str:
    """The stable id of a question given without one: a hash of stem and options."""
    joined = stem + "\x1f" + "\x1f".join(options)
    return "q-" + hashlib.blake2b(joined.encode(), digest_size=8).hexdigest()


def load_questions(path: str | pathlib.Path, *, limit: int | None = None) -> list[Question]:
    """Read, validate and return every question of ``path`` (the first ``limit``)."""
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    name = str(path)
    text = _read_text(pathlib.Path(path), name)
    if not text.strip():
        raise InputError(name, "the file is empty (no questions)")
    questions = _Loader(name).load(text, pathlib.Path(path).suffix.lower())
    if not questions:
        raise InputError(name, "no questions in the file")
    return questions if limit is None else questions[:limit]


def _read_text(path: pathlib.Path, name: str) -> str:
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


def _parse(text: str) -> Any:
    return json.loads(text, object_pairs_hook=_pairs)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "boolean", int: "number", float: "number", str: "string", list: "list"}.get(
        type(value), "object" if isinstance(value, dict) else type(value).__name__
    )


class _Loader:
    def __init__(self, name: str) -> None:
        self.name = name
        self.questions: list[Question] = []
        self.seen: dict[str, str] = {}  # question id -> where it was first seen

    # -- format detection -------------------------------------------------

    def load(self, text: str, suffix: str) -> list[Question]:
        try:
            whole = _parse(text)
        except json.JSONDecodeError as exc:
            if suffix == ".jsonl" or self._looks_like_jsonl(text):
                return self._jsonl(text)
            raise InputError(self.name, f"invalid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno) from exc
        first = next(i for i, ln in enumerate(text.split("\n"), 1) if ln.strip())
        if isinstance(whole, list):
            for n, rec in enumerate(whole, 1):
                self._generic(rec, {"line": n, "record": n}, f"record {n}")
        elif isinstance(whole, dict) and any(k in whole for k in _GENERIC_KEYS):
            self._generic(whole, {"line": first}, f"line {first}")  # a one-line JSONL file
        elif isinstance(whole, dict):
            if whole.dup is not None:  # json would silently keep only the last of the two
                n = list(whole).index(whole.dup) + 1
                raise InputError(self.name, "PubMed id appears twice", line=n, record=f"pmid {whole.dup}", field="id")
            for n, (key, rec) in enumerate(whole.items(), 1):
                self._pubmedqa(key, rec, n)
        else:
            raise InputError(self.name, f"expected a list or an object of questions, got a {_kind(whole)}", line=first)
        return self.questions

    @staticmethod
    def _looks_like_jsonl(text: str) -> bool:
        line = next(ln for ln in text.split("\n") if ln.strip())
        try:
            return isinstance(_parse(line), dict)
        except json.JSONDecodeError:
            return False

    def _jsonl(self, text: str) -> list[Question]:
        # split on "\n" only: str.splitlines() would also split on U+2028 inside strings
        for n, line in enumerate(text.split("\n"), 1):
            if not line.strip():
                continue
            try:
                rec = _parse(line)
            except json.JSONDecodeError as exc:
                raise InputError(self.name, f"invalid JSON: {exc.msg} (column {exc.colno})", line=n) from exc
            self._generic(rec, {"line": n}, f"line {n}")
        return self.questions

    # -- records ----------------------------------------------------------

    def _err(self, loc: dict[str, Any], field: str | None, message: str) -> InputError:
        return InputError(self.name, message, field=field, **loc)

    def _str(self, rec: dict, key: str, loc: dict, *, required: bool = True, empty_ok: bool = False) -> str | None:
        if key not in rec:
            if required:
                raise self._err(loc, key, "missing")
            return None
        value = rec[key]
        if not isinstance(value, str):
            raise self._err(loc, key, f"must be a string, got a {_kind(value)}")
        if not empty_ok and not value.strip():
            raise self._err(loc, key, "is empty")
        return value

    def _record(self, rec: Any, loc: dict) -> dict:
        if not isinstance(rec, dict):
            raise self._err(loc, None, f"expected a JSON object, got a {_kind(rec)}")
        if getattr(rec, "dup", None) is not None:
            raise self._err(loc, rec.dup, "appears twice in the record")
        return rec

    def _generic(self, rec: Any, loc: dict, where: str) -> None:
        rec = self._record(rec, loc)
        stem = self._str(rec, "question", loc).strip()
        options = self._options(rec, loc)
        answer = self._answer(rec, options, loc)
        qid = self._str(rec, "id", loc, required=False)
        context = self._str(rec, "context", loc, required=False, empty_ok=True) or ""
        source = self._str(rec, "source", loc, required=False) or "generic"
        qid = qid.strip() if qid is not None else content_id(stem, options)
        self._add(loc, where, id=qid, stem=stem, options=options, answer=answer, source=source.strip(),
                  context=context.strip())

    def _options(self, rec: dict, loc: dict) -> tuple[str, ...]:
        if "options" not in rec:
            raise self._err(loc, "options", "missing")
        raw = rec["options"]
        if isinstance(raw, dict):  # MedQA style {"A": ..., "B": ...}
            keys = list(raw)
            if keys != list(LETTERS[: len(keys)]):
                raise self._err(loc, "options", f"keys must be A, B, C, ... in order, got {', '.join(keys)}")
            raw = list(raw.values())
        if not isinstance(raw, list):
            raise self._err(loc, "options", f"must be a list of strings, got a {_kind(raw)}")
        if not 2 <= len(raw) <= len(LETTERS):
            raise self._err(loc, "options", f"needs 2..{len(LETTERS)} options, got {len(raw)}")
        seen: dict[str, int] = {}
        for i, opt in enumerate(raw):
            label = f"option {LETTERS[i]}"
            if not isinstance(opt, str):
                raise self._err(loc, "options", f"{label} must be a string, got a {_kind(opt)}")
            if not opt.strip():
                raise self._err(loc, "options", f"{label} is empty")
            key = opt.strip().casefold()
            if key in seen:
                raise self._err(loc, "options", f"{label} repeats option {LETTERS[seen[key]]} ({opt.strip()!r})")
            seen[key] = i
        return tuple(opt.strip() for opt in raw)

    def _answer(self, rec: dict, options: tuple[str, ...], loc: dict) -> int:
        given = self._str(rec, "answer", loc)
        key = given.strip().casefold()
        for i, opt in enumerate(options):
            if opt.casefold() == key:
                return i
        letter = key.upper()
        if len(letter) == 1 and letter in LETTERS[: len(options)]:
            return LETTERS.index(letter)
        raise self._err(loc, "answer", f"{given.strip()!r} is not among the {len(options)} options "
                        f"(give a letter A-{LETTERS[len(options) - 1]} or the text of one option)")

    def _pubmedqa(self, key: str, rec: Any, n: int) -> None:
        loc = {"line": n, "record": f"pmid {key}"}
        if not key.strip():
            raise self._err(loc, None, "the PubMed id (the key) is empty")
        rec = self._record(rec, loc)
        stem = self._str(rec, "QUESTION", loc).strip()
        contexts = self._str_list(rec, "CONTEXTS", loc)
        labels = self._str_list(rec, "LABELS", loc) if "LABELS" in rec else None
        if labels is not None and len(labels) != len(contexts):
            raise self._err(loc, "LABELS", f"has {len(labels)} labels for {len(contexts)} contexts")
        decision = self._str(rec, "final_decision", loc).strip().lower()
        if decision not in PUBMEDQA_OPTIONS:
            raise self._err(loc, "final_decision", f"{rec['final_decision']!r} is not yes, no or maybe")
        parts = [c.strip() for c in contexts] if labels is None else [
            f"{lab.strip()}: {c.strip()}" if lab.strip() else c.strip() for lab, c in zip(labels, contexts)
        ]
        self._add(loc, f"record 'pmid {key}'", id=f"pubmedqa-{key.strip()}", stem=stem, options=PUBMEDQA_OPTIONS,
                  answer=PUBMEDQA_OPTIONS.index(decision), source="pubmedqa", context="\n".join(parts))

    def _str_list(self, rec: dict, key: str, loc: dict) -> list[str]:
        if key not in rec:
            raise self._err(loc, key, "missing")
        value = rec[key]
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self._err(loc, key, f"must be a list of strings, got a {_kind(value)}")
        if not value:
            raise self._err(loc, key, "is an empty list")
        return value

    def _add(self, loc: dict, where: str, **fields: Any) -> None:
        qid = fields["id"]
        if qid in self.seen:
            raise self._err(loc, "id", f"duplicate id {qid!r} (first at {self.seen[qid]}, again at {where})")
        try:
            question = Question(ordinal=len(self.questions), **fields)
        except (ValueError, TypeError) as exc:  # msgspec.ValidationError is a ValueError
            raise self._err(loc, None, str(exc)) from exc
        self.seen[qid] = where
        self.questions.append(question)
