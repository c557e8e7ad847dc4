"""The settings of an OpenAI-compatible backend (``[backends.NAME]``, ``type = "openai"``), validated.

Pure: no aiohttp here, so a configuration is checked (``config.py``) without importing the HTTP client.
The options are described in ``openai_http.py``, the backend that takes them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from reasonmed_async.llm.credentials import check_key_options
from reasonmed_async.llm.identity import default_concurrency
from reasonmed_async.llm.replicas import PoolPolicy

#: How a request with a schema asks for JSON: ``json_schema`` (OpenAI's structured outputs, vLLM),
#: ``json_object`` with the schema in its ``schema`` field (llama.cpp's and llama-cpp-python's servers),
#: ``none`` (the prompt alone asks for it).  ``auto`` is resolved per endpoint by the backend.
STRUCTURED_OUTPUT = ("auto", "json_schema", "json_object", "none")

OPTIONS = frozenset({"base_url", "base_urls", "api_key_env", "api_key_file", "max_concurrency", "timeout_s", "structured_output",
                     "structured_output_models", "adaptive", "initial_concurrency", "eject_after", "cooloff_s",
                     "eject_last", "max_num_seqs", "replicas"})


@dataclass(frozen=True)
class OpenAISettings:
    base_urls: tuple[str, ...]
    api_key_env: str | None = None
    timeout_s: float = 600.0
    structured_output: str = "auto"
    policy: PoolPolicy = field(default_factory=PoolPolicy)
    structured_output_models: tuple[tuple[str, str], ...] = ()

    def structured_output_for(self, model: str) -> str:
        return dict(self.structured_output_models).get(model, self.structured_output)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> OpenAISettings:
        """Validated settings; ``ValueError`` naming the offending key."""
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(OPTIONS))}")
        if ("base_url" in options) == ("base_urls" in options):
            raise ValueError("give exactly one of base_url (one replica) or base_urls (a list)")
        urls = [options["base_url"]] if "base_url" in options else options["base_urls"]
        if not isinstance(urls, list | tuple) or not urls:
            raise ValueError("base_urls must be a non-empty list of URLs")
        for url in urls:
            if not isinstance(url, str) or not url.startswith(("http://", "https://")):
                raise ValueError(f"base_urls: {url!r} is not an http:// or https:// URL")
        env = options.get("api_key_env")
        if env is not None and (not isinstance(env, str) or not env):
            raise ValueError("api_key_env must name an environment variable")
        check_key_options(options, required=False)
        structured = options.get("structured_output", "auto")
        if structured not in STRUCTURED_OUTPUT:
            raise ValueError(f"structured_output must be one of {', '.join(STRUCTURED_OUTPUT)}, got {structured!r}")
        per_model = options.get("structured_output_models", {})
        if not isinstance(per_model, Mapping):
            raise ValueError("structured_output_models must be a table of model name = mode")
        for name, mode in per_model.items():
            if mode not in STRUCTURED_OUTPUT:
                raise ValueError(f"structured_output_models.{name} must be one of {', '.join(STRUCTURED_OUTPUT)},"
                                 f" got {mode!r}")
        policy = PoolPolicy(
            max_concurrency=default_concurrency(options),
            adaptive=_bool(options, "adaptive", True),
            initial_concurrency=_int(options, "initial_concurrency", 8),
            eject_after=_int(options, "eject_after", 3),
            cooloff_s=_number(options, "cooloff_s", 10.0),
            eject_last=_bool(options, "eject_last", False),
        )
        timeout = _number(options, "timeout_s", 600.0)
        if timeout <= 0:
            raise ValueError("timeout_s must be > 0")
        return cls(tuple(u.rstrip("/") for u in urls), env, timeout, structured, policy,
                   tuple(sorted((str(k), str(v)) for k, v in per_model.items())))


def _int(options: Mapping[str, Any], key: str, default: int) -> int:
    value = options.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
    return value


def _number(options: Mapping[str, Any], key: str, default: float) -> float:
    value = options.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{key} must be a number >= 0, got {value!r}")
    return float(value)


def _bool(options: Mapping[str, Any], key: str, default: bool) -> bool:
    value = options.get(key, default)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {value!r}")
    return value
