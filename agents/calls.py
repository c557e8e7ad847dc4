"""Making an LLM call on behalf of a stage: request, provenance, judge corrections."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from msgspec.structs import replace

from bus import FailureKind, Message, Provenance, Stage, StageFailed

from .llm import ChatMessage, ChatRequest, Completion, LLMClient
from .parsing import ParseError
from .settings import Sampling

T = TypeVar("T")


def request(
    sampling: Sampling,
    messages: Sequence[ChatMessage],
    *,
    sample: int = 0,
    schema: Mapping[str, Any] | None = None,
    meta: Mapping[str, str] | None = None,
) -> ChatRequest:
    return ChatRequest(
        model=sampling.model,
        messages=tuple(messages),
        temperature=sampling.temperature,
        top_p=sampling.top_p,
        max_tokens=sampling.max_tokens,
        # A seeded server gives the same answer to the same body: paths of one model and temperature
        # (sample 1, 2, ...) would be copies of each other, so each gets its own seed.
        seed=None if sampling.seed is None else sampling.seed + sample,
        json_schema=schema,
        sample=sample,
        meta=dict(meta or {}),
    )


def provenance(role: str, req: ChatRequest, completion: Completion, template: str) -> Provenance:
    return Provenance(
        role=role,
        model=req.model,
        backend=completion.backend,
        temperature=req.temperature,
        top_p=req.top_p,
        seed=req.seed,
        template=template,
        prompt_tokens=completion.prompt_tokens,
        completion_tokens=completion.completion_tokens,
    )


def failed(parent: Message, stage: Stage, error: Exception, *, path: str = "") -> StageFailed:
    """The ``StageFailed`` for an error that ended a call (an ``LLMError``, a ``JudgeFailed``)."""
    kind = getattr(error, "failure_kind", FailureKind.INTERNAL)
    return StageFailed(run_id=parent.run_id, question_id=parent.question_id, parent_id=parent.id, stage=stage,
                       kind=kind, error_class=type(error).__name__, message=str(error) or type(error).__name__,
                       attempts=int(getattr(error, "attempts", 1) or 1), path=path,
                       raw=str(getattr(error, "raw", "") or ""), failed_type=type(parent).__name__)


def truncated(parent: Message, stage: Stage, completion: Completion, *, path: str = "") -> StageFailed:
    """The ``StageFailed`` for an output cut at the token limit (``finish_reason=length``)."""
    return StageFailed(run_id=parent.run_id, question_id=parent.question_id, parent_id=parent.id, stage=stage,
                       kind=FailureKind.TRUNCATED, message=f"finish_reason=length after {completion.completion_tokens}"
                       " tokens", path=path, failed_type=type(parent).__name__)


class JudgeFailed(Exception):
    """A judge's answer still did not parse after its correction prompts: an ``unparseable`` failure.

    ``raw`` is the last answer as the model wrote it, kept for the failure record."""

    failure_kind = FailureKind.UNPARSEABLE

    def __init__(self, reason: str, attempts: int, raw: str) -> None:
        super().__init__(reason, attempts, raw)
        self.reason, self.attempts, self.raw = reason, attempts, raw

    def __str__(self) -> str:
        return f"unparseable judge output after {self.attempts} attempts: {self.reason}"


class JudgeTruncated(JudgeFailed):
    """A judge's answer was cut at the token limit (``finish_reason=length``): never parsed, never corrected."""

    failure_kind = FailureKind.TRUNCATED

    def __str__(self) -> str:
        return self.reason


async def ask_json(
    client: LLMClient, req: ChatRequest, parse: Callable[[str], T], *, corrections: int
) -> tuple[T, Completion, ChatRequest]:
    """Call a judge; on a parse failure tell it what was wrong and ask again, at most ``corrections`` times.

    Each correction is a new request (the previous answer and the correction appended), so its cache
    key differs: a cached unparseable answer is never replayed as if it were a new try."""
    current = req
    for attempt in range(corrections + 1):
        completion = await client.complete(current)
        if completion.truncated:
            raise JudgeTruncated(f"truncated: finish_reason=length after {completion.completion_tokens} tokens",
                                 attempt + 1, completion.text)
        try:
            return parse(completion.text), completion, current
        except ParseError as exc:
            if attempt == corrections:
                raise JudgeFailed(str(exc), attempt + 1, completion.text) from exc
            current = replace(
                current,
                messages=current.messages
                + (
                    ChatMessage("assistant", completion.text),
                    ChatMessage("user", f"Your answer could not be used: {exc}. Reply again with the JSON object only."),
                ),
            )
    raise AssertionError("unreachable")
