"""The de-duplication key of a question: pure.

Two questions are the same question when their stem, options (in any order)
and context read the same after Unicode normalisation (NFKC), case folding and
whitespace collapsing; trailing punctuation of the stem does not count.  The
key is a sha256 hex digest of that normal form, so it is stable across
processes, machines and Python versions (sharding relies on that).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata

from bus.messages import Question

_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """``text`` as compared: NFKC, case-folded, runs of whitespace as one space, trimmed."""
    return _SPACE.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def dedup_key(question: Question) -> str:
    """The sha256 hex digest of the question's normal form (stem, sorted options, context)."""
    stem = normalise(question.stem).rstrip(" ?.!:;")
    options = sorted(normalise(o) for o in question.options)
    joined = "\x1e".join([stem, "\x1f".join(options), normalise(question.context)])
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()
