"""The LLM client stack's own CPU per call, the network taken out: ``CachedClient`` → ``RetryingClient`` →
``OpenAICompatBackend`` with aiohttp's ``session.post`` answered from memory.

    .venv/bin/python bench/http_stack_cpu.py [--tree DIR] [--adaptive] [--calls 5000] [--repeats 5]

What it measures is the Python work of the layers around the HTTP exchange (body building, headers,
replica choice, retry bookkeeping, the response parsed into a ``Completion``, the cache's bookkeeping
and its ``llm.call`` log line written to a file as `reasonmed run` writes it), without aiohttp's and
the kernel's share, so a few microseconds show through the noise of a loaded machine: the best of
``--repeats`` runs of ``--calls`` calls at concurrency 64, in µs of CPU per call.  Requests are
shaped like the pipeline's (a generate prompt, two in three with the verifier's JSON schema); the
cache keys are computed before the clock (``agents``' work).  ``--tree DIR`` measures another
checkout (``git archive`` of a base commit) for A/B pairs; ``--adaptive`` keeps the replica's
adaptive cap on (the default of a config).  Not part of the test suite; see BENCHMARKS.md.
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
sys.path.insert(0, _TREE)

from agents.llm import ChatMessage, ChatRequest  # noqa: E402
from bus import Backoff  # noqa: E402
from reasonmed_async.llm.cache import CachedClient  # noqa: E402
from reasonmed_async.llm.openai_http import OpenAICompatBackend, OpenAISettings  # noqa: E402
from reasonmed_async.llm.retry import RetryingClient  # noqa: E402
from reasonmed_async.logs import setup  # noqa: E402

ANSWER = json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": "m", "choices": [
    {"index": 0, "message": {"role": "assistant", "content": "Step 1: ... Final answer: A. " * 20},
     "finish_reason": "stop"}], "usage": {"prompt_tokens": 700, "completion_tokens": 120, "total_tokens": 820}}).encode()
SCHEMA = {"type": "object", "properties": {"verdict": {"type": "string", "enum": ["Correct", "Error"]},
                                           "reason": {"type": "string", "minLength": 10, "maxLength": 600}},
          "required": ["verdict", "reason"], "additionalProperties": False}


class _Answer:
    status, headers = 200, {}

    async def read(self) -> bytes:
        return ANSWER

    async def __aenter__(self) -> _Answer:
        return self

    async def __aexit__(self, *_exc: object) -> None:
        return None


class _Session:
    def post(self, url: str, data: bytes | None = None, headers: object = None) -> _Answer:
        return _Answer()

    async def close(self) -> None:
        pass


class _Store:
    async def cache_get(self, key: str) -> None:
        return None

    def cache_put(self, *_row: object) -> asyncio.Future[None]:
        return _committed()

    def count_call(self, *_row: object) -> asyncio.Future[None]:
        return _committed()


def _committed() -> asyncio.Future[None]:
    """A write-behind's future, as the store sets it once committed (here at once)."""
    done = asyncio.get_running_loop().create_future()
    done.set_result(None)
    return done

    async def execute(self, *_args: object) -> None:
        pass


def _requests(n: int) -> list[ChatRequest]:
    messages = (ChatMessage("system", "You are a careful medical expert. " * 5), ChatMessage("user", "Question: ... " * 150))
    return [ChatRequest(model="m", messages=messages, temperature=0.7, top_p=0.9, max_tokens=4096, sample=i,
                        json_schema=SCHEMA if i % 3 else None,
                        meta={"task": "verify" if i % 3 else "generate", "question_id": f"pubmedqa-{i // 20}",
                              "path": str(i % 9)}) for i in range(n)]


async def _run(n: int, adaptive: bool, log_dir: Path) -> float:
    setup.configure(log_file=log_dir / "x.db.log", secret_envs=["HOME"])
    options = {"base_url": "http://127.0.0.1:9/v1", "max_concurrency": 64, "adaptive": adaptive}
    backend = OpenAICompatBackend(OpenAISettings.from_options(options), api_key="bench-key")
    await backend._session.close()
    backend._session = _Session()  # type: ignore[assignment]
    client = CachedClient(RetryingClient(backend, Backoff(attempts=3, base_s=0.5, cap_s=10.0)), _Store())
    requests = _requests(n)
    for r in requests:
        r.cache_key()
    todo = iter(requests)

    async def worker() -> None:
        for r in todo:
            await client.complete(r)

    t0 = time.process_time()
    await asyncio.gather(*(worker() for _ in range(64)))
    return (time.process_time() - t0) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tree", default=str(ROOT))
    ap.add_argument("--adaptive", action="store_true")
    ap.add_argument("--calls", type=int, default=5000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        best = min(asyncio.run(_run(args.calls, args.adaptive, Path(tmp))) for _ in range(args.repeats))
    print(f"{best:.1f} us CPU per call (best of {args.repeats} x {args.calls}), tree {args.tree}")


if __name__ == "__main__":
    main()
