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

import msgspec

from agents.gates import GateSettings
from agents.settings import FlowSettings, GeneratorModel, Sampling, TierPolicy

from reasonmed_async.config_changes import identity
from reasonmed_async.config_backends import BackendConfig, check_backend  # re-exported: BackendConfig
from reasonmed_async.config_errors import ConfigError, describe  # re-exported: ConfigError
from reasonmed_async.loaders.limits import InputLimits
from reasonmed_async.config_schema import ConfigFile, ModelTable, given
from reasonmed_async.llm.o1 import is_o1

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


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
    file: ConfigFile = field(default_factory=ConfigFile)  # every section, typed, defaults filled in

    def cost(self, model: str, prompt_tokens: int, completion_tokens: int) -> float:
        """US dollars for the tokens, from ``[models.X] price_in`` / ``price_out`` (per million tokens)."""
        p_in, p_out = self.prices.get(model, (0.0, 0.0))
        return (prompt_tokens * p_in + completion_tokens * p_out) / 1e6

    @property
    def digest(self) -> str:
        """The run's identity: what the config means for the data, not how it is written or reached —
        comments, layout and the keys that may change under a run (``config_changes``: URLs, limits,
        retry, ...) do not change a run's id."""
        return hashlib.sha256(canonical(identity(tomllib.loads(self.text))).encode()).hexdigest()[:16]

    @property
    def legacy_digest(self) -> str:
        """The digest earlier builds gave the same config (every key): the ids of the runs they started."""
        return hashlib.sha256(canonical(tomllib.loads(self.text)).encode()).hexdigest()[:16]

    def input_limits(self) -> InputLimits:
        return InputLimits(**msgspec.structs.asdict(self.file.input))

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
        raise ConfigError(f"{source}: {exc}") from None


def _normalised(raw: dict[str, Any]) -> dict[str, Any]:
    """Case-insensitive choices in the case the schema lists them."""
    for section, key, case in (("store", "synchronous", str.upper), ("logging", "level", str.lower)):
        table = raw.get(section)
        if isinstance(table, dict) and isinstance(table.get(key), str):
            raw[section] = {**table, key: case(table[key].strip())}
    return raw


def _typed(raw: dict[str, Any], source: str) -> ConfigFile:
    backends = raw.get("backends")
    for name, spec in (backends.items() if isinstance(backends, dict) else ()):
        if not isinstance(spec, dict):
            raise ConfigError(f"{source}: [backends.{name}] must be a table")
    models = raw.get("models")
    for alias, spec in (models.items() if isinstance(models, dict) else ()):
        try:  # one by one: msgspec's error would not say which [models.X]
            msgspec.convert(spec, ModelTable)
        except msgspec.ValidationError as exc:
            raise ConfigError(describe(exc, ConfigFile, source, prefix=("models", alias))) from None
    try:
        return msgspec.convert(_normalised(raw), ConfigFile)
    except msgspec.ValidationError as exc:
        raise ConfigError(describe(exc, ConfigFile, source)) from None


