"""MedMCQA: one JSON object per line (the official ``train.json`` / ``dev.json`` are JSONL).

::

    {"id": "4e1715fe-...", "question": "...", "opa": "...", "opb": "...", "opc": "...",
     "opd": "...", "cop": 1, "choice_type": "single", "exp": "...",
     "subject_name": "Pathology", "topic_name": "..."}

The id is ``medmcqa-<id>``; the source ``medmcqa/<subject_name>`` (``medmcqa``
without a subject).  ``exp`` and ``topic_name`` are ignored (they may be null).
``choice_type`` may be ``single`` or ``multi``: a ``multi`` row still has one
``cop`` and is loaded like any other, with that option as the answer.

**Which option ``cop`` counts from.**  The official release (github.com/medmcqa,
the Google Drive JSON) counts from 1: ``cop`` 1..4 = ``opa``..``opd`` (its README
example has ``"cop": 1`` with the correct ``opa``, and its own ``dataset.py`` uses
``cop - 1`` as the label).  The Hugging Face ``medmcqa`` dataset stores ``cop`` as
a ClassLabel ``a, b, c, d`` = 0..3, so a JSON export of it counts from 0.  The
base is decided per file:

* ``cop_base=0`` or ``1`` (``--cop-base``) says it; every ``cop`` must then lie in
  0..3 or 1..4;
* otherwise (``cop_base=None``) a file with a ``cop`` 0 counts from 0, one with a
  ``cop`` 4 counts from 1, one with both is an error (at the record where the
  second appears), and one whose every ``cop`` is 1, 2 or 3 is an error asking
  for ``cop_base``: the loader never guesses.  A real split has all four
  answers, so only small excerpts need ``cop_base``.

A missing ``cop`` or ``cop`` -1 (how the test split ships, without answers) is
an error.
"""

from __future__ import annotations

from typing import Any

from reasonmed_async.loaders.limits import clip
from reasonmed_async.loaders.common import Collector, kind

__all__ = ["MEDMCQA_KEYS", "MedMCQAParser", "looks_like_medmcqa"]

OPTION_KEYS = ("opa", "opb", "opc", "opd")
MEDMCQA_KEYS = (*OPTION_KEYS, "cop")
CHOICE_TYPES = ("single", "multi")


def looks_like_medmcqa(rec: Any) -> bool:
    """A MedMCQA record: an object without ``options`` and with most of ``opa``..``opd``, ``cop``."""
    return isinstance(rec, dict) and "options" not in rec and sum(k in rec for k in MEDMCQA_KEYS) >= 3


class MedMCQAParser:
    """Validates MedMCQA records; the questions are added by :meth:`finish`, once ``cop``'s base is known."""

    format = "medmcqa"

    def __init__(self, col: Collector, cop_base: int | None = None) -> None:
        if cop_base not in (None, 0, 1):
            raise ValueError(f"cop_base must be 0, 1 or None, got {cop_base!r}")
        self.col = col
        self.cop_base = cop_base
        self.pending: list[tuple[dict, str, dict[str, Any], int]] = []  # loc, where, fields, raw cop
        self.ids: dict[str, str] = {}
        self.first: dict[int, str] = {}  # cop 0 / cop 4 -> where first seen

    def feed(self, rec: Any, loc: dict, where: str) -> None:
        col = self.col
        rec = col.record(rec, loc)
        raw_id = col.str_field(rec, "id", loc)
        qid = f"medmcqa-{raw_id.strip()}"
        stem = col.str_field(rec, "question", loc).strip()
        for key in OPTION_KEYS:
            if key not in rec:
                raise col.err(loc, key, "missing")
        options = col.options([(key, rec[key]) for key in OPTION_KEYS], loc)
        cop = self._cop(rec, loc, where)
        choice = col.str_field(rec, "choice_type", loc, required=False, null_ok=True)
        if choice is not None and choice.strip() not in CHOICE_TYPES:
            raise col.err(loc, "choice_type", f"{clip(choice)} is not single or multi")
        subject = col.str_field(rec, "subject_name", loc, required=False, empty_ok=True, null_ok=True)
        source = f"medmcqa/{subject.strip()}" if subject and subject.strip() else "medmcqa"
        if qid in self.ids:
            raise col.err(loc, "id", f"duplicate id {clip(qid)} (first at {self.ids[qid]}, again at {where})")
        self.ids[qid] = where
        self.pending.append((loc, where, {"id": qid, "stem": stem, "options": options, "source": source}, cop))

    def finish(self) -> None:
        if not self.pending:
            return
        base = self.cop_base
        if base is None:
            if not self.first:
                raise self.col.err({}, "cop", "every cop in the file is 1, 2 or 3, so it cannot tell whether cop "
                                   "counts from 0 (Hugging Face medmcqa: 0..3 = a..d) or from 1 (the official "
                                   "release: 1..4 = a..d); say which with cop_base=0 or 1 (--cop-base 0|1)")
            base = 0 if 0 in self.first else 1
        for loc, where, fields, cop in self.pending:
            self.col.add(loc, where, answer=cop - base, **fields)
        self.pending = []

    def _cop(self, rec: dict, loc: dict, where: str) -> int:
        if "cop" not in rec:
            raise self.col.err(loc, "cop", "missing (a test split ships without answers)")
        cop = rec["cop"]
        if isinstance(cop, bool) or not isinstance(cop, int):
            raise self.col.err(loc, "cop", f"must be a whole number, got a {kind(cop)}")
        if cop == -1:
            raise self.col.err(loc, "cop", "is -1: no answer (a test split ships without answers)")
        if self.cop_base is not None:
            low = self.cop_base
            if not low <= cop <= low + 3:
                raise self.col.err(loc, "cop", f"{cop} is out of range: with cop_base={low}, cop is "
                                   f"{low}..{low + 3} for opa..opd")
            return cop
        if not 0 <= cop <= 4:
            raise self.col.err(loc, "cop", f"{cop} is out of range: cop is 0..3 (counting from 0) or 1..4 "
                               "(counting from 1) for opa..opd")
        if cop in (0, 4):
            self.first.setdefault(cop, where)
            if len(self.first) == 2:
                raise self.col.err(loc, "cop", f"the file mixes 0-based and 1-based cop: cop 0 at {self.first[0]}, "
                                   f"cop 4 at {self.first[4]}")
        return cop
