"""Subscriptions, and running one handler on one message.

The bus retries a handler in exactly one case: it raised one of its
subscription's ``retry_on`` types (genuinely transient errors that no other
layer retries, e.g. an ``OSError`` reading a file), at most
``backoff.attempts`` times.  Everything else is not the bus's to retry: an
LLM call's errors were already retried by the LLM client (and a judge's
unparseable answer already got its correction prompts), so retrying the
handler would only multiply calls or replay a cached answer.  Such an error
becomes a ``StageFailed`` at once, of the kind the error names
(``failure_kind``), else ``internal``.

Cancellation always wins: a ``CancelledError`` — alone or inside a TaskGroup's
exception group — propagates when the task is being cancelled.  A ``StopRun``
(outage budget spent, circuit open, disk full) propagates too: the message
stays pending and the bus stops.  Exception groups are unwrapped: the failure
stores the first real cause, not ``unhandled errors in a TaskGroup``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog

from .backoff import Backoff
from .messages import Message, StageFailed
from .stop import first_stop, root_cause
from .vocabulary import FailureKind, Stage

log = structlog.get_logger("bus")

Handler = Callable[[Message], Awaitable[Sequence[Message]]]


def _always(_: Message) -> bool:
    return True


@dataclass(frozen=True)
class Subscription:
    """A named consumer of some message types.

    ``accepts`` must be a pure function of the message: routing is decided when
    the message is committed and must come out the same on a resume.  ``stage``
    is the stage a failure of this consumer is recorded under (by default the
    ``Stage`` of the same name, if there is one)."""

    name: str
    topics: tuple[type[Message], ...]
    handler: Handler
    accepts: Callable[[Message], bool] = _always
    concurrency: int = 1
    queue_size: int = 64
    backoff: Backoff = field(default_factory=Backoff)
    stage: Stage | None = None
    retry_on: tuple[type[Exception], ...] = ()

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.queue_size < 1:
            raise ValueError(f"subscription {self.name}: concurrency and queue_size must be >= 1")
        if self.stage is None and self.name in Stage.__members__.values():
            object.__setattr__(self, "stage", Stage(self.name))


@dataclass
class ConsumerStats:
    handled: int = 0
    failed: int = 0
    retried: int = 0
    in_flight: int = 0
    max_depth: int = 0


def _task_cancelling() -> bool:
    task = asyncio.current_task()
    return task is not None and task.cancelling() > 0


def _never() -> bool:
    return False


async def handle_with_retries(sub: Subscription, message: Message, stats: ConsumerStats, *,
                              cancelled: Callable[[], bool] = _never) -> tuple[Sequence[Message], bool]:
    """The handler's outputs, or a ``StageFailed`` saying why (``ok`` False).

    ``cancelled`` tells whether the bus is cancelling its workers.  The task's own ``cancelling()``
    cannot be trusted after a TaskGroup (Python 3.11 leaves it raised after a child's error), and a
    cancelled TaskGroup whose children turned the cancellation into errors raises only those errors.
    (The bus awaits a handler with no ``retry_on`` itself, and passes its error to ``settle_error``:
    the same outcome, one coroutine fewer per message.)"""
    attempts = sub.backoff.attempts if sub.retry_on else 1
    for attempt in range(1, attempts + 1):
        try:
            return await sub.handler(message), True
        except BaseException as exc:  # noqa: BLE001 - sorted by settle_error: propagated, retried or recorded
            failed = settle_error(sub, message, exc, attempt, attempts, cancelled)
            if failed is not None:
                return [failed], False
            stats.retried += 1
        await asyncio.sleep(sub.backoff.delay(attempt))
    raise AssertionError("unreachable")


def settle_error(sub: Subscription, message: Message, exc: BaseException, attempt: int, attempts: int,
                 cancelled: Callable[[], bool] = _never) -> StageFailed | None:
    """What a handler's error on its ``attempt``-th try comes to: re-raised (cancellation, a ``StopRun``,
    ``KeyboardInterrupt``), None (one of ``retry_on``, attempts left: try again), or the ``StageFailed``."""
    if isinstance(exc, KeyboardInterrupt | SystemExit):
        raise exc
    if cancelled() or (isinstance(exc, asyncio.CancelledError) and _task_cancelling()):
        if isinstance(exc, asyncio.CancelledError):
            raise exc  # whatever a TaskGroup made of it, we are being cancelled
        raise asyncio.CancelledError() from exc
    stop = first_stop(exc)
    if stop is not None:
        raise stop
    cause = root_cause(exc)
    if isinstance(cause, asyncio.CancelledError):  # raised by a handler nobody cancelled: a bug
        cause = RuntimeError("handler raised CancelledError without being cancelled")
    if not isinstance(cause, Exception):
        raise exc
    retry = isinstance(cause, sub.retry_on) and attempt < attempts
    log.warning("handler.error", agent=sub.name, question=message.question_id, message_id=message.id,
                attempt=attempt, error=f"{type(cause).__name__}: {cause}", exc_info=not retry)
    return None if retry else failure(sub, message, cause, attempt)


def failure(sub: Subscription, message: Message, exc: Exception, attempts: int) -> StageFailed:
    """The ``StageFailed`` for a handler error: kind from the error's ``failure_kind``, raw output from ``raw``."""
    if sub.stage is None:
        raise RuntimeError(f"subscription {sub.name!r} names no stage to record its failures under")
    path = getattr(message, "path", None)
    path_name = path if isinstance(path, str) else getattr(path, "name", "")
    kind = getattr(exc, "failure_kind", None)
    return StageFailed(
        run_id=message.run_id,
        question_id=message.question_id,
        parent_id=message.id,
        stage=sub.stage,
        kind=kind if isinstance(kind, FailureKind) else FailureKind.INTERNAL,
        error_class=type(exc).__name__,
        message=str(exc) or type(exc).__name__,
        attempts=max(attempts, int(getattr(exc, "attempts", 1) or 1)),
        path=path_name or "",
        raw=str(getattr(exc, "raw", "") or ""),
        failed_type=type(message).__name__,
    )
