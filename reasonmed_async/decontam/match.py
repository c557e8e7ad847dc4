"""Which generation questions overlap benchmark test questions: pure matching, no I/O.

A question's text is its stem and its options (not a PubMedQA abstract), normalised:
Unicode NFKC, case-folded, every run of non-alphanumerics one space.  Three checks:

- ``exact``: the normalised texts are equal (score 1.0);
- ``ngram``: the share of the question's word 8-grams found in one benchmark question
  (score in [0, 1], flagged at ``ngram_threshold``); a shared stock phrase such as
  "which of the following is the most likely" is one 8-gram, not a match;
- ``fuzzy``: rapidfuzz's ``fuzz.ratio`` (0-100) of the normalised texts, flagged at
  ``fuzzy_threshold``.  Compared only against the benchmark questions sharing the most
  word 4-grams with it (``fuzzy_candidates``), so a run of 195k questions against 10k is
  not 2 billion comparisons: a near-duplicate sharing no four consecutive words is missed.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from rapidfuzz import fuzz

_NON_WORD = re.compile(r"[\W_]+")
NGRAM = 8
BLOCK = 4


def normalise(text: str) -> str:
    return _NON_WORD.sub(" ", unicodedata.normalize("NFKC", text).casefold()).strip()


def question_text(stem: str, options: Sequence[str]) -> str:
    return normalise(" ".join((stem, *options)))


def ngrams(words: Sequence[str], n: int) -> set[tuple[str, ...]]:
    if len(words) < n:
        return {tuple(words)} if words else set()
    return {tuple(words[i : i + n]) for i in range(len(words) - n + 1)}


@dataclass(frozen=True)
class Item:
    """A question to compare: where it comes from, its id and its normalised text."""

    origin: str
    id: str
    text: str


@dataclass(frozen=True)
class Match:
    question: Item
    benchmark: Item
    method: str
    score: float


@dataclass(frozen=True)
class Thresholds:
    ngram: float = 0.5
    fuzzy: float = 90.0
    fuzzy_candidates: int = 20

    def __post_init__(self) -> None:
        if not 0 < self.ngram <= 1:
            raise ValueError(f"the 8-gram threshold must be in (0, 1], got {self.ngram}")
        if not 0 < self.fuzzy <= 100:
            raise ValueError(f"the fuzzy threshold must be in (0, 100], got {self.fuzzy}")


class BenchmarkIndex:
    """The benchmark questions, indexed for the three checks."""

    def __init__(self, items: Iterable[Item]) -> None:
        self.items = list(items)
        self._exact: dict[str, list[int]] = defaultdict(list)
        self._grams: dict[tuple[str, ...], list[int]] = defaultdict(list)
        self._blocks: dict[tuple[str, ...], list[int]] = defaultdict(list)
        self._gram_sets: list[set[tuple[str, ...]]] = []
        for i, item in enumerate(self.items):
            words = item.text.split()
            self._exact[item.text].append(i)
            grams = ngrams(words, NGRAM)
            self._gram_sets.append(grams)
            for g in grams:
                self._grams[g].append(i)
            for b in ngrams(words, BLOCK):
                self._blocks[b].append(i)
        # a 4-gram in more than 2 % of the benchmark (a stock phrase) does not make a candidate
        self._common = max(20, len(self.items) // 50)

    def matches(self, q: Item, t: Thresholds) -> list[Match]:
        found: list[Match] = []
        exact = set(self._exact.get(q.text, ()))
        found += [Match(q, self.items[i], "exact", 1.0) for i in sorted(exact)]
        words = q.text.split()
        grams = ngrams(words, NGRAM)
        shared: Counter[int] = Counter(i for g in grams for i in self._grams.get(g, ()))
        for i, k in sorted(shared.items()):
            score = k / len(grams)
            if i not in exact and score >= t.ngram:
                found.append(Match(q, self.items[i], "ngram", round(score, 4)))
        flagged = exact | {m_i for m_i, k in shared.items() if k / len(grams) >= t.ngram}
        blocks: Counter[int] = Counter()
        for b in ngrams(words, BLOCK):
            posting = self._blocks.get(b, ())
            if len(posting) <= self._common:
                blocks.update(posting)
        for i, _ in blocks.most_common(t.fuzzy_candidates):
            if i in flagged:
                continue
            score = fuzz.ratio(q.text, self.items[i].text, score_cutoff=t.fuzzy)
            if score:
                found.append(Match(q, self.items[i], "fuzzy", round(score, 2)))
        return found


def id_matches(q: Item, official: set[str]) -> Match | None:
    """A question whose id (or the id after its source's prefix: ``pubmedqa-123`` → ``123``) is listed."""
    bare = q.id.split("-", 1)[1] if "-" in q.id else q.id
    for candidate in (q.id, bare):
        if candidate in official:
            return Match(q, Item("--exclude-ids", candidate, ""), "id", 1.0)
    return None
