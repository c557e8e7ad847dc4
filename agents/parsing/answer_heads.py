"""Where a CoT states its answer: the ``Final answer:`` / ``the answer is`` heads, found fast.

``_ANSWER_HEAD.finditer`` tries the pattern at every word start of the text;
case-insensitive, the engine has no literal to skip to, and on a CoT of a few
KB that was most of the answer parse.  ``answer_heads`` yields the same
matches in the same order: it finds the keywords (``answer``; ``option`` and
``choice`` only right after ``correct `` / ``best ``) in a lower-cased copy
with ``str.find``, and tries the pattern only where a head with that keyword
can start: the keyword itself, or one of the words that may open a head
(``final``, ``correct``, ``best``, ``right``, ``most``) shortly before it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

_ANSWER_HEAD = re.compile(
    # every head starts at a word boundary with one of these letters: a position without one fails at once
    r"\b(?=[fcbrmao])"
    r"(?P<final>\bfinal\s+)?\b(?:(?:correct|best|right|most\s+likely|most\s+appropriate)\s+)?"
    r"(?:answer|(?<=correct )option|(?<=best )option|(?<=correct )choice|(?<=best )choice)\b"
    r"(?:\s+(?:to|for)\s+(?:this|the)\s+question)?"
    r"(?:(?:[ \t*_]*(?:(?:is|would\s+be|will\s+be)\b|:|=|-|–|—))+|[ \t*_:]*(?=\n|\Z))[ \t*_]*",
    re.I,
)
_OPENERS = ("final", "correct", "best", "right", "most")  # the words a head can start with, before its keyword
#: A head's words before its keyword: "final most appropriate " is the longest, 23 characters with single
#: spaces.  A window before the keyword holding four or more words holds the head's start; one holding
#: fewer (long runs of whitespace) is doubled until it does or reaches where the scan stands.
_WINDOW = 64
# letters ``re.IGNORECASE`` matches to an ASCII letter that ``str.lower`` leaves as they are
_FOLD = str.maketrans({"ſ": "s", "ı": "i"})


def _folded(text: str) -> str | None:
    """``text`` lower-cased as the pattern's ``re.I`` sees it, index for index; None where that cannot be."""
    low = text.lower()
    if len(low) != len(text):  # "İ" lowers to two characters
        return None
    return low.translate(_FOLD) if ("ſ" in low or "ı" in low) else low


def _keywords(low: str) -> list[int]:
    """Where a head's keyword can be, in order: every "answer"; an "option" / "choice" right after
    "correct " or "best " (the pattern's lookbehinds).  None of the three overlaps itself or another."""
    spots = []
    i = low.find("answer")
    while i >= 0:
        spots.append(i)
        i = low.find("answer", i + 6)
    for word in ("option", "choice"):
        i = low.find(word)
        while i >= 0:
            if (i >= 8 and low.startswith("correct ", i - 8)) or (i >= 5 and low.startswith("best ", i - 5)):
                spots.append(i)
            i = low.find(word, i + 6)
    spots.sort()
    return spots


def _starts(low: str, pos: int, at: int) -> list[int]:
    """Where a head whose keyword is at ``at`` can start, not before ``pos``, in order."""
    width = _WINDOW
    lo = max(pos, at - width)
    while lo > pos and len(low[lo:at].split()) <= 3:  # might lie inside a head's words: look further back
        width *= 2
        lo = max(pos, at - width)
    starts = []
    for word in _OPENERS:
        i = low.find(word, lo, at)
        while i >= 0:
            starts.append(i)
            i = low.find(word, i + 1, at)
    starts.sort()
    starts.append(at)
    return starts


def answer_heads(text: str) -> Iterator[re.Match[str]]:
    """What ``_ANSWER_HEAD.finditer(text)`` yields."""
    low = _folded(text)
    if low is None:
        yield from _ANSWER_HEAD.finditer(text)
        return
    pos = 0
    for at in _keywords(low):
        if at < pos:  # inside the head just found
            continue
        for start in _starts(low, pos, at):
            if (m := _ANSWER_HEAD.match(text, start)) is not None:
                yield m
                pos = m.end()
                break
