"""Tierer: the one join — waits for every path of a question, then assigns its tier."""

from __future__ import annotations

from collections.abc import Sequence

from bus import FailureKind, Judgement, Message, Stage, StageFailed, TierAssigned, Verdict

from .ports import JoinState
from .settings import FlowSettings
from .tiering import assign_tier

def is_first_pass(message: Message) -> bool:
    """A path's first-pass outcome: its verdict, or the failure that left it without one."""
    if isinstance(message, Verdict):
        return message.attempt == 0
    return isinstance(message, StageFailed) and message.stage.per_path and bool(message.path)


def _path_of(message: Message) -> str:
    return message.path.name if isinstance(message, Verdict) else message.path  # type: ignore[attr-defined]


def _judged(v: Verdict) -> Judgement:
    made = v.path.provenance[0] if v.path.provenance else None
    return Judgement(path=v.path.name, verdict=v.verdict, reason=v.reason, model=made.model if made else "",
                     temperature=made.temperature if made else None, stated_answer=v.path.stated_answer, judge=v.judge)


class Tierer:
    def __init__(self, join: JoinState, settings: FlowSettings) -> None:
        self._join = join
        self._settings = settings
        self._samplings = {name: s for g in settings.generators for name, s in g.paths()}

    def _failed(self, f: StageFailed) -> Judgement:
        made = self._samplings.get(f.path)
        return Judgement(path=f.path, verdict=None, reason=f.reason, stage=f.stage, kind=f.kind,
                         model=made.model if made else "", temperature=made.temperature if made else None)

    async def handle(self, message: Message) -> Sequence[Message]:
        key = f"tier/{message.run_id}/{message.question_id}"
        items = await self._join.gather(key, _path_of(message), message, self._settings.path_count)
        if items is None:
            return []
        verdicts = sorted((m for m in items if isinstance(m, Verdict)), key=lambda v: v.path.name)
        failures = [m for m in items if isinstance(m, StageFailed)]
        judgements = tuple(
            sorted(
                [_judged(v) for v in verdicts] + [self._failed(f) for f in failures],
                key=lambda j: j.path,
            )
        )
        common = {"run_id": message.run_id, "question_id": message.question_id}
        policy = self._settings.tiers
        if len(verdicts) < policy.min_usable:
            reasons = "; ".join(f"{j.path}: {j.reason}" for j in judgements if j.verdict is None)
            return [StageFailed(**common, stage=Stage.TIER, kind=FailureKind.INSUFFICIENT, failed_type="Verdict",
                                message=f"only {len(verdicts)} of {len(items)} paths have a usable verdict"
                                        f" (at least {policy.min_usable} needed): {reasons}")]
        errors = sum(v.verdict == "Error" for v in verdicts)
        correct = tuple(v.path for v in verdicts if v.verdict == "Correct")
        return [TierAssigned(**common, question=verdicts[0].question, tier=assign_tier(errors, len(correct), policy),
                             errors=errors, correct=correct, judgements=judgements)]
