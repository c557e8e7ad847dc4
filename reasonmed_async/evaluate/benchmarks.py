"""The benchmark questions of ``reasonmed eval``, read with the project's loaders (test splits allowed).

``--data`` is one question file or a directory searched for ``*.json``, ``*.jsonl`` and ``*.csv``
(MMLU's ``<subject>_<split>.csv``).  A question's benchmark is told by its loader's source:
``medqa``, ``medmcqa``, ``pubmedqa``, ``mmlu:<subject>``; anything else is ``other``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bus import Question

from reasonmed_async.loaders.dispatch import load_questions
from reasonmed_async.reports.report.paper import TABLE4_ROWS

MMLU_MEDICAL = tuple(key.split(":", 1)[1] for key, *_ in TABLE4_ROWS if key.startswith("mmlu:"))
GROUPS = ("medqa", "medmcqa", "pubmedqa", "mmlu-medical")
LABELS = {key: label for key, label, *_ in TABLE4_ROWS}
_SUFFIXES = (".json", ".jsonl", ".csv")


class BenchmarkError(ValueError):
    """Bad --data or --benchmarks: exit 2."""


@dataclass(frozen=True)
class Item:
    benchmark: str
    question: Question


def benchmark_of(q: Question) -> str:
    source = q.source.lower()
    if source.startswith("mmlu/"):
        return f"mmlu:{source.split('/', 1)[1]}"
    return source if source in ("medqa", "medmcqa", "pubmedqa") else "other"


def wanted(key: str, groups: tuple[str, ...]) -> bool:
    if key.startswith("mmlu:"):
        return "mmlu-medical" in groups and key.split(":", 1)[1] in MMLU_MEDICAL
    return key in groups


def parse_groups(text: str) -> tuple[str, ...]:
    groups = tuple(g.strip() for g in text.split(",") if g.strip())
    unknown = [g for g in groups if g not in GROUPS]
    if unknown or not groups:
        raise BenchmarkError(f"--benchmarks: unknown {', '.join(unknown) or '(none given)'}"
                             f" (known: {', '.join(GROUPS)})")
    return groups


def files_of(data: Path) -> list[Path]:
    if data.is_file():
        return [data]
    if not data.is_dir():
        raise BenchmarkError(f"--data {data}: no such file or directory")
    found = sorted(p for p in data.rglob("*") if p.is_file() and p.suffix.lower() in _SUFFIXES)
    if not found:
        raise BenchmarkError(f"--data {data}: no .json, .jsonl or .csv question file in it")
    return found


def load(data: Path, groups: tuple[str, ...]) -> tuple[list[Item], int]:
    """The wanted questions in file order (ids unique), and how many others the files held."""
    items: list[Item] = []
    seen: set[str] = set()
    skipped = 0
    for path in files_of(data):
        for q in load_questions(path, allow_test_split=True):
            key = benchmark_of(q)
            if q.id in seen:
                continue
            seen.add(q.id)
            if wanted(key, groups) or (key == "other" and data.is_file()):
                items.append(Item(key, q))
            else:
                skipped += 1
    if not items:
        raise BenchmarkError(f"--data {data}: none of its questions belongs to {', '.join(groups)}")
    return items, skipped


def order(key: str) -> tuple[int, str]:
    keys = [k for k, *_ in TABLE4_ROWS]
    return (keys.index(key), key) if key in keys else (len(keys), key)


def label(key: str) -> str:
    if key in LABELS:
        return LABELS[key]
    if key.startswith("mmlu:"):
        return "MMLU " + key.split(":", 1)[1].replace("_", " ").title()
    return "other (generic questions)"
