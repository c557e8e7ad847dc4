"""What a failed LLM call means for the model it was sent to: pure state and arithmetic, no I/O.

``ModelHealth`` is told every outcome of every call to one model and answers,
for a failure, what the caller does next (``Next``):

- ``FAIL``: give up on this request (a request-specific refusal — context length,
  content filter —, or a lone request that keeps failing while the model answers others,
  after ``attempts`` tries).
- ``RETRY``: a strike against this request; try again after the request's backoff.
- ``WAIT``: the model is *out* (its recent requests all fail transiently: refused or
  reset connections, timeouts, 5xx from two or more requests, or a 429), so nothing is the
  request's fault: wait (the endpoint's backoff; ``Retry-After`` honoured up to
  ``max_wait_s``) and try again, without a strike, while the outage budget lasts.
- ``STOP``: the model has been out for ``outage_budget_s``: the run stops, resumably.
- ``OPEN``: ``circuit_after`` consecutive errors of one class that say the endpoint or the
  model is wrong (401/403, 404, or the same 400 from a model that never answered in this
  run): the circuit opens; until then such requests ``WAIT`` (they stay pending, not failed).
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field

from agents.llm import BadRequest, ConnectionLost, LLMError, RateLimited

#: a 400 that is about this request, not the endpoint: it fails its path and never counts toward the circuit
_REQUEST_SPECIFIC = re.compile(
    r"context.length|maximum context|context window|too many tokens|max_tokens|max_completion_tokens|"
    r"content.filter|content management|responsible ai|safety system|prompt is too long|input is too long",
    re.I)
_ENDPOINT_WRONG = (401, 403, 404)


class Next(enum.Enum):
    FAIL = "fail"
    RETRY = "retry"
    WAIT = "wait"
    STOP = "stop"
    OPEN = "open"


@dataclass(frozen=True)
class RetryPolicy:
    """``[retry]``: how long and how often a call is tried (see the README's "Failures")."""

    attempts: int = 3              # tries of one request that fails alone (the model answering others)
    base_s: float = 0.5            # backoff: the first wait's ceiling, doubling per failure ...
    cap_s: float = 30.0            # ... up to this (full jitter)
    timeout_s: float | None = 600.0  # the one timeout of one attempt (queueing in the backend included)
    max_wait_s: float = 300.0      # the longest single wait, Retry-After included
    outage_budget_s: float = 1800.0  # how long a model may be out before the run stops (resumably)
    circuit_after: int = 5         # consecutive endpoint-is-wrong errors that open a model's circuit

    def __post_init__(self) -> None:
        if self.attempts < 1 or self.circuit_after < 1:
            raise ValueError("[retry] attempts and circuit_after must be >= 1")
        if min(self.base_s, self.cap_s, self.max_wait_s, self.outage_budget_s) < 0:
            raise ValueError("[retry] base_s, cap_s, max_wait_s and outage_budget_s must be >= 0")
        if self.timeout_s is not None and self.timeout_s <= 0:
            raise ValueError("[retry] timeout_s must be > 0")

    @classmethod
    def from_mapping(cls, retry: dict[str, float]) -> RetryPolicy:
        known = {f for f in cls.__dataclass_fields__}
        values = {k: v for k, v in retry.items() if k in known}
        for key in ("attempts", "circuit_after"):
            if key in values:
                values[key] = int(values[key])
        return cls(**values)  # type: ignore[arg-type]


def endpoint_wrong(error: LLMError, *, model_answered: bool) -> bool:
    """Does ``error`` say the endpoint, key or model is wrong (rather than this request)?"""
    if not isinstance(error, BadRequest):
        return False
    if error.status in _ENDPOINT_WRONG:
        return True
    return error.status == 400 and not model_answered and not _REQUEST_SPECIFIC.search(str(error))


def signature(error: LLMError) -> str:
    """The class of an error, for "consecutive errors of the same class"."""
    return f"{type(error).__name__} {getattr(error, 'status', '')}".strip()


@dataclass
class ModelHealth:
    model: str
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    answered: bool = False                 # the model has answered at least once in this run
    last_success: float = float("-inf")
    failing_since: float | None = None     # the first transient failure after the last success
    failing: set[str] = field(default_factory=set)  # requests that failed since the last success
    connection_down: bool = False          # a refused/reset connection since the last success
    streak: int = 0                        # consecutive endpoint-is-wrong errors ...
    streak_of: str = ""                    # ... of this class
    circuit: str | None = None             # the error that opened the circuit

    def succeeded(self, now: float) -> None:
        self.answered = True
        self.last_success = now
        self.failing_since = None
        self.failing.clear()
        self.connection_down = False
        self.streak, self.streak_of = 0, ""

    def failed(self, key: str, error: LLMError, now: float, *, strikes: int, previous_failure: float | None) -> Next:
        """What to do after ``error`` ended an attempt of request ``key``.

        ``strikes`` is how many strikes the request has had before this failure;
        ``previous_failure`` when its previous attempt failed (None on its first)."""
        if self.circuit is not None:
            return Next.OPEN
        if endpoint_wrong(error, model_answered=self.answered):
            sig = signature(error)
            self.streak = self.streak + 1 if sig == self.streak_of else 1
            self.streak_of = sig
            if self.streak >= self.policy.circuit_after:
                self.circuit = f"{sig}: {error}"
                return Next.OPEN
            return Next.WAIT
        self.streak, self.streak_of = 0, ""
        if not error.retryable:
            return Next.FAIL
        self.failing_since = now if self.failing_since is None else self.failing_since
        self.failing.add(key)
        self.connection_down |= isinstance(error, ConnectionLost)
        others_answered = previous_failure is not None and self.last_success > previous_failure
        out = not others_answered and (isinstance(error, RateLimited) or self.connection_down or len(self.failing) > 1)
        if out:
            return Next.STOP if now - self.failing_since >= self.policy.outage_budget_s else Next.WAIT
        if isinstance(error, RateLimited):
            return Next.WAIT  # load, not this request: never a strike
        return Next.RETRY if strikes + 1 < self.policy.attempts else Next.FAIL
