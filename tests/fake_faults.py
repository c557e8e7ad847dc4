"""What the fake LLM server (``fake_llm_server.py``) is told to do wrong, and what it records of each request."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Faults:  # rates: probabilities per request, rolled from (seed, body, times that body was seen)
    seed: int = 0
    rate_429: float = 0.0
    retry_after_s: float = 1.0
    rate_500: float = 0.0
    rate_reset: float = 0.0
    slow_rate: float = 0.0
    slow_s: float = 5.0
    malformed_rate: float = 0.0
    length_rate: float = 0.0
    latency_s: float = 0.0
    rpm: int | None = None
    tpm: int | None = None
    window_s: float = 60.0
    rate_400: float = 0.0  # a 400 (context length) for a body every time it is sent: a permanent failure


@dataclass
class RequestRecord:
    t_monotonic: float
    path: str
    model_or_deployment: str
    body: dict[str, Any]
    status: int = 0  # 0: the connection was dropped without an answer
    retry_after_s: float = 0.0  # what a 429 told the client to wait
    prompt_tokens: int = 0
    completion_tokens: int = 0
    headers: dict[str, str] = field(default_factory=dict)
