"""The CPU the Prometheus metrics add per LLM call, and per scrape (not part of the test suite).

    .venv/bin/python bench/metrics_overhead.py [--calls 200000]

Measured with the real objects the daemon wires (``CallMetrics`` on its own
registry): ``succeeded`` (one completed call: a request counter, the latency
histogram, two token counters, the cost), ``failed`` (one failed attempt), and the
whole wrapper path (``metered`` client + the observer tee) against the same
client without them, in a running event loop.  A scrape is timed with the label
children of a large run (every stage x 6 models x 4 endpoints, all outcomes).
Each figure is the median of 5 repetitions, in process CPU time.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Callable

from prometheus_client import CollectorRegistry

from agents.llm import ChatMessage, ChatRequest, Completion, ServerError
from bus.vocabulary import Stage
from reasonmed_async.metrics.calls import CallMetrics
from reasonmed_async.metrics.registry import Metrics

REQUEST = ChatRequest(model="Qwen/Qwen2.5-72B-Instruct", messages=(ChatMessage("user", "Which enzyme ...?"),),
                      temperature=0.7, meta={"task": "generate", "question_id": "pubmedqa-21645374"})
ANSWER = Completion(text="1. Restate ... Final answer: B", prompt_tokens=812, completion_tokens=377, latency_s=3.2,
                    endpoint="http://gpu-3:8000/v1", backend="openai")
ERROR = ServerError("http://gpu-3:8000/v1: HTTP 503: overloaded", status=503).at("http://gpu-3:8000/v1")


def cost(model: str, prompt: int, completion: int) -> float:
    return (prompt * 0.6 + completion * 2.4) / 1e6


def median_us(run: Callable[[], None], calls: int) -> float:
    times = []
    for _ in range(5):
        start = time.process_time()
        run()
        times.append((time.process_time() - start) / calls * 1e6)
    return statistics.median(times)


class Answers:
    async def complete(self, _: ChatRequest) -> Completion:
        return ANSWER


class NoObserver:
    async def attempt_failed(self, request: ChatRequest, error: Exception) -> None:
        return None

    async def circuit_opened(self, model: str, endpoint: str, error: str) -> None:
        return None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200_000)
    n = parser.parse_args().calls
    metrics = CallMetrics(CollectorRegistry(), cost)

    def succeeded() -> None:
        for _ in range(n):
            metrics.succeeded(REQUEST, ANSWER)

    def failed() -> None:
        for _ in range(n):
            metrics.failed(REQUEST, ERROR)

    bare, metered = Answers(), metrics.metered(Answers(), REQUEST.model)
    quiet, tee = NoObserver(), metrics.observing(NoObserver())

    def through(client: object, observer: object) -> Callable[[], None]:
        async def loop() -> None:
            for _ in range(n):
                await client.complete(REQUEST)  # type: ignore[attr-defined]
                await observer.attempt_failed(REQUEST, ERROR)  # type: ignore[attr-defined]
        return lambda: asyncio.run(loop())

    big = Metrics(cost)
    for stage in Stage:
        for m in range(6):
            for e in range(4):
                request = ChatRequest(model=f"model-{m}", messages=REQUEST.messages, meta={"task": str(stage)})
                big.calls.succeeded(request, Completion(text="x", latency_s=1.0, endpoint=f"http://gpu-{e}:8000/v1"))
                big.calls.failed(request, ServerError("503", status=503).at(f"http://gpu-{e}:8000/v1"))
    scrape_runs = 50

    def scrape() -> None:
        for _ in range(scrape_runs):
            big.render()

    rows = {
        "succeeded (one completed call)": median_us(succeeded, n),
        "failed (one failed attempt)": median_us(failed, n),
        "bare client + observer, per call": median_us(through(bare, quiet), n),
        "metered client + tee, per call": median_us(through(metered, tee), n),
    }
    rows["added by the wrapper path"] = (rows["metered client + tee, per call"]
                                         - rows["bare client + observer, per call"])
    body, _ = big.render()
    for name, us in rows.items():
        print(f"{name:40s} {us:8.2f} us")
    print(f"{'scrape (' + str(len(body)) + ' bytes)':40s} {median_us(scrape, scrape_runs) / 1000:8.2f} ms")


if __name__ == "__main__":
    main()
