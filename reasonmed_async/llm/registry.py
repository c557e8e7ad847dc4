"""Turning a ``[backends.NAME]`` table into a live LLM client.

Backends are imported when used, so a config that never names ``vllm`` never
imports it (it is an optional extra that needs a GPU build).
"""

from __future__ import annotations

from typing import Protocol

from agents.llm import ChatRequest, Completion

from reasonmed_async.config import BackendConfig, ConfigError


class Backend(Protocol):
    async def complete(self, request: ChatRequest) -> Completion: ...

    async def aclose(self) -> None: ...


SUPPORTED = ("sim", "openai", "azure", "vllm")


async def open_backend(config: BackendConfig) -> Backend:
    if config.type == "sim":
        from reasonmed_async.llm.sim import SimClient
        from reasonmed_async.llm.sim_settings import SimSettings

        try:
            return SimClient(SimSettings.from_mapping(config.options))
        except ValueError as exc:
            raise ConfigError(f"[backends.{config.name}]: {exc}") from exc
    if config.type == "openai":
        from reasonmed_async.llm.openai_http import open_openai_backend

        return await open_openai_backend(config)
    if config.type == "azure":
        from reasonmed_async.llm.azure_openai import open_azure_backend

        return await open_azure_backend(config)
    if config.type == "vllm":
        from reasonmed_async.llm.vllm_inprocess import open_vllm_backend

        return await open_vllm_backend(config)
    raise ConfigError(f"[backends.{config.name}]: backend type {config.type!r} is not one of {', '.join(SUPPORTED)}")
