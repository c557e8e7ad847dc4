"""Settings of the simulated LLM backend (``reasonmed_async.llm.sim``).

Everything the simulator does is a pure function of these settings and of the
request, so a run with the same settings produces the same dataset.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any


def _rate(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"sim setting {name} must be a number, got {value!r}")
    v = float(value)
    if not (0.0 <= v <= 1.0):
        raise ValueError(f"sim setting {name} must be in [0, 1], got {value!r}")
    return v


@dataclass(frozen=True)
class SimSettings:
    """Knobs of the simulated LLM.

    ``accuracy`` maps a model name to the base probability that a CoT it
    generates reaches the gold answer (``default_accuracy`` for other models);
    per-question hardness and temperature move it from there.
    ``answer_accuracy`` is the exact probability that a model answering a
    benchmark question (``reasonmed eval``, task ``answer``) is right
    (``default_accuracy`` for other models): what an eval must measure.  The ``*_rate``
    fields are probabilities per call; ``latency_ms`` is a mean per call.

    Planted cases, for tests that must reach every branch: ``self_reference_rate`` is the chance
    that a rewritten CoT refers to "the earlier attempts" (not for questions in ``correct_paths``);
    ``correct_paths`` maps a question id to the exact number of its generated paths that reach the
    gold answer (the first k by sample index: 1 plants a difficult question with one correct path,
    0 one with none); the verifier says Correct of every CoT of a question in ``verifier_accepts``,
    whatever answer it states (planted disagreement)."""

    seed: int = 0
    accuracy: Mapping[str, float] = field(default_factory=dict, hash=False)
    answer_accuracy: Mapping[str, float] = field(default_factory=dict, hash=False)
    default_accuracy: float = 0.7
    temperature_penalty: float = 0.15
    verifier_error_rate: float = 0.03
    malformed_rate: float = 0.0
    truncation_rate: float = 0.0
    failure_rate: float = 0.0
    latency_ms: float = 0.0
    refine_accuracy: float = 0.9
    self_reference_rate: float = 0.0
    correct_paths: Mapping[str, int] = field(default_factory=dict, hash=False)
    verifier_accepts: tuple[str, ...] = ()
    call_log: str | None = None

    def __post_init__(self) -> None:
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise ValueError(f"sim setting seed must be an integer, got {self.seed!r}")
        if not isinstance(self.accuracy, Mapping):
            raise ValueError(f"sim setting accuracy must be a mapping of model name to rate, got {self.accuracy!r}")
        for name in ("accuracy", "answer_accuracy"):
            table = getattr(self, name)
            if not isinstance(table, Mapping):
                raise ValueError(f"sim setting {name} must be a mapping of model name to rate, got {table!r}")
            object.__setattr__(self, name, {str(k): _rate(f"{name}[{k!r}]", v) for k, v in table.items()})
        for name in ("default_accuracy", "verifier_error_rate", "malformed_rate", "truncation_rate",
                     "failure_rate", "refine_accuracy", "self_reference_rate"):
            object.__setattr__(self, name, _rate(name, getattr(self, name)))
        for name in ("temperature_penalty", "latency_ms"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"sim setting {name} must be a finite number >= 0, got {v!r}")
            object.__setattr__(self, name, float(v))
        if not isinstance(self.correct_paths, Mapping) or any(
                isinstance(k, bool) or not isinstance(k, int) or k < 0 for k in self.correct_paths.values()):
            raise ValueError(f"sim setting correct_paths must map question ids to counts >= 0,"
                             f" got {self.correct_paths!r}")
        object.__setattr__(self, "correct_paths", {str(q): k for q, k in self.correct_paths.items()})
        if isinstance(self.verifier_accepts, str) or not all(isinstance(q, str) for q in self.verifier_accepts):
            raise ValueError(f"sim setting verifier_accepts must be a list of question ids,"
                             f" got {self.verifier_accepts!r}")
        object.__setattr__(self, "verifier_accepts", tuple(self.verifier_accepts))
        if self.call_log is not None and not isinstance(self.call_log, str):
            raise ValueError(f"sim setting call_log must be a path string, got {self.call_log!r}")

    def base_accuracy(self, model: str, temperature: float | None) -> float:
        """The model's accuracy at this temperature, before question hardness."""
        acc = self.accuracy.get(model, self.default_accuracy)
        if temperature is not None and temperature > 0.7:
            acc -= self.temperature_penalty * (temperature - 0.7)
        return acc

    @classmethod
    def from_mapping(cls, d: Mapping[str, Any]) -> SimSettings:
        """Build from a config table (``[sim]`` in TOML); unknown keys are an error."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown sim setting(s): {', '.join(unknown)} (known: {', '.join(sorted(known))})")
        return cls(**dict(d))
