"""PubMedQA's ``ori_pqal.json``: a JSON object keyed by PubMed id.

Each value carries ``QUESTION``, ``CONTEXTS`` (a non-empty list of strings),
optionally ``LABELS`` (one per context: ``BACKGROUND``, ``RESULTS``, …) and
``final_decision`` (yes / no / maybe).  The options are always yes / no / maybe;
the labelled contexts become the question's context (they go into the prompt).
The id is ``pubmedqa-<pmid>``.  Errors name ``record 'pmid N'``.
"""

from __future__ import annotations

from typing import Any

from reasonmed_async.loaders.limits import clip
from reasonmed_async.loaders.common import Collector, kind

__all__ = ["PUBMEDQA_OPTIONS", "load_pubmedqa"]

PUBMEDQA_OPTIONS = ("yes", "no", "maybe")


def load_pubmedqa(col: Collector, whole: Any) -> None:
    """Validate every record of a parsed ``ori_pqal.json`` into ``col``."""
    if not isinstance(whole, dict):
        raise col.err({"line": 1}, None, "expected PubMedQA's ori_pqal.json: a JSON object keyed by PubMed id, "
                      f"got a {kind(whole)}")
    if whole.dup is not None:  # json would silently keep only the last of the two
        n = list(whole).index(whole.dup) + 1
        raise col.err({"line": n, "record": f"pmid {whole.dup}"}, "id", "PubMed id appears twice")
    for n, (key, rec) in enumerate(whole.items(), 1):
        _record(col, key, rec, n)


def _record(col: Collector, key: str, rec: Any, n: int) -> None:
    loc = {"line": n, "record": f"pmid {key}"}
    if not key.strip():
        raise col.err(loc, None, "the PubMed id (the key) is empty")
    rec = col.record(rec, loc)
    stem = col.str_field(rec, "QUESTION", loc).strip()
    contexts = _str_list(col, rec, "CONTEXTS", loc)
    labels = _str_list(col, rec, "LABELS", loc) if "LABELS" in rec else None
    if labels is not None and len(labels) != len(contexts):
        raise col.err(loc, "LABELS", f"has {len(labels)} labels for {len(contexts)} contexts")
    decision = col.str_field(rec, "final_decision", loc).strip().lower()
    if decision not in PUBMEDQA_OPTIONS:
        raise col.err(loc, "final_decision", f"{clip(rec['final_decision'])} is not yes, no or maybe")
    parts = [c.strip() for c in contexts] if labels is None else [
        f"{lab.strip()}: {c.strip()}" if lab.strip() else c.strip() for lab, c in zip(labels, contexts)
    ]
    col.add(loc, f"record 'pmid {key}'", id=f"pubmedqa-{key.strip()}", stem=stem, options=PUBMEDQA_OPTIONS,
            answer=PUBMEDQA_OPTIONS.index(decision), source="pubmedqa", context="\n".join(parts))


def _str_list(col: Collector, rec: dict, key: str, loc: dict) -> list[str]:
    if key not in rec:
        raise col.err(loc, key, "missing")
    value = rec[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise col.err(loc, key, f"must be a list of strings, got a {kind(value)}")
    if not value:
        raise col.err(loc, key, "is an empty list")
    return value
