"""How agents talk to a language model: the one seam every backend implements.

Agents never see SQLite, HTTP or an SDK.  They build a ``ChatRequest`` and await
``LLMClient.complete``; whatever goes wrong arrives as an ``LLMError``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any, Literal, Protocol

import msgspec

from bus import FailureKind
from bus.once import once

_key_encoder = msgspec.json.Encoder(order="sorted")
#: hashlib lets go of the GIL to hash 2,048 bytes or more at once; a key's ~3 KB body is hashed in smaller
#: pieces (the same digest) so that the event loop keeps the GIL for these microseconds instead of handing
#: it to a SQLite thread and waiting to get it back, once per LLM call
_HASH_PIECE = 2047

Role = Literal["system", "user", "assistant"]


# Frozen msgspec structs, not frozen dataclasses: every LLM call builds a request, its messages and a
# completion, and a frozen dataclass's generated ``__init__`` sets each field through ``object.__setattr__``
# (~4 µs for a request, against ~1 µs; BENCHMARKS.md, issue 13, fifth pass).  A changed copy is made with
# ``msgspec.structs.replace``, which runs no ``__post_init__`` and, like ``dataclasses.replace``, carries
# no cached key over; they encode as the dataclasses did (an object of the fields, in order).


class ChatMessage(msgspec.Struct, frozen=True):
    role: Role
    content: str

    def __post_init__(self) -> None:
        if self.role not in ("system", "user", "assistant"):
            raise ValueError(f"unknown chat role {self.role!r}")


class ChatRequest(msgspec.Struct, frozen=True, dict=True):
    """One chat completion.  ``model`` is the logical model name from config.

    ``sample`` tells apart requests that are otherwise identical (the third CoT
    at the same temperature).  ``meta`` is what the caller knows about the
    request (its task, the gold answer): real backends never send it; the
    simulator reads it; it is not part of the cache key."""

    model: str
    messages: tuple[ChatMessage, ...]
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int = 1024
    seed: int | None = None
    json_schema: Mapping[str, Any] | None = None
    sample: int = 0
    meta: Mapping[str, str] = msgspec.field(default_factory=dict)
    n: int = 1

    def __post_init__(self) -> None:
        if not self.model:
            raise ValueError("ChatRequest.model is empty")
        if self.n < 1:
            raise ValueError("ChatRequest.n must be >= 1")
        if not self.messages:
            raise ValueError("ChatRequest.messages is empty")
        if self.max_tokens < 1:
            raise ValueError("ChatRequest.max_tokens must be >= 1")

    def cache_key(self) -> str:
        """A hash of everything that determines the answer: model, messages, sampling, sample index."""
        return self._cache_key

    @once
    def _cache_key(self) -> str:
        body = (
            self.model,
            [(m.role, m.content) for m in self.messages],
            self.temperature,
            self.top_p,
            self.max_tokens,
            self.seed,
            self.json_schema,
            self.sample,
            self.n,
        )
        encoded = memoryview(_key_encoder.encode(body))
        digest = hashlib.sha256(encoded[:_HASH_PIECE])
        for start in range(_HASH_PIECE, len(encoded), _HASH_PIECE):
            digest.update(encoded[start:start + _HASH_PIECE])
        return digest.hexdigest()


class Choice(msgspec.Struct, frozen=True):
    text: str
    finish_reason: str = "stop"


class Completion(msgspec.Struct, frozen=True):
    """The first choice's text and finish reason; ``more`` holds choices 2..n of an ``n > 1`` request."""

    text: str
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    reasoning_tokens: int = 0
    latency_s: float = 0.0
    endpoint: str = ""
    backend: str = ""
    cached: bool = False
    more: tuple[Choice, ...] = ()

    @property
    def choices(self) -> tuple[Choice, ...]:
        return (Choice(self.text, self.finish_reason), *self.more)

    @property
    def truncated(self) -> bool:
        return self.finish_reason == "length"


class LLMClient(Protocol):
    async def complete(self, request: ChatRequest) -> Completion: ...


class LLMError(Exception):
    """Base of every failure of an LLM call, whichever backend made it.

    ``endpoint`` is where the call went (a replica's base URL, an Azure
    deployment), set by the backend that raised it, so failures are counted per
    endpoint; ``attempts`` is set by the retry layer when it gives up."""

    retryable = True
    failure_kind = FailureKind.CALL_FAILED
    endpoint = ""
    attempts = 1

    def at(self, endpoint: str) -> LLMError:
        """This error, marked as coming from ``endpoint`` (chainable: ``raise err.at(url)``)."""
        self.endpoint = endpoint
        return self


class LLMTimeout(LLMError):
    """The request took longer than its timeout."""


class RateLimited(LLMError):
    """The server said 429; ``retry_after_s`` is how long it asked us to wait."""

    def __init__(self, message: str, retry_after_s: float | None = None) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


class ServerError(LLMError):
    """The server failed (5xx)."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


class BadRequest(LLMError):
    """The server refused the request (4xx other than 429, content filter included)."""

    retryable = False

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class ConnectionLost(LLMError):
    """No answer: the connection failed or was reset."""


class BadResponse(LLMError):
    """An answer arrived but is not a usable completion."""
