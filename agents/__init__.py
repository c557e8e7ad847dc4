"""One agent per stage of the ReasonMed method, and the seams they need.

Agents know nothing of SQLite, HTTP or the command line: they get an
``LLMClient`` and a ``JoinState`` (Protocols defined here) and publish typed
messages through the bus.
"""

from .flow import build_subscriptions
from .llm import (
    BadRequest,
    BadResponse,
    ChatMessage,
    ChatRequest,
    Choice,
    Completion,
    ConnectionLost,
    LLMClient,
    LLMError,
    LLMTimeout,
    RateLimited,
    ServerError,
)
from .ports import JoinState
from .prompts import Templates
from .settings import FlowSettings, GeneratorModel, Sampling, TierPolicy

__all__ = [
    "BadRequest", "BadResponse", "ChatMessage", "ChatRequest", "Choice", "Completion", "ConnectionLost",
    "FlowSettings", "GeneratorModel", "JoinState", "LLMClient", "LLMError", "LLMTimeout", "RateLimited",
    "Sampling", "ServerError", "Templates", "TierPolicy", "build_subscriptions",
]
