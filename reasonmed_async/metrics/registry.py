"""``Metrics``: the app's own Prometheus registry (never the process-global one) and its text exposition.

The daemon creates one and hands it to ``Pipeline.open``, which wires
``calls`` into the LLM clients and ``watch`` the bus, the cache and the
replica pools; ``GET /metrics`` renders it.  A run without it pays nothing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, disable_created_metrics
from prometheus_client.exposition import choose_encoder

from reasonmed_async.metrics.calls import CallMetrics, Cost
from reasonmed_async.metrics.collectors import BusCollector, CacheCollector, ReplicaCollector

if TYPE_CHECKING:
    from reasonmed_async.pipeline import Pipeline


class Metrics:
    def __init__(self, cost: Cost) -> None:
        disable_created_metrics()  # no ``*_created`` series beside every counter: half the series, nothing lost
        self.registry = CollectorRegistry(auto_describe=True)
        self.calls = CallMetrics(self.registry, cost)

    def watch(self, pipeline: Pipeline) -> None:
        """Read the pipeline's bus, cache and replica pools at every scrape."""
        self.registry.register(BusCollector(pipeline.bus))
        self.registry.register(CacheCollector(pipeline.clients))
        self.registry.register(ReplicaCollector(lambda: pipeline.backends.values()))

    def render(self, accept: str | None = None) -> tuple[bytes, str]:
        """The exposition and its content type: OpenMetrics if ``accept`` asks for it, else the text format."""
        encoder, content_type = choose_encoder(accept or "")
        return encoder(self.registry), content_type
