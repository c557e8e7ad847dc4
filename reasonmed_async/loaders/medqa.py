"""MedQA (the US ``phrases_no_exclude`` / 4-option JSONL, and the 5-option files).

One object per line::

    {"question": "...", "options": {"A": "...", "B": "...", "C": "...", "D": "..."},
     "answer_idx": "C", "answer": "<text of option C>", "meta_info": "step1", ...}

``options`` is a dict keyed ``A``, ``B``, … in order (2..10 distinct non-empty
strings; a list is accepted too), ``answer_idx`` is the letter of the correct
option and must be one of its keys.  ``answer``, when present, must be the text
of that same option (compared without surrounding blanks or case): a mismatch is
an error, not a guess.  ``meta_info``, ``metamap_phrases`` and any other key are
ignored.  MedQA has no ids: the id is ``medqa-`` + a hash of stem and options,
stable across runs and file orders; the same question twice in a file is a
duplicate-id error.  The source is ``medqa``.
"""

from __future__ import annotations

from typing import Any

from bus.messages import LETTERS

from reasonmed_async.loaders.limits import clip
from reasonmed_async.loaders.common import Collector, hash_id

__all__ = ["MedQAParser", "looks_like_medqa"]


def looks_like_medqa(rec: Any) -> bool:
    """A MedQA record: an object with ``answer_idx`` and a dict of ``options``."""
    return isinstance(rec, dict) and "answer_idx" in rec and isinstance(rec.get("options"), dict)


class MedQAParser:
    """Validates MedQA records one by one into a :class:`Collector`."""

    format = "medqa"

    def __init__(self, col: Collector) -> None:
        self.col = col

    def feed(self, rec: Any, loc: dict, where: str) -> None:
        col = self.col
        rec = col.record(rec, loc)
        stem = col.str_field(rec, "question", loc).strip()
        options = col.letter_options(rec, loc)
        letters = LETTERS[: len(options)]
        given = col.str_field(rec, "answer_idx", loc)
        letter = given.strip().upper()
        if len(letter) != 1 or letter not in letters:
            raise col.err(loc, "answer_idx", f"{clip(given)} is not the letter of one of the {len(options)} options "
                          f"(A-{letters[-1]})")
        answer = LETTERS.index(letter)
        text = col.str_field(rec, "answer", loc, required=False)
        if text is not None and text.strip().casefold() != options[answer].casefold():
            raise col.err(loc, "answer", f"{clip(text.strip())} is not option {letter} ({clip(options[answer])}), "
                          "which answer_idx names")
        col.add(loc, where, id=hash_id("medqa-", stem, options), stem=stem, options=options, answer=answer,
                source="medqa")

    def finish(self) -> None:
        """Nothing is held back: every record was added as it came."""
