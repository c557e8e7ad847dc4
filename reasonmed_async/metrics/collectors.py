"""Metrics read at scrape time from state the pipeline keeps anyway: nothing is updated per message.

- ``BusCollector``: per consumer (agent), the messages queued, the handlers in flight, the messages
  handled and failed (``MessageBus.queue_depths`` / ``stats``).
- ``CacheCollector``: per model, calls answered by the response cache or by an identical call in
  flight, and calls that went to the retry layer (``CachedClient``'s counters).
- ``ReplicaCollector``: per replica of an OpenAI-compatible backend, requests outstanding, the
  adaptive concurrency cap, and whether it is ejected (``replica_stats``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from bus import MessageBus
from reasonmed_async.metrics.labels import endpoint_label


class BusCollector(Collector):
    def __init__(self, bus: MessageBus) -> None:
        self._bus = bus

    def collect(self) -> Iterator[Metric]:
        depth = GaugeMetricFamily("reasonmed_bus_queue_depth", "Messages waiting in a consumer's queue",
                                  labels=["consumer"])
        in_flight = GaugeMetricFamily("reasonmed_bus_in_flight", "Messages a consumer's handlers are working on",
                                      labels=["consumer"])
        handled = CounterMetricFamily("reasonmed_bus_handled", "Messages a consumer has handled (failed included)",
                                      labels=["consumer"])
        failed = CounterMetricFamily("reasonmed_bus_failed", "Messages whose handler ended in a StageFailed",
                                     labels=["consumer"])
        depths = self._bus.queue_depths()
        for name, stats in sorted(self._bus.stats.items()):
            depth.add_metric([name], depths.get(name, 0))
            in_flight.add_metric([name], stats.in_flight)
            handled.add_metric([name], stats.handled)
            failed.add_metric([name], stats.failed)
        yield from (depth, in_flight, handled, failed)


class CacheCollector(Collector):
    """``clients``: model -> its ``CachedClient`` (anything else is skipped)."""

    def __init__(self, clients: Mapping[str, Any]) -> None:
        self._clients = clients

    def collect(self) -> Iterator[Metric]:
        answered = CounterMetricFamily(
            "reasonmed_llm_cache_lookups", "Calls looked up in the response cache: hit (answered from the store),"
            " shared (by an identical call in flight), miss (sent to the backend)", labels=["model", "result"])
        for model, client in sorted(self._clients.items()):
            if not all(hasattr(client, a) for a in ("hits", "shared", "misses")):
                continue
            for result, value in (("hit", client.hits), ("shared", client.shared), ("miss", client.misses)):
                answered.add_metric([model, result], value)
        yield answered


class ReplicaCollector(Collector):
    """``backends``: name -> backend; those with ``replica_stats()`` (OpenAI-compatible) are read."""

    def __init__(self, backends: Callable[[], Iterable[Any]]) -> None:
        self._backends = backends

    def collect(self) -> Iterator[Metric]:
        outstanding = GaugeMetricFamily("reasonmed_replica_outstanding", "Requests in flight to a replica",
                                        labels=["endpoint"])
        cap = GaugeMetricFamily("reasonmed_replica_concurrency_cap",
                                "A replica's concurrency cap (adaptive: lowered while its latency rises)",
                                labels=["endpoint"])
        ejected = GaugeMetricFamily("reasonmed_replica_ejected", "1 while a replica is ejected (cooling off)",
                                    labels=["endpoint"])
        for backend in self._backends():
            stats = getattr(backend, "replica_stats", None)
            for replica in stats() if stats is not None else ():
                where = endpoint_label(str(replica["url"]))
                outstanding.add_metric([where], float(replica["outstanding"]))  # type: ignore[arg-type]
                cap.add_metric([where], float(replica["cap"]))  # type: ignore[arg-type]
                ejected.add_metric([where], 1.0 if replica["ejected"] else 0.0)
        yield from (outstanding, cap, ejected)
