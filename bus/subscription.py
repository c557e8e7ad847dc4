"""Subscriptions, and running one handler on one message with bounded retries."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

import structlog

from .backoff import Backoff
from .messages import Message, StageFailed

log = structlog.get_logger("bus")

Handler = Callable[[Message], Awaitable[Sequence[Message]]]


def _always(_: Message) -> bool:
    return True


@dataclass(frozen=True)
class Subscription:
    """A named consumer of some message types.

    ``accepts`` must be a pure function of the message: routing is decided when
    the message is committed and must come out the same on a resume."""

    name: str
    topics: tuple[type[Message], ...]
    handler: Handler
    accepts: Callable[[Message], bool] = _always
    concurrency: int = 1
    queue_size: int = 64
    backoff: Backoff = field(default_factory=Backoff)

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.queue_size < 1:
            raise ValueError(f"subscription {self.name}: concurrency and queue_size must be >= 1")

    def wants(self, message: Message) -> bool:
        return isinstance(message, self.topics) and self.accepts(message)


@dataclass
class ConsumerStats:
    handled: int = 0
    failed: int = 0
    retried: int = 0
    in_flight: int = 0
    max_depth: int = 0


async def handle_with_retries(sub: Subscription, message: Message, stats: ConsumerStats) -> tuple[Sequence[Message], bool]:
    """The handler's outputs, or — once its attempts are spent — a ``StageFailed`` saying why (``ok`` False).

    ``CancelledError`` propagates when we are being cancelled; raised by a
    handler that was not, it is a failure like any other."""
    attempts = sub.backoff.attempts
    for attempt in range(1, attempts + 1):
        try:
            try:
                return await sub.handler(message), True
            except asyncio.CancelledError:
                task = asyncio.current_task()
                if task is None or task.cancelling():
                    raise  # we are being cancelled: propagate
                raise RuntimeError("handler raised CancelledError without being cancelled") from None
        except Exception as exc:  # noqa: BLE001 - recorded below, never swallowed
            log.warning("handler.error", agent=sub.name, question=message.question_id, message_id=message.id,
                        attempt=attempt, error=f"{type(exc).__name__}: {exc}", exc_info=attempt == attempts)
            if attempt == attempts:
                return [failure(sub, message, exc, attempts)], False
            stats.retried += 1
            await asyncio.sleep(sub.backoff.delay(attempt))
    raise AssertionError("unreachable")


def failure(sub: Subscription, message: Message, exc: Exception, attempts: int) -> StageFailed:
    path = getattr(message, "path", None)
    path_name = path if isinstance(path, str) else getattr(path, "name", "")
    return StageFailed(
        run_id=message.run_id,
        question_id=message.question_id,
        parent_id=message.id,
        stage=sub.name,
        reason=f"{type(exc).__name__}: {exc}",
        attempts=attempts,
        path=path_name or "",
        failed_type=type(message).__name__,
    )
