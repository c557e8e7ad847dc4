"""The de-duplication key of a question: pure.

Two questions are the same question when their stem, options (in any order)
and context read the same after Unicode normalisation (NFKC), case folding and
whitespace collapsing; trailing punctuation of the stem does not count.  The
key is a sha256 hex digest of that normal form, so it is stable across
processes, machines and Python versions (sharding relies on that).

``merge_duplicates`` folds a file's repeated questions into their first
occurrence at intake (``run`` merges by default; ``--keep-duplicates`` keeps them).
"""

from __future__ import annotations

import hashlib
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

import msgspec

from bus.messages import Question

def normalise(text: str) -> str:
    """``text`` as compared: NFKC, case-folded, runs of whitespace as one space, trimmed.  (``str.split()``
    splits at the characters ``re``'s ``\\s`` matches, ``str.isspace()``: the same text as ``re.sub(r"\\s+", " ",
    ...).strip()``, a fifth of the time on a PubMedQA context; ``tests/loaders`` hold it to that.)"""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def dedup_key(question: Question) -> str:
    """The sha256 hex digest of the question's normal form (stem, sorted options, context)."""
    stem = normalise(question.stem).rstrip(" ?.!:;")
    options = sorted(normalise(o) for o in question.options)
    joined = "\x1e".join([stem, "\x1f".join(options), normalise(question.context)])
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()


# -- merging a file's duplicates at intake ---------------------------------------

@dataclass(frozen=True)
class Merged:
    """Questions with duplicates folded into their first occurrence (``duplicate_ids`` lists the others)."""

    questions: list[Question]
    duplicates: dict[str, tuple[str, ...]]  # kept id -> the ids merged into it, in input order

    @property
    def merged_count(self) -> int:
        return sum(len(ids) for ids in self.duplicates.values())

    def describe(self, limit: int = 10) -> str:
        """One line: how many were merged and which ids into which."""
        return describe_duplicates(self.duplicates, limit)


def describe_duplicates(duplicates: dict[str, tuple[str, ...]], limit: int = 10) -> str:
    """One line: how many were merged and which ids into which (kept id -> the ids merged into it)."""
    pairs = [f"{', '.join(ids)} -> {kept}" for kept, ids in duplicates.items()]
    shown = "; ".join(pairs[:limit]) + (f"; … ({len(pairs) - limit} more)" if len(pairs) > limit else "")
    return f"{sum(len(ids) for ids in duplicates.values())} duplicate question(s) merged into {len(pairs)}: {shown}"


def merge_key(question: Question) -> bytes:
    """What two questions must share to merge: the ``dedup_key`` and the gold answer's text (16 bytes)."""
    joined = dedup_key(question) + "\x1e" + normalise(question.answer_text)
    return hashlib.blake2b(joined.encode("utf-8"), digest_size=16).digest()


def merge_duplicates(questions: Sequence[Question]) -> Merged:
    """The first occurrence of each question, renumbered in input order, carrying the ids of its duplicates.

    Questions merge when they have the same ``dedup_key`` and the same gold answer (its option text): two
    copies that disagree on the answer are kept apart, so a disagreement is never silently resolved."""
    first: dict[bytes, int] = {}
    dups: dict[int, list[str]] = {}
    for i, q in enumerate(questions):
        at = first.setdefault(merge_key(q), i)
        if at != i:
            dups.setdefault(at, []).append(q.id)
    if not dups:
        return Merged(list(questions), {})
    out = [msgspec.structs.replace(questions[i], ordinal=n, duplicate_ids=tuple(dups.get(i, ())))
           for n, i in enumerate(sorted(first.values()))]
    return Merged(out, {questions[i].id: tuple(ids) for i, ids in dups.items()})
