"""The typed messages of the ReasonMed flow.

Every message is a frozen ``msgspec.Struct``, validated when it is built (and
when it is decoded), carrying the run id, the question id and the id of the
message that caused it.  Its own id is derived from that cause, so the same
message produced twice — by a retried handler, or after a crash — has the same
id and is recognised as a duplicate instead of being delivered again.
"""

from __future__ import annotations

from typing import ClassVar

import msgspec

from .gates import Gate
from .once import once
from .payloads import (  # noqa: F401 - re-exported: the message types' vocabulary
    LETTERS, Judgement, Origin, Path, Provenance, Question, RewriteInput, Tier, VerdictLabel, _digest,
)
from .vocabulary import FailureKind, Stage

#: v2: ``StageFailed`` carries typed fields (stage, kind, error class, message, raw) instead of a reason text
SCHEMA_VERSION = 2


class Message(msgspec.Struct, frozen=True, kw_only=True, tag=True, dict=True):
    """Base of every message: run, question and cause.

    ``dict=True`` gives each message a ``__dict__`` for its cached ``id`` (the bus, the journal and the
    agents each ask for it); it is not a field: the encoding and equality are the fields alone."""

    run_id: str
    question_id: str
    parent_id: str = ""

    cause_fields: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        if not self.run_id or not self.question_id:
            raise ValueError(f"{type(self).__name__}: run_id and question_id are required")

    @once
    def id(self) -> str:
        extra = [getattr(self, f) for f in self.cause_fields]
        return _digest(type(self).__name__, self.run_id, self.question_id, self.parent_id, *extra)


class QuestionIngested(Message, frozen=True, kw_only=True):
    question: Question

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.question.id != self.question_id:
            raise ValueError("QuestionIngested: question_id differs from question.id")


class CoTGenerated(Message, frozen=True, kw_only=True):
    question: Question
    path: Path

    cause_fields = ("path_name",)

    @property
    def path_name(self) -> str:
        return self.path.name


class Verdict(Message, frozen=True, kw_only=True):
    """A judged path. ``attempt`` 0 is a first-pass path; 1+ is a refined CoT re-verified."""

    question: Question
    path: Path
    verdict: VerdictLabel
    reason: str
    attempt: int = 0
    tier: str = ""
    error_reasons: tuple[Judgement, ...] = ()
    judge: Provenance | None = None

    cause_fields = ("attempt",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.verdict not in ("Correct", "Error"):
            raise ValueError(f"Verdict: verdict must be Correct or Error, got {self.verdict!r}")
        if self.attempt < 0:
            raise ValueError("Verdict: attempt must be >= 0")


class StageFailed(Message, frozen=True, kw_only=True):
    """A stage gave up on its input, with typed fields: nothing downstream reads a reason text.

    ``error_class`` is the class of the error that ended it (``ServerError``,
    ``JudgeFailed``; empty for the method's own verdicts), ``message`` what it
    said, ``raw`` the model's output when it did not parse (kept to audit and retry)."""

    stage: Stage
    kind: FailureKind
    message: str
    error_class: str = ""
    attempts: int = 1
    path: str = ""
    raw: str = ""
    failed_type: str = ""
    gate: Gate | None = None

    cause_fields = ("stage", "path")

    def __post_init__(self) -> None:
        super().__post_init__()
        if not isinstance(self.stage, Stage) or not isinstance(self.kind, FailureKind):
            raise ValueError("StageFailed: stage must be a Stage and kind a FailureKind")
        if not self.message:
            raise ValueError("StageFailed: message is required")

    @property
    def reason(self) -> str:
        """One line for people: ``ErrorClass: message``."""
        return f"{self.error_class}: {self.message}" if self.error_class else self.message


class TierAssigned(Message, frozen=True, kw_only=True):
    question: Question
    tier: Tier
    errors: int
    correct: tuple[Path, ...]
    judgements: tuple[Judgement, ...]

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.tier not in ("easy", "medium", "difficult"):
            raise ValueError(f"TierAssigned: unknown tier {self.tier!r}")

    @property
    def error_reasons(self) -> tuple[Judgement, ...]:
        return tuple(j for j in self.judgements if j.verdict == "Error")


class Ranked(Message, frozen=True, kw_only=True):
    question: Question
    tier: Tier
    chosen: tuple[Path, ...]
    reasons: dict[str, str]
    error_reasons: tuple[Judgement, ...] = ()
    called: bool = True
    provenance: Provenance | None = None
    ranker: str = "model"  # "model": the ranker chose; "fallback": its answers never parsed (see ``raw``)
    raw: tuple[str, ...] = ()  # with "fallback": the ranker's unparseable answers, as written


class Refined(Message, frozen=True, kw_only=True):
    """A rewritten CoT: refined (medium) or regenerated (difficult)."""

    question: Question
    tier: Tier
    path: Path
    source_path: str
    attempt: int = 1
    error_reasons: tuple[Judgement, ...] = ()

    cause_fields = ("source_path", "attempt")


class Summarized(Message, frozen=True, kw_only=True):
    question: Question
    tier: Tier
    path: Path
    response: str
    provenance: Provenance
    verdict_reason: str = ""

    cause_fields = ("path_name",)

    @property
    def path_name(self) -> str:
        return self.path.name


class RecordReady(Message, frozen=True, kw_only=True):
    """An exportable (question, CoT, response) triple."""

    question: Question
    tier: Tier
    path: Path
    response: str
    response_provenance: Provenance
    record_id: str
    steps: int = 0
    warnings: tuple[str, ...] = ()


class Scored(Message, frozen=True, kw_only=True):
    target_id: str
    score: int
    justification: str
    provenance: Provenance

    def __post_init__(self) -> None:
        super().__post_init__()
        if not 1 <= self.score <= 10:
            raise ValueError(f"Scored: score must be 1..10, got {self.score}")


ALL_MESSAGES: tuple[type[Message], ...] = (
    QuestionIngested,
    CoTGenerated,
    Verdict,
    StageFailed,
    TierAssigned,
    Ranked,
    Refined,
    Summarized,
    RecordReady,
    Scored,
)
