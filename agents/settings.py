"""Settings the agents are built with: sampling per stage and the flow's parameters."""

from __future__ import annotations

from dataclasses import dataclass, field

from .gates import GateSettings


@dataclass(frozen=True)
class Sampling:
    """How one stage calls its model.  ``temperature=None`` sends none (o1-class models)."""

    model: str
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int = 1024
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("Sampling.model is empty")
        if self.temperature is not None and not 0.0 <= self.temperature <= 2.0:
            raise ValueError(f"temperature {self.temperature} is outside 0..2")
        if self.top_p is not None and not 0.0 < self.top_p <= 1.0:
            raise ValueError(f"top_p {self.top_p} is outside (0, 1]")
        if self.max_tokens < 1:
            raise ValueError("max_tokens must be >= 1")


@dataclass(frozen=True)
class GeneratorModel:
    """A generator model under its short name (``qwen``): its paths are ``qwen_1``, ``qwen_2`` …"""

    name: str
    model: str
    temperatures: tuple[float, ...] = (0.7, 0.9, 1.0)
    top_p: float | None = 0.9
    max_tokens: int = 8192
    seed: int | None = None

    def paths(self) -> list[tuple[str, Sampling]]:
        return [
            (f"{self.name}_{i}", Sampling(self.model, t, self.top_p, self.max_tokens, self.seed))
            for i, t in enumerate(self.temperatures, start=1)
        ]


@dataclass(frozen=True)
class TierPolicy:
    """Tiers by the number of Error verdicts: easy ≤ easy_max < medium ≤ medium_max < difficult."""

    easy_max: int = 4
    medium_max: int = 7
    min_usable: int = 6

    def __post_init__(self) -> None:
        if not 0 <= self.easy_max < self.medium_max:
            raise ValueError("tiers need 0 <= easy_max < medium_max")
        if self.min_usable < 1:
            raise ValueError("min_usable must be >= 1")


@dataclass(frozen=True)
class FlowSettings:
    generators: tuple[GeneratorModel, ...]
    verifier: Sampling
    ranker: Sampling
    refiner: Sampling
    regenerator: Sampling
    summarizer: Sampling
    scorer: Sampling | None = None
    tiers: TierPolicy = field(default_factory=TierPolicy)
    regenerations: int = 1
    reverify: bool = True
    refine_attempts: int = 2
    judge_corrections: int = 2
    score_rate: float = 0.0
    score_show_answer: bool = False
    gates: GateSettings = field(default_factory=GateSettings)
    thinking: str = "keep"  # a reasoning model's CoT: "keep" its thinking before the conclusion, or "drop" it

    def __post_init__(self) -> None:
        if not self.generators:
            raise ValueError("at least one generator model is required")
        names = [g.name for g in self.generators]
        if len(set(names)) != len(names):
            raise ValueError(f"generator names repeat: {names}")
        if self.regenerations < 1 or self.refine_attempts < 1 or self.judge_corrections < 0:
            raise ValueError("regenerations and refine_attempts must be >= 1, judge_corrections >= 0")
        if not 0.0 <= self.score_rate <= 1.0:
            raise ValueError("score_rate must be within 0..1")
        if self.thinking not in ("keep", "drop"):
            raise ValueError(f'thinking must be "keep" or "drop", got {self.thinking!r}')

    @property
    def path_count(self) -> int:
        return sum(len(g.temperatures) for g in self.generators)
