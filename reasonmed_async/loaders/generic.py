"""The generic question record: ``{"id"?, "question", "options", "answer", "context"?, "source"?}``.

``options`` is a list of 2..10 strings (or a dict keyed ``A``, ``B``, … in
order); ``answer`` is the text of one option or its letter (text wins when an
option's text is itself a letter).  Without ``id`` the id is :func:`content_id`,
a hash of stem and options, so it is stable across runs.
"""

from __future__ import annotations

from typing import Any

from bus.messages import LETTERS

from reasonmed_async.loaders.limits import clip
from reasonmed_async.loaders.common import Collector, content_id

__all__ = ["GenericParser"]


class GenericParser:
    """Validates generic records one by one into a :class:`Collector`."""

    format = "generic"

    def __init__(self, col: Collector) -> None:
        self.col = col

    def feed(self, rec: Any, loc: dict, where: str) -> None:
        col = self.col
        rec = col.record(rec, loc)
        stem = col.str_field(rec, "question", loc).strip()
        options = col.letter_options(rec, loc)
        answer = self._answer(rec, options, loc)
        qid = col.str_field(rec, "id", loc, required=False)
        context = col.str_field(rec, "context", loc, required=False, empty_ok=True) or ""
        source = col.str_field(rec, "source", loc, required=False) or "generic"
        qid = qid.strip() if qid is not None else content_id(stem, options)
        col.add(loc, where, id=qid, stem=stem, options=options, answer=answer, source=source.strip(),
                context=context.strip())

    def finish(self) -> None:
        """Nothing is held back: every record was added as it came."""

    def _answer(self, rec: dict, options: tuple[str, ...], loc: dict) -> int:
        given = self.col.str_field(rec, "answer", loc)
        key = given.strip().casefold()
        for i, opt in enumerate(options):
            if opt.casefold() == key:
                return i
        letter = key.upper()
        if len(letter) == 1 and letter in LETTERS[: len(options)]:
            return LETTERS.index(letter)
        raise self.col.err(loc, "answer", f"{clip(given.strip())} is not among the {len(options)} options "
                           f"(give a letter A-{LETTERS[len(options) - 1]} or the text of one option)")