def _build(raw: dict[str, Any], text: str, source: str) -> AppConfig:
    typed = _typed(raw, source)
    backends = {name: check_backend(name, spec, source) for name, spec in typed.backends.items()}
    model_backends: dict[str, str] = {}
    prices: dict[str, tuple[float, float]] = {}
    for alias, spec in typed.models.items():
        if spec.backend not in backends:
            raise ConfigError(f"{source}: [models.{alias}] backend: {spec.backend!r} is not a [backends] entry"
                              f" (allowed: {', '.join(sorted(backends)) or 'none defined'})")
        served_name = spec.model or alias
        if model_backends.get(served_name, spec.backend) != spec.backend:
            raise ConfigError(f"{source}: [models.{alias}] model {served_name!r} is bound to two backends")
        model_backends[served_name] = spec.backend
        prices[served_name] = (spec.price_in, spec.price_out)

    def served(alias: str, where: str) -> str:
        if alias not in typed.models:
            raise ConfigError(f"{source}: {where}: {alias!r} is not a [models] entry"
                              f" (allowed: {', '.join(sorted(typed.models)) or 'none defined'})")
        return typed.models[alias].model or alias

    gen = typed.generation
    if not gen.models:
        raise ConfigError(f"{source}: [generation] models: at least one generator model is required")
    generators = tuple(
        GeneratorModel(name=alias, model=served(alias, "[generation] models"), temperatures=gen.temperatures,
                       top_p=gen.top_p, max_tokens=gen.max_tokens, seed=gen.seed)
        for alias in gen.models
    )
    paths = len(gen.models) * len(gen.temperatures)

    def sampling(stage: str, required: bool = True) -> Sampling | None:
        spec = getattr(typed.stages, stage)
        if spec is None:
            if required:
                raise ConfigError(f"{source}: [stages.{stage}] is required")
            return None
        return Sampling(served(spec.model, f"[stages.{stage}] model"), spec.temperature, spec.top_p,
                        spec.max_tokens, spec.seed)

    if typed.store.warn_free_mb < typed.store.min_free_mb:
        raise ConfigError(f"{source}: [store] warn_free_mb ({typed.store.warn_free_mb:g}) must be at least"
                          f" min_free_mb ({typed.store.min_free_mb:g})")
    tiers = typed.tiers
    if not tiers.easy_max < tiers.medium_max:
        raise ConfigError(f"{source}: [tiers] easy_max ({tiers.easy_max}) must be below medium_max"
                          f" ({tiers.medium_max}): easy <= easy_max < medium <= medium_max < difficult")
    if tiers.min_usable > paths:
        raise ConfigError(f"{source}: [tiers] min_usable ({tiers.min_usable}) must be at most the {paths}"
                          " paths per question ([generation] models x temperatures)")
    flow = FlowSettings(
        generators=generators,
        verifier=sampling("verifier"),  # type: ignore[arg-type]
        ranker=sampling("ranker"),  # type: ignore[arg-type]
        refiner=sampling("refiner"),  # type: ignore[arg-type]
        regenerator=sampling("regenerator"),  # type: ignore[arg-type]
        summarizer=sampling("summarizer"),  # type: ignore[arg-type]
        scorer=sampling("scorer", required=False),
        tiers=TierPolicy(easy_max=tiers.easy_max, medium_max=tiers.medium_max, min_usable=tiers.min_usable),
        score_rate=typed.stages.scorer.rate if typed.stages.scorer else 0.0,
        score_show_answer=typed.stages.scorer.show_answer if typed.stages.scorer else False,
        gates=GateSettings(**msgspec.structs.asdict(typed.gates)),
        **msgspec.structs.asdict(typed.flow),
    )
    _no_sampling_for_o1(flow, backends, source)
    return AppConfig(
        source=source,
        text=text,
        flow=flow,
        backends=backends,
        model_backends=model_backends,
        concurrency={k: v for k, v in msgspec.structs.asdict(typed.concurrency).items() if v is not None},
        queue_size=typed.store.queue_size,
        retry={k: float(v) for k, v in given(typed.retry, raw.get("retry")).items()},
        synchronous=typed.store.synchronous,
        grace_s=typed.store.grace_s,
        templates_dir=typed.templates_dir,
        prices=prices,
        logging=given(typed.logging, raw.get("logging")),
        file=typed,
    )


def _no_sampling_for_o1(flow: FlowSettings, backends: dict[str, BackendConfig], source: str) -> None:
    """An o1-class Azure deployment is sent no temperature or top_p: a stage that sets one would record
    sampling that never happened."""
    o1 = {name for b in backends.values() if b.type == "azure"
          for name, spec in (b.options.get("deployments") or {}).items()
          if isinstance(spec, dict) and is_o1(name, spec)}
    for stage in ("verifier", "ranker", "refiner", "regenerator", "summarizer", "scorer"):
        s = getattr(flow, stage)
        if s is not None and s.model in o1 and (s.temperature is not None or s.top_p is not None):
            key = "temperature" if s.temperature is not None else "top_p"
            raise ConfigError(f"{source}: [stages.{stage}] {key}: {s.model} is an o1-class deployment, which is"
                              f" sent none; remove it")


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
