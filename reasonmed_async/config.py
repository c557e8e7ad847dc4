"""Configuration: a TOML file with ``${ENV_VAR:-default}`` interpolation.

Secrets are never in the file: a backend names the environment variable that
holds its key (``api_key_env``), and a key written into the file is refused.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from agents.settings import FlowSettings, GeneratorModel, Sampling, TierPolicy

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_SECRET_KEYS = {"api_key", "key", "token", "password", "secret"}


class ConfigError(ValueError):
    """The configuration is unusable; the message names the file and the key."""


def interpolate(text: str, env: dict[str, str] | None = None) -> str:
    env = dict(os.environ) if env is None else env

    def sub(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        raise ConfigError(f"environment variable {name} is not set and has no default")

    return _ENV.sub(sub, text)


@dataclass(frozen=True)
class BackendConfig:
    name: str
    type: str
    options: dict[str, Any]


@dataclass(frozen=True)
class AppConfig:
    """A parsed configuration; ``text`` is the file with its ``${VAR}``s resolved (never holding a key)."""

    source: str
    text: str
    flow: FlowSettings
    backends: dict[str, BackendConfig]
    model_backends: dict[str, str]
    concurrency: dict[str, int] = field(default_factory=dict)
    queue_size: int = 64
    retry: dict[str, float] = field(default_factory=dict)
    synchronous: str = "NORMAL"
    grace_s: float = 30.0
    templates_dir: str | None = None
    prices: dict[str, tuple[float, float]] = field(default_factory=dict)
    logging: dict[str, Any] = field(default_factory=dict)

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """US dollars for the tokens, from ``[models.X] price_in`` / ``price_out`` (per million tokens)."""
        p_in, p_out = self.prices.get(model, (0.0, 0.0))
        return (prompt_tokens * p_in + completion_tokens * p_out) / 1e6

    @property
    def digest(self) -> str:
        """What the config means, not how it is written: comments and layout do not change a run's id."""
        return hashlib.sha256(canonical(tomllib.loads(self.text)).encode()).hexdigest()[:16]

    def secret_env_names(self) -> list[str]:
        return [str(b.options[k]) for b in self.backends.values() for k in b.options if k.endswith("_env")]


def load_config(path: str | Path) -> AppConfig:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    return parse_config(text, source=str(path))


