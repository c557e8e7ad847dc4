"""Prompt building: pure functions from a question (and what a stage knows) to chat messages.

Each stage has one ``string.Template`` text (``agents/templates/<name>.txt``),
overridable by a same-named file in a user's directory.  Placeholders are
checked when the templates are loaded, so a typo fails at start-up, not after
the first thousand LLM calls.
"""

from __future__ import annotations

import functools
import hashlib
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path as FsPath
from typing import Any

from agents.llm import ChatMessage
from bus.messages import LETTERS, Judgement, Path, Question

from .rendering import Pieces, compile_section, substitute as _substitute
from .schemas import RANKING_SCHEMA, SCORE_SCHEMA, VERDICT_SCHEMA, ranking_schema  # noqa: F401  (re-exported)

_QUESTION = frozenset({"stem", "options", "context"})
_JUDGED = _QUESTION | {"answer"}

#: Variables each template may use; a template may use any subset of them (only an unknown one is an
#: error).  The generator never sees the answer; the scorer sees it only with ``show_answer``.
ALLOWED: Mapping[str, frozenset[str]] = {
    "generate": _QUESTION,
    "verify": _JUDGED | {"cot"},
    "rank": _JUDGED | {"paths", "names"},
    "refine": _JUDGED | {"cot", "error_reasons"},
    "optimize": _JUDGED | {"cot", "error_reasons"},
    "regenerate": _JUDGED | {"error_reasons"},
    "summarize": _JUDGED | {"cot"},
    "score": _JUDGED | {"answer_line", "response"},
}
TEMPLATE_NAMES: tuple[str, ...] = tuple(ALLOWED)

SYSTEM_HEADER, USER_HEADER = "[system]", "[user]"
NO_ERROR_REASONS = "(none recorded)"

def _check(name: str, text: str, where: str) -> None:
    """Raise ValueError, naming ``where``, if ``text`` is not a valid template for stage ``name``."""
    tpl = string.Template(text)
    try:
        split_sections(text)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from exc
    if not tpl.is_valid():
        raise ValueError(
            f"{where}: invalid '$' placeholder syntax (write $$ for a literal dollar sign, "
            f"${{name}} for a placeholder)"
        )
    used = set(tpl.get_identifiers())
    unknown = sorted(used - ALLOWED[name])
    if unknown:
        raise ValueError(
            f"{where}: unknown placeholder(s) {', '.join('${' + u + '}' for u in unknown)}; "
            f"the {name!r} template may use {', '.join('${' + a + '}' for a in sorted(ALLOWED[name]))}"
        )
    system, user = split_sections(text)
    if system is not None and not system.strip():
        raise ValueError(f"{where}: the {SYSTEM_HEADER} section is empty")
    if not user.strip():
        raise ValueError(f"{where}: the user message is empty")


def split_sections(text: str) -> tuple[str | None, str]:
    """``(system, user)``: a template whose first line is ``[system]`` holds a system message up to a
    line ``[user]``; any other template is the user message alone."""
    lines = text.lstrip("\n").split("\n")
    if lines[0].strip() != SYSTEM_HEADER:
        return None, text
    rest = lines[1:]
    for i, line in enumerate(rest):
        if line.strip() == USER_HEADER:
            return "\n".join(rest[:i]), "\n".join(rest[i + 1 :])
    raise ValueError(f"a template starting with {SYSTEM_HEADER} needs a line {USER_HEADER} where the user message starts")


@dataclass(frozen=True)
class Templates:
    """The prompt texts of every stage, validated.  Build with ``Templates.load``."""

    items: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        names = [n for n, _ in self.items]
        if sorted(names) != sorted(TEMPLATE_NAMES):
            raise ValueError(f"templates must be exactly {', '.join(TEMPLATE_NAMES)}; got {', '.join(names)}")
        for name, text in self.items:
            _check(name, text, f"template {name!r}")

    @classmethod
    def load(cls, override_dir: str | FsPath | None = None) -> Templates:
        """The packaged templates, each replaced by ``<override_dir>/<name>.txt`` where that exists."""
        packaged = resources.files("agents") / "templates"
        texts = {name: (packaged / f"{name}.txt").read_text(encoding="utf-8") for name in TEMPLATE_NAMES}
        if override_dir is not None:
            root = FsPath(override_dir)
            if not root.is_dir():
                raise ValueError(f"template override directory {str(root)!r} does not exist")
            for file in sorted(root.glob("*.txt")):
                if file.stem not in ALLOWED:
                    raise ValueError(
                        f"{file}: not a template name; expected one of {', '.join(f'{n}.txt' for n in TEMPLATE_NAMES)}"
                    )
                text = file.read_text(encoding="utf-8")
                _check(file.stem, text, str(file))
                texts[file.stem] = text
        return cls(tuple((name, texts[name]) for name in TEMPLATE_NAMES))

    def text(self, name: str) -> str:
        try:
            return self._by_name[name]
        except KeyError:
            raise KeyError(f"no template named {name!r}; known: {', '.join(TEMPLATE_NAMES)}") from None

    @functools.cached_property
    def _by_name(self) -> dict[str, str]:
        return dict(self.items)

    def hash(self, name: str) -> str:
        """First 12 hex chars of the sha256 of the template's text: recorded as provenance (with every call:
        computed once per text)."""
        return _sha256_12(self.text(name))

    def hashes(self) -> dict[str, str]:
        return {name: self.hash(name) for name in TEMPLATE_NAMES}


