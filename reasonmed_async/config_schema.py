"""The typed shape of a configuration file: one ``msgspec.Struct`` per section, one line per key.

Adding a key is one line in its section's struct: its name, its type (with a
range as ``Annotated[..., Meta(...)]`` or a choice as ``Literal[...]``) and its
default.  ``msgspec.convert`` checks types, ranges and choices and refuses
unknown keys; ``config_errors.describe`` turns its error into one line naming the
file, the section, the key and what is allowed.  Rules that tie keys together
(ordered tier thresholds, a stage's model being a ``[models]`` entry) live in
``config.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

Temperature = Annotated[float, Meta(ge=0.0, le=2.0)]
TopP = Annotated[float, Meta(gt=0.0, le=1.0)]
Probability = Annotated[float, Meta(ge=0.0, le=1.0)]
Positive = Annotated[int, Meta(ge=1)]
Count = Annotated[int, Meta(ge=0)]
Seconds = Annotated[float, Meta(ge=0.0)]
PositiveSeconds = Annotated[float, Meta(gt=0.0)]
Price = Annotated[float, Meta(ge=0.0)]
Name = Annotated[str, Meta(min_length=1)]

SYNCHRONOUS = ("OFF", "NORMAL", "FULL", "EXTRA")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")


class Section(msgspec.Struct, forbid_unknown_fields=True, kw_only=True, frozen=True):
    """A table of the file: unknown keys are refused."""


class Generation(Section):
    models: list[Name] = []
    temperatures: Annotated[tuple[Temperature, ...], Meta(min_length=1)] = (0.7, 0.9, 1.0)
    top_p: TopP | None = 0.9
    max_tokens: Positive = 8192
    seed: int | None = None


class StageTable(Section):
    model: Name
    temperature: Temperature | None = None
    top_p: TopP | None = None
    max_tokens: Positive = 2048
    seed: int | None = None


class RegeneratorTable(StageTable):
    max_tokens: Positive = 20000  # o1-class: reasoning tokens count against max_completion_tokens


class ScorerTable(StageTable):
    rate: Probability = 0.0  # the fraction of final records scored during the run
    show_answer: bool = False  # the public code's scorer is not shown the gold answer


class Stages(Section):
    verifier: StageTable | None = None
    ranker: StageTable | None = None
    refiner: StageTable | None = None
    regenerator: RegeneratorTable | None = None
    summarizer: StageTable | None = None
    scorer: ScorerTable | None = None


class Tiers(Section):
    easy_max: Count = 4
    medium_max: Count = 7
    min_usable: Positive = 6


class Flow(Section):
    regenerations: Positive = 1
    reverify: bool = True
    refine_attempts: Positive = 2
    judge_corrections: Count = 2
    thinking: Literal["keep", "drop"] = "keep"


class Gates(Section):
    """Quality gates before export (agents.gates)."""

    require_answer_agreement: bool = True
    self_contained: bool = True
    min_cot_words: Count = 120
    steps: Annotated[int, Meta(ge=0, le=12)] = 6


class Concurrency(Section):
    """Worker tasks per agent; an absent key keeps the agent's own default."""

    generator: Positive | None = None
    verifier: Positive | None = None
    tierer: Positive | None = None
    ranker: Positive | None = None
    refiner: Positive | None = None
    regenerator: Positive | None = None
    reverify: Positive | None = None
    retry: Positive | None = None
    summarizer: Positive | None = None
    assembler: Positive | None = None
    scorer: Positive | None = None


class Retry(Section):
    attempts: Positive = 3
    base_s: Seconds = 0.5
    cap_s: Seconds = 30.0
    timeout_s: PositiveSeconds = 600.0
    handler_attempts: Positive = 3
    max_wait_s: Seconds = 300.0
    outage_budget_s: Seconds = 1800.0
    circuit_after: Positive = 5


class Store(Section):
    synchronous: Literal["OFF", "NORMAL", "FULL", "EXTRA"] = "NORMAL"
    queue_size: Positive = 64
    grace_s: Seconds = 30.0
    warn_free_mb: Annotated[float, Meta(ge=0.0)] = 1024.0  # free space below this: a warning
    min_free_mb: Annotated[float, Meta(ge=0.0)] = 64.0  # below this: the run stops, resumable (exit 4)


class Budget(Section):
    max_cost_usd: Annotated[float, Meta(gt=0.0)] | None = None  # stop (resumably) once spent reaches it
    max_tokens: Positive | None = None  # likewise for prompt + completion tokens


class Logging(Section):
    max_bytes: Count = 50_000_000
    backups: Count = 5
    level: Literal["debug", "info", "warning", "error", "critical"] | None = None


class Input(Section):
    """Limits of the question loaders (characters; JSON nesting levels)."""

    max_question_chars: Positive = 100_000
    max_option_chars: Positive = 20_000
    max_context_chars: Positive = 1_000_000
    max_depth: Annotated[int, Meta(ge=4)] = 32


class ModelTable(Section):
    backend: Name
    model: Name | None = None
    price_in: Price = 0.0
    price_out: Price = 0.0


class ConfigFile(Section):
    backends: dict[str, dict[str, Any]] = {}
    models: dict[str, ModelTable] = {}
    generation: Generation = msgspec.field(default_factory=Generation)
    stages: Stages = msgspec.field(default_factory=Stages)
    tiers: Tiers = msgspec.field(default_factory=Tiers)
    flow: Flow = msgspec.field(default_factory=Flow)
    gates: Gates = msgspec.field(default_factory=Gates)
    concurrency: Concurrency = msgspec.field(default_factory=Concurrency)
    retry: Retry = msgspec.field(default_factory=Retry)
    store: Store = msgspec.field(default_factory=Store)
    logging: Logging = msgspec.field(default_factory=Logging)
    input: Input = msgspec.field(default_factory=Input)
    budget: Budget = msgspec.field(default_factory=Budget)
    templates_dir: Name | None = None


def given(section: Section, raw: Any) -> dict[str, Any]:
    """The keys of ``section`` the file gave (typed), without the defaults of the others."""
    present = raw if isinstance(raw, dict) else {}
    return {k: getattr(section, k) for k in section.__struct_fields__ if k in present}