def parse_config(text: str, *, source: str = "<config>", env: dict[str, str] | None = None) -> AppConfig:
    try:
        text = interpolate(text, env)  # the run stores this resolved text: resume and export need no environment
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from exc
    try:
        return _build(raw, text, source)
    except ConfigError:
        raise
    except (KeyError, TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: {exc}") from exc


def _section(raw: dict[str, Any], name: str, source: str) -> dict[str, Any]:
    value = raw.get(name, {})
    if not isinstance(value, dict):
        raise ConfigError(f"{source}: [{name}] must be a table")
    return value


STAGES = {"verifier", "ranker", "refiner", "regenerator", "summarizer", "scorer"}
SECTIONS = {
    "backends": None, "models": None, "stages": None, "tiers": None, "flow": None,
    "generation": {"models", "temperatures", "top_p", "max_tokens", "seed"},
    "concurrency": {"generator", "verifier", "tierer", "ranker", "refiner", "regenerator", "reverify", "retry",
                    "summarizer", "assembler", "scorer"},
    "retry": {"attempts", "base_s", "cap_s", "timeout_s", "handler_attempts"},
    "store": {"synchronous", "queue_size", "grace_s"},
    "logging": {"max_bytes", "backups", "level"},
    "templates_dir": None,
}


def _check_keys(raw: dict[str, Any], source: str) -> None:
    for name, value in raw.items():
        if name not in SECTIONS:
            raise ConfigError(f"{source}: unknown section [{name}] (known: {', '.join(sorted(SECTIONS))})")
        known = SECTIONS[name]
        if known is not None and isinstance(value, dict):
            unknown = sorted(set(value) - known)
            if unknown:
                raise ConfigError(f"{source}: [{name}] unknown key(s): {', '.join(unknown)}"
                                  f" (known: {', '.join(sorted(known))})")


def _build(raw: dict[str, Any], text: str, source: str) -> AppConfig:
    _check_keys(raw, source)
    backends: dict[str, BackendConfig] = {}
    for name, spec in _section(raw, "backends", source).items():
        secret = sorted(_SECRET_KEYS & set(spec))
        if secret:
            raise ConfigError(f"{source}: [backends.{name}] {secret[0]}: keys never go in the config file;"
                              " name the environment variable that holds it with api_key_env")
        if "type" not in spec:
            raise ConfigError(f"{source}: [backends.{name}] type is required")
        backends[name] = BackendConfig(name, spec["type"], {k: v for k, v in spec.items() if k != "type"})
    models: dict[str, dict[str, Any]] = _section(raw, "models", source)
    model_backends: dict[str, str] = {}
    prices: dict[str, tuple[float, float]] = {}
    for alias, spec in models.items():
        unknown = set(spec) - {"backend", "model", "price_in", "price_out"}
        if unknown:
            raise ConfigError(f"{source}: [models.{alias}] unknown keys: {', '.join(sorted(unknown))}")
        if spec.get("backend") not in backends:
            raise ConfigError(f"{source}: [models.{alias}] backend {spec.get('backend')!r} is not a [backends] entry")
        served_name = str(spec.get("model", alias))
        if model_backends.get(served_name, spec["backend"]) != spec["backend"]:
            raise ConfigError(f"{source}: [models.{alias}] model {served_name!r} is bound to two backends")
        model_backends[served_name] = spec["backend"]
        prices[served_name] = (float(spec.get("price_in", 0.0)), float(spec.get("price_out", 0.0)))

    def served(alias: str, where: str) -> str:
        if alias not in models:
            raise ConfigError(f"{source}: {where}: model {alias!r} is not a [models] entry")
        return str(models[alias].get("model", alias))

    gen = _section(raw, "generation", source)
    generators = tuple(
        GeneratorModel(
            name=alias,
            model=served(alias, "[generation] models"),
            temperatures=tuple(float(t) for t in gen.get("temperatures", (0.7, 0.9, 1.0))),
            top_p=gen.get("top_p", 0.9),
            max_tokens=int(gen.get("max_tokens", 8192)),
            seed=gen.get("seed"),
        )
        for alias in gen.get("models", [])
    )
    stages = _section(raw, "stages", source)
    unknown_stages = sorted(set(stages) - STAGES)
    if unknown_stages:
        raise ConfigError(f"{source}: unknown stage(s) [stages.{unknown_stages[0]}]"
                          f" (known: {', '.join(sorted(STAGES))})")

    def sampling(stage: str, required: bool = True) -> Sampling | None:
        spec = stages.get(stage)
        if spec is None:
            if required:
                raise ConfigError(f"{source}: [stages.{stage}] is required")
            return None
        unknown = set(spec) - {"model", "temperature", "top_p", "max_tokens", "seed", "rate"}
        if unknown:
            raise ConfigError(f"{source}: [stages.{stage}] unknown keys: {', '.join(sorted(unknown))}")
        return Sampling(served(spec["model"], f"[stages.{stage}]"), spec.get("temperature"), spec.get("top_p"),
                        int(spec.get("max_tokens", 2048)), spec.get("seed"))

    flow_raw = _section(raw, "flow", source)
    flow = FlowSettings(
        generators=generators,
        verifier=sampling("verifier"),  # type: ignore[arg-type]
        ranker=sampling("ranker"),  # type: ignore[arg-type]
        refiner=sampling("refiner"),  # type: ignore[arg-type]
        regenerator=sampling("regenerator"),  # type: ignore[arg-type]
        summarizer=sampling("summarizer"),  # type: ignore[arg-type]
        scorer=sampling("scorer", required=False),
        tiers=TierPolicy(**_section(raw, "tiers", source)),
        score_rate=float(stages.get("scorer", {}).get("rate", 0.0)),
        **flow_raw,
    )
    store = _section(raw, "store", source)
    return AppConfig(
        source=source,
        text=text,
        flow=flow,
        backends=backends,
        model_backends=model_backends,
        concurrency={k: int(v) for k, v in _section(raw, "concurrency", source).items()},
        queue_size=int(store.get("queue_size", 64)),
        retry={k: float(v) for k, v in _section(raw, "retry", source).items()},
        synchronous=str(store.get("synchronous", "NORMAL")).upper(),
        grace_s=float(store.get("grace_s", 30.0)),
        templates_dir=raw.get("templates_dir"),
        prices=prices,
        logging=_section(raw, "logging", source),
    )


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
