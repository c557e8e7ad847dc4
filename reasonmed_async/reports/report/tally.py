"""The run's figures, counted from its messages: pure, no I/O (``numbers.py`` feeds it).

A *path key* is a generator path's (generator, temperature), named by the run's own
config (``qwen_2`` is the generator ``qwen`` at its second temperature): the unit of
the paper's Fig 4 and Fig 5.  A generator "answers a question correctly" (Tables 5 and
6) under one of two rules, both reported: ``any`` of its judged paths is verified
Correct, or ``all`` of them are.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

from agents.settings import GeneratorModel
from bus import Message, Ranked, RecordReady, StageFailed, Verdict

from reasonmed_async.reports.intervals import wilson

RULES = ("any", "all")


@dataclass(frozen=True, order=True)
class PathKey:
    generator: str
    temperature: float | None
    model: str = ""

    @property
    def label(self) -> str:
        t = "-" if self.temperature is None else f"{self.temperature:g}"
        return f"{self.generator} T={t}"


def path_keys(generators: tuple[GeneratorModel, ...]) -> dict[str, PathKey]:
    """Path name → its (generator, temperature), as the generator names them."""
    return {name: PathKey(g.name, s.temperature, g.model) for g in generators for name, s in g.paths()}


def _provenances(value: Any) -> tuple[Any, ...]:
    """A text's provenance records: a tuple of them, one, or none."""
    if value is None:
        return ()
    return tuple(value) if isinstance(value, tuple | list) else (value,)


def _kind(m: StageFailed) -> str:
    kind = getattr(m, "kind", None)  # typed since the failure vocabulary; older databases have none
    return str(kind) if kind else "unrecorded"


@dataclass
class Tally:
    keys: dict[str, PathKey]
    verdicts: Counter[tuple[PathKey, str]] = field(default_factory=Counter)
    picks: Counter[tuple[str, PathKey]] = field(default_factory=Counter)
    ranked: Counter[tuple[str, bool]] = field(default_factory=Counter)
    by_question: dict[str, dict[str, list[bool]]] = field(default_factory=lambda: defaultdict(lambda: defaultdict(list)))
    failures: Counter[tuple[str, str]] = field(default_factory=Counter)
    reverify: Counter[tuple[int, str]] = field(default_factory=Counter)
    gates: Counter[str] = field(default_factory=Counter)
    records: Counter[tuple[str, str]] = field(default_factory=Counter)
    templates: set[tuple[str, str, str]] = field(default_factory=set)
    unknown_paths: set[str] = field(default_factory=set)

    def _key(self, name: str) -> PathKey | None:
        key = self.keys.get(name)
        if key is None:
            self.unknown_paths.add(name)
        return key

    def _learn(self, m: Verdict) -> PathKey | None:
        """A path the config does not name (no readable stored config): its key from its provenance."""
        gen = next((p for p in _provenances(m.path.provenance) if p.role == "generate"), None)
        if gen is None or "_" not in m.path.name:
            return self._key(m.path.name)
        key = self.keys[m.path.name] = PathKey(m.path.name.rsplit("_", 1)[0], gen.temperature, gen.model)
        return key

    def add(self, m: Message) -> None:
        if isinstance(m, Verdict):
            for p in _provenances(m.path.provenance):
                if p.template:
                    self.templates.add((p.role, p.model, p.template))
            if m.attempt == 0:
                key = self._key(m.path.name) if m.path.name in self.keys else self._learn(m)
                if key is not None:
                    self.verdicts[key, m.verdict] += 1
                    self.by_question[f"{m.run_id}/{m.question_id}"][key.generator].append(m.verdict == "Correct")
            else:
                self.reverify[m.attempt, m.verdict] += 1
        elif isinstance(m, StageFailed):
            self.failures[str(m.stage), _kind(m)] += 1
            if (gate := getattr(m, "gate", None)) is not None:  # a quality gate kept a CoT out of the export
                self.gates[str(gate)] += 1
            if m.stage in ("generate", "verify") and (key := self._key(m.path)) is not None:
                self.verdicts[key, "not generated" if m.stage == "generate" else "no verdict"] += 1
        elif isinstance(m, Ranked):
            self.ranked[m.tier, m.called] += 1
            for p in m.chosen:
                if (key := self._key(p.name)) is not None:
                    self.picks[m.tier, key] += 1
        elif isinstance(m, RecordReady):
            self.records[m.tier, m.path.origin] += 1
            for p in (*_provenances(m.path.provenance), *_provenances(m.response_provenance)):
                if p.template:
                    self.templates.add((p.role, p.model, p.template))

    # -- figures ------------------------------------------------------------------
    def verdict_rows(self) -> list[dict[str, Any]]:
        rows = []
        for key in sorted(set(self.keys.values())):
            c, e = self.verdicts[key, "Correct"], self.verdicts[key, "Error"]
            rows.append({"generator": key.generator, "model": key.model, "temperature": key.temperature,
                         "label": key.label, "correct": c, "error": e,
                         "no_verdict": self.verdicts[key, "no verdict"],
                         "not_generated": self.verdicts[key, "not generated"],
                         "pass_rate": wilson(c, c + e).as_dict()})
        return rows

    def pick_rows(self) -> list[dict[str, Any]]:
        return [{"generator": k.generator, "model": k.model, "temperature": k.temperature, "label": k.label,
                 "easy": self.picks["easy", k], "medium": self.picks["medium", k]}
                for k in sorted(set(self.keys.values()))]

    def generators(self) -> list[str]:
        return list(dict.fromkeys(k.generator for k in self.keys.values()))

    def complementarity(self, rule: str) -> dict[str, Any]:
        """Tables 5 and 6 over the questions on which every generator has at least one verdict."""
        decide = any if rule == "any" else all
        gens = self.generators()
        solved: list[dict[str, bool]] = [
            {g: decide(per[g]) for g in gens} for per in self.by_question.values() if all(per.get(g) for g in gens)]
        n = len(solved)

        def pct(k: int) -> float | None:
            return round(100 * k / n, 2) if n else None

        pairs = []
        for a, b in combinations(gens, 2):
            only_a = sum(s[a] and not s[b] for s in solved)
            only_b = sum(s[b] and not s[a] for s in solved)
            pairs.append({"a": a, "b": b, "only_a": only_a, "only_a_pct": pct(only_a),
                          "only_b": only_b, "only_b_pct": pct(only_b)})
        missed = []
        if len(gens) >= 3:
            for g in gens:
                k = sum(not s[g] and all(s[o] for o in gens if o != g) for s in solved)
                missed.append({"generator": g, "missed_only_by": k, "pct": pct(k)})
        return {"rule": rule, "questions": n, "one_vs_one": pairs, "one_vs_two": missed}

    def failure_rows(self) -> list[dict[str, Any]]:
        return [{"stage": s, "kind": k, "count": n} for (s, k), n in sorted(self.failures.items())]

    def reverify_rows(self) -> list[dict[str, Any]]:
        attempts = sorted({a for a, _ in self.reverify})
        return [{"attempt": a, "correct": self.reverify[a, "Correct"], "error": self.reverify[a, "Error"]}
                for a in attempts]

    def gate_rows(self) -> list[dict[str, Any]]:
        return [{"gate": g, "rejected": n} for g, n in sorted(self.gates.items())]

    def record_rows(self) -> list[dict[str, Any]]:
        return [{"tier": t, "origin": o, "records": n} for (t, o), n in sorted(self.records.items())]

    def template_rows(self) -> list[dict[str, str]]:
        return [{"role": r, "model": m, "template": t} for r, m, t in sorted(self.templates)]
