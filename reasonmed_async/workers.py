"""How many worker tasks each agent runs: enough to keep the endpoints it calls full.

A worker handles one message at a time, so a stage can have at most its workers times the calls one
message makes in flight (the generator: one call per path, nine by default; every other LLM stage: one).
With the agents' fixed defaults (generator 4, verifier 16, the others 8) a run kept about 36 generations in
flight whatever the endpoint admitted: against a vLLM server taking 256 requests at once, most of its
batch sat empty (measured: 72 calls/s at 0.5 s a call, 36 in flight, with 64 admitted).

So an LLM stage that ``[concurrency]`` does not name gets enough workers to fill, on its own, every
endpoint its models are served from (never fewer than its default, at most ``MAX_WORKERS``):

- an OpenAI-compatible backend admits ``max_concurrency`` per URL (default ``max_num_seqs x replicas``,
  else 64), times its URLs;
- vLLM in process: its engine's ``max_num_seqs`` (``engine_args``; vLLM's default 256 otherwise);
- an Azure deployment: what its quota lets through in ``AZURE_CALL_S`` seconds (``rpm`` per ``window_s``);
- the simulator has no limit to fill: the defaults stand.

The tierer (no LLM call) gets as many workers as the verifier, unless ``[concurrency]`` names it.

Oversubscribing is safe: the backend's own limiter (its concurrency cap, adaptive or not, or the Azure
token bucket) decides what goes on the wire; extra workers only wait there, holding one message each.
Pure arithmetic on the configuration, so ``run``, ``resume`` and the daemon's reload size alike.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Mapping
from typing import Any

from agents.flow import DEFAULT_WORKERS
from agents.settings import Sampling

from reasonmed_async.config import AppConfig, BackendConfig

MAX_WORKERS = 4096  # per agent: ~16 vLLM replicas at 256 sequences each
VLLM_MAX_NUM_SEQS = 256  # vLLM's default ``max_num_seqs``
AZURE_CALL_S = 30.0  # the longest call a quota should be able to keep full (an o1-class rewrite)


def endpoint_slots(backend: BackendConfig, model: str) -> int | None:
    """Requests ``backend`` serves ``model`` at once, from its (load-time validated) settings; None: no limit."""
    options = backend.options
    if backend.type == "openai":
        from reasonmed_async.llm.openai_settings import OpenAISettings

        settings = OpenAISettings.from_options(options)
        return settings.policy.max_concurrency * len(settings.base_urls)
    if backend.type == "vllm":
        engine_args: Mapping[str, Any] = options.get("engine_args") or {}
        return int(engine_args.get("max_num_seqs", VLLM_MAX_NUM_SEQS))
    if backend.type == "azure":
        from reasonmed_async.llm.azure_openai import AzureSettings

        deployment = AzureSettings.from_options(options).deployments.get(model)
        return None if deployment is None else math.ceil(deployment.rpm * AZURE_CALL_S / deployment.window_s)
    return None


def calls_per_message(config: AppConfig) -> dict[str, Counter[str]]:
    """Per LLM agent, the calls one message it handles makes, per served model."""
    flow = config.flow
    generate: Counter[str] = Counter()
    for g in flow.generators:
        generate[g.model] += len(g.temperatures)

    def one(sampling: Sampling | None) -> Counter[str]:
        return Counter() if sampling is None else Counter({sampling.model: 1})

    return {"generator": generate, "verifier": one(flow.verifier), "reverify": one(flow.verifier),
            "ranker": one(flow.ranker), "refiner": one(flow.refiner), "retry": one(flow.refiner),
            "regenerator": one(flow.regenerator), "summarizer": one(flow.summarizer), "scorer": one(flow.scorer)}


def worker_counts(config: AppConfig) -> dict[str, int]:
    """Workers per agent: ``[concurrency]`` as given, and a size for each LLM agent it does not name whose
    endpoints need more than the agent's default to be kept full."""
    sized: dict[str, int] = {}
    for agent, calls in calls_per_message(config).items():
        if agent in config.concurrency:
            continue
        per_endpoint: Counter[tuple[str, str]] = Counter()  # a server's slots are shared by the models it serves;
        for model, n in calls.items():                      # an Azure quota is a deployment's own
            name = config.model_backends.get(model, "")
            backend = config.backends.get(name)
            if backend is not None:
                per_endpoint[(name, model if backend.type == "azure" else "")] += n
        need = []
        for (name, model), n in per_endpoint.items():
            slots = endpoint_slots(config.backends[name], model)
            if slots:
                need.append(math.ceil(slots / n))
        workers = min(MAX_WORKERS, max(need, default=0))
        if workers > DEFAULT_WORKERS.get(agent, 8):
            sized[agent] = workers
    counts = {**sized, **config.concurrency}
    # The tierer makes no call, but each verdict waits on two commits (the join, its ack): fewer workers than
    # the verifier's and their queue fills, the verifiers wait to deliver, the generators behind them too.
    verifier = counts.get("verifier", DEFAULT_WORKERS["verifier"])
    if "tierer" not in config.concurrency and verifier > DEFAULT_WORKERS["tierer"]:
        counts["tierer"] = verifier
    return counts
