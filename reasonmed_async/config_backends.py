"""One ``[backends.NAME]`` table checked at load time: its type, no secrets in the file, no credentials in a
URL, an environment variable's *name* for the key, and each backend's own options (``*Settings``)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from reasonmed_async.config_errors import ConfigError

_SECRET_KEYS = {"api_key", "key", "token", "password", "secret"}


@dataclass(frozen=True)
class BackendConfig:
    name: str
    type: str
    options: dict[str, Any]


_URL_CREDENTIALS = re.compile(r"^[a-z][a-z0-9+.-]*://[^/@]*@", re.I)
_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]*$")
BACKEND_TYPES = ("sim", "openai", "azure", "vllm")


def _urls(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, list):
        return [v for v in value if isinstance(v, str)]
    return []


def check_backend(name: str, spec: dict[str, Any], source: str) -> BackendConfig:
    where = f"{source}: [backends.{name}]"
    secret = sorted(_SECRET_KEYS & set(spec))
    if secret:
        raise ConfigError(f"{where} {secret[0]}: keys never go in the config file;"
                          " name the environment variable that holds it with api_key_env,"
                          " or a file holding it with api_key_file")
    if "type" not in spec:
        raise ConfigError(f"{where} type is required (allowed: {', '.join(BACKEND_TYPES)})")
    if spec["type"] not in BACKEND_TYPES:
        raise ConfigError(f"{where} type: {str(spec['type'])[:40]!r} is not allowed (allowed: {', '.join(BACKEND_TYPES)})")
    for key in ("base_url", "base_urls", "endpoint"):
        if any(_URL_CREDENTIALS.match(url) for url in _urls(spec.get(key))):
            raise ConfigError(f"{where} {key}: a URL must not hold credentials (user:key@host; not shown):"
                              " put the key in an environment variable named by api_key_env")
    env = spec.get("api_key_env")
    if env is not None and (not isinstance(env, str) or not _ENV_NAME.match(env)):
        raise ConfigError(f"{where} api_key_env: must be the NAME of an environment variable (A-Z, 0-9, _);"
                          " the value given is not shown, in case it is the key itself")
    options = {k: v for k, v in spec.items() if k != "type"}
    try:
        _validate_backend_options(spec["type"], options)
    except ValueError as exc:
        raise ConfigError(f"{where} {exc}") from None
    return BackendConfig(name, spec["type"], options)


def _validate_backend_options(kind: str, options: dict[str, Any]) -> None:
    """Each backend's own checks, at load time (the vLLM extra checks its own when it starts)."""
    if kind == "sim":
        from reasonmed_async.llm.sim_settings import SimSettings

        SimSettings.from_mapping(options)
    elif kind == "openai":
        from reasonmed_async.llm.openai_settings import OpenAISettings

        OpenAISettings.from_options(options)
    elif kind == "azure":
        from reasonmed_async.llm.azure_openai import AzureSettings

        AzureSettings.from_options(options)