@functools.lru_cache(maxsize=64)
def _sha256_12(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


# --------------------------------------------------------------------------- rendering pieces


def format_options(question: Question) -> str:
    """``A) first option`` ... one per line."""
    return "\n".join(f"{LETTERS[i]}) {opt}" for i, opt in enumerate(question.options))


def format_answer(question: Question) -> str:
    """The gold answer as ``B) option text``."""
    return f"{question.answer_letter}) {question.answer_text}"


def format_context(question: Question) -> str:
    """``Context:\\n<text>\\n\\n``, or the empty string when the question has no context."""
    ctx = question.context.strip()
    return f"Context:\n{ctx}\n\n" if ctx else ""


def format_paths(paths: Sequence[Path]) -> str:
    """Each path as ``[name]`` on its own line, then its CoT; paths separated by a blank line."""
    return "\n\n".join(f"[{p.name}]\n{p.cot.strip()}" for p in paths)


def format_error_reasons(judgements: Sequence[Judgement]) -> str:
    """``- [path] reason`` per judgement (reason on one line), or ``(none recorded)``."""
    lines = [f"- [{j.path}] {' '.join(j.reason.split())}" for j in judgements if j.reason.strip()]
    return "\n".join(lines) if lines else NO_ERROR_REASONS


_QUESTION_FIELDS: dict[int, tuple[Question, dict[str, str]]] = {}  # id -> (the question, its fields)
_QUESTION_FIELDS_MAX = 128


def _question_fields(q: Question) -> dict[str, str]:
    """A question's own template variables, formatted once per question instead of once per call (about
    twenty calls a question): a frozen question's are a pure function of it.  The entry holds the question,
    so its id is not reused while it is there; never changed in place (callers copy it)."""
    entry = _QUESTION_FIELDS.get(id(q))
    if entry is not None and entry[0] is q:
        return entry[1]
    if len(_QUESTION_FIELDS) >= _QUESTION_FIELDS_MAX:  # more questions in flight than that: start again
        _QUESTION_FIELDS.clear()
    fields = {"stem": q.stem.strip(), "options": format_options(q), "context": format_context(q),
              "answer": format_answer(q)}
    _QUESTION_FIELDS[id(q)] = (q, fields)
    return fields


def _fields(q: Question, extra: Mapping[str, str]) -> dict[str, str]:
    return {**_question_fields(q), **extra}


def render_messages(text: str, fields: Mapping[str, str]) -> tuple[ChatMessage, ...]:
    """A template's messages: its system section (if any), then the user message, variables filled in."""
    system, user = _compiled(text)
    out = [ChatMessage("system", _substitute(system, fields).strip())] if system is not None else []
    out.append(ChatMessage("user", _substitute(user, fields).strip()))
    return tuple(out)


@functools.lru_cache(maxsize=64)
def _compiled(text: str) -> tuple[Pieces | None, Pieces]:
    """A template's sections split and compiled once (a handful of texts, rendered on every call)."""
    system, user = split_sections(text)
    return (None if system is None else compile_section(system)), compile_section(user)


def _messages(t: Templates, name: str, q: Question, **extra: str) -> tuple[ChatMessage, ...]:
    return render_messages(t.text(name), _fields(q, extra))


# --------------------------------------------------------------------------- builders


def generator_messages(t: Templates, q: Question) -> tuple[ChatMessage, ...]:
    return _messages(t, "generate", q)


def verifier_messages(t: Templates, q: Question, cot: str) -> tuple[ChatMessage, ...]:
    return _messages(t, "verify", q, cot=cot.strip())


def ranker_messages(t: Templates, q: Question, paths: Sequence[Path]) -> tuple[ChatMessage, ...]:
    names = [p.name for p in paths]
    if not names:
        raise ValueError("ranker_messages: no paths to rank")
    if len(set(names)) != len(names):
        raise ValueError(f"ranker_messages: duplicate path names in {names}")
    return _messages(t, "rank", q, paths=format_paths(paths), names=", ".join(names))


def refiner_messages(
    t: Templates, q: Question, cot: str, error_reasons: Sequence[Judgement]
) -> tuple[ChatMessage, ...]:
    return _messages(t, "refine", q, cot=cot.strip(), error_reasons=format_error_reasons(error_reasons))


def optimizer_messages(
    t: Templates, q: Question, cot: str, error_reasons: Sequence[Judgement]
) -> tuple[ChatMessage, ...]:
    """Difficult tier with one usable correct path: the stronger model improves that path."""
    return _messages(t, "optimize", q, cot=cot.strip(), error_reasons=format_error_reasons(error_reasons))


def regenerator_messages(t: Templates, q: Question, error_reasons: Sequence[Judgement]) -> tuple[ChatMessage, ...]:
    return _messages(t, "regenerate", q, error_reasons=format_error_reasons(error_reasons))


def summarizer_messages(t: Templates, q: Question, cot: str) -> tuple[ChatMessage, ...]:
    return _messages(t, "summarize", q, cot=cot.strip())


def score_fields(response: str, answer: str | None) -> dict[str, str]:
    """The scorer's own variables: the text scored, and the gold answer only when it is to be shown."""
    return {"response": response.strip(), "answer": answer or "",
            "answer_line": f"Correct answer: {answer}\n\n" if answer else ""}


def scorer_messages(t: Templates, q: Question, response: str, *, show_answer: bool = False) -> tuple[ChatMessage, ...]:
    fields = _fields(q, score_fields(response, format_answer(q) if show_answer else None))
    return render_messages(t.text("score"), fields)


def check_score_template(t: Templates, show_answer: bool) -> None:
    """With ``show_answer`` off, a score template that uses ``${answer}`` would leak nothing but read oddly:
    refuse it at start-up instead."""
    if not show_answer and "answer" in string.Template(t.text("score")).get_identifiers():
        raise ValueError("the 'score' template uses ${answer} but [stages.scorer] show_answer = false:"
                         " use ${answer_line} (empty unless show_answer = true) or set show_answer = true")
