"""Turning a ``[backends.NAME]`` table into a live LLM client."""

from __future__ import annotations

from typing import Protocol

from agents.llm import ChatRequest, Completion

from .config import BackendConfig, ConfigError
from .sim import SimClient
from .sim_settings import SimSettings


class Backend(Protocol):
    async def complete(self, request: ChatRequest) -> Completion: ...

    async def aclose(self) -> None: ...


SUPPORTED = ("sim",)


async def open_backend(config: BackendConfig) -> Backend:
    if config.type == "sim":
        try:
            return SimClient(SimSettings.from_mapping(config.options))
        except ValueError as exc:
            raise ConfigError(f"[backends.{config.name}]: {exc}") from exc
    raise ConfigError(f"[backends.{config.name}]: backend type {config.type!r} is not supported by this build"
                      f" (supported: {', '.join(SUPPORTED)})")
