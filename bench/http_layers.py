"""CPU per call of each layer of the LLM client stack over HTTP, one layer added at a time.

    .venv/bin/python bench/http_layers.py [--requests 4000] [--concurrency 64] [--rounds 3] [--out FILE] [--tree DIR]

Against ``tests/fake_llm_server.py`` in its own process (no latency, no faults), in this process,
interleaved round by round: the raw aiohttp loop of ``http_client.py`` (the ceiling), then
``OpenAICompatBackend.complete``, ``RetryingClient`` around it, and ``CachedClient`` around that (a
store in memory: the SQLite writer is not what this measures; every request a new cache key, so
every one a miss) with the per-call ``llm.call`` line written to a log file as `reasonmed run` writes
it.  Each mode sends the same generate requests (a PubMedQA question's prompt, ~2.5 KB) at the same
concurrency; CPU is ``time.process_time`` over the timed loop.  What a layer costs is its row minus
the row above.  ``--tree DIR`` imports the code from another checkout (``git archive`` of a base
commit: A/B pairs).  Not part of the test suite; see BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
_TREE = sys.argv[sys.argv.index("--tree") + 1] if "--tree" in sys.argv[:-1] else str(ROOT)
sys.path[:0] = [_TREE, str(ROOT / "bench")]

from http_bench import PUBMEDQA, _start_server  # noqa: E402

MODES = ("raw", "backend", "retry", "cache")


class MemoryStore:
    """The ``ResponseStore`` the cache writes to, in memory."""

    def __init__(self) -> None:
        self.rows: dict[str, bytes] = {}
        self.counted = 0

    async def cache_get(self, key: str) -> bytes | None:
        return self.rows.get(key)

    def cache_put(self, key, model, payload, stage, endpoint, prompt, completion) -> asyncio.Future[None]:
        self.rows[key] = payload
        return _committed()

    def count_call(self, *args) -> asyncio.Future[None]:
        self.counted += 1
        return _committed()

    async def execute(self, sql, params=()) -> None:
        pass


def _committed() -> asyncio.Future[None]:
    """A write-behind's future, as the store sets it once committed (here at once)."""
    done = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done


def _requests(n: int, questions: int) -> list:
    from agents.llm import ChatRequest
    from agents.prompts import Templates, generator_messages
    from reasonmed_async.loaders.dispatch import load_questions

    templates = Templates.load(None)
    qs = load_questions(str(PUBMEDQA), limit=questions)
    messages = [tuple(generator_messages(templates, q)) for q in qs]
    return [ChatRequest(model="bench-model", messages=messages[i % len(messages)], temperature=0.7, top_p=0.9,
                        max_tokens=8192, sample=i, meta={"task": "generate", "question_id": qs[i % len(qs)].id})
            for i in range(n)]


async def _drive(n: int, c: int, send) -> None:
    todo = iter(range(n))

    async def worker() -> None:
        for i in todo:
            await send(i)

    await asyncio.gather(*(worker() for _ in range(c)))


async def _one(mode: str, base_url: str, requests: list, c: int, log_dir: Path) -> dict:
    from bus import Backoff
    from reasonmed_async.llm.cache import CachedClient
    from reasonmed_async.llm.openai_http import OpenAICompatBackend, OpenAISettings
    from reasonmed_async.llm.retry import RetryingClient
    from reasonmed_async.logs import setup

    n = len(requests)
    if mode == "raw":
        import aiohttp

        bodies = [{"model": r.model, "max_tokens": r.max_tokens, "temperature": r.temperature, "top_p": r.top_p,
                   "messages": [{"role": m.role, "content": m.content} for m in r.messages]} for r in requests]
        url, headers = f"{base_url}/chat/completions", {"Authorization": "Bearer bench-key"}
        t0 = time.process_time()
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
            async def send(i: int) -> None:
                async with session.post(url, json=bodies[i], headers=headers) as response:
                    data = await response.json()
                assert data["choices"][0]["message"]["content"]

            await _drive(n, c, send)
        return {"cpu_s": time.process_time() - t0}
    settings = OpenAISettings.from_options({"base_url": base_url, "max_concurrency": c, "adaptive": False})
    setup.configure(log_file=log_dir / f"{mode}.db.log", secret_envs=["REASONMED_OPENAI_API_KEY"])
    t0 = time.process_time()
    backend = OpenAICompatBackend(settings, api_key="bench-key")
    client = backend
    if mode in ("retry", "cache"):
        client = RetryingClient(backend, Backoff(attempts=3, base_s=0.5, cap_s=10.0))
    if mode == "cache":
        client = CachedClient(client, MemoryStore())

    async def send(i: int) -> None:
        completion = await client.complete(requests[i])
        assert completion.text

    await _drive(n, c, send)
    await backend.aclose()
    setup.flush()
    return {"cpu_s": time.process_time() - t0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--concurrency", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", type=Path)
    ap.add_argument("--tree", default=str(ROOT), help="the checkout whose code is measured (default: this one)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        server, base_url = _start_server(work / "server.log")
        try:
            requests = _requests(args.requests, 50)
            asyncio.run(_one("raw", base_url, requests[:300], args.concurrency, work))  # warm-up
            runs = []
            for k in range(1, args.rounds + 1):
                for mode in MODES:
                    r = asyncio.run(_one(mode, base_url, requests, args.concurrency, work))
                    r.update(mode=mode, round=k, us_per_call=r["cpu_s"] * 1e6 / args.requests)
                    runs.append(r)
                    print(f"round {k} {mode:8s} {r['us_per_call']:7.1f} us CPU per call", file=sys.stderr)
        finally:
            server.terminate()
            server.wait(10)
    mean = {m: sum(r["us_per_call"] for r in runs if r["mode"] == m) / args.rounds for m in MODES}
    print("mean CPU per call: " + ", ".join(f"{m} {mean[m]:.1f} us" for m in MODES))
    print("layers: " + ", ".join(f"{b} +{mean[b] - mean[a]:.1f} us" for a, b in zip(MODES, MODES[1:])))
    if args.out:
        args.out.write_text(json.dumps({"requests": args.requests, "concurrency": args.concurrency, "runs": runs,
                                        "mean_us_per_call": mean}, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
