"""Fake OpenAI-compatible replicas for the capacity benchmark: one process serving ``--replicas`` ports.

    python bench/capacity_fakes.py --replicas 16 --questions Q.jsonl --time-scale 4 --seqs-per-replica 125

Prints ``PORTS p1,p2,...`` once listening on 127.0.0.1.  Each answer waits the latency
``capacity_model`` gives for its stage's drawn output length (scaled down by ``--time-scale``), then
returns the text real models write (``capacity_text``): CoTs of ~3 KB in three styles, judge JSON
(bare or fenced) from ``tests/fake_llm_server.answer``'s verdict logic, padded summaries.  A question's
generators are right with a per-question probability drawn from Beta(``--alpha``, ``--beta``), so
questions spread over the tiers.  ``GET /stats`` returns the counts: calls and tokens per stage,
requests in flight (time-integrated per second), replicas' shares.  Keeps no request bodies.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import re
import socket
import sys
import time
from collections import Counter, defaultdict
from pathlib import Path

from aiohttp import web

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from capacity_model import BYTES_PER_TOKEN, Serving, draw_tokens, latency_s  # noqa: E402
from capacity_text import cot, judge_text, padded_summary, stage_of  # noqa: E402
from fake_llm_server import answer  # noqa: E402

_STEM = re.compile(r"Question: (.*)")
STEM_KEY = 120


def _seed(*parts: object) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=8).digest(), "big")


class Replicas:
    def __init__(self, golds: dict[str, str], serving: Serving, time_scale: float, alpha: float, beta: float,
                 seed: int) -> None:
        self.golds, self.serving, self.time_scale = golds, serving, time_scale
        self.alpha, self.beta, self.seed = alpha, beta, seed
        self.t0 = time.monotonic()
        self.last = self.t0
        self.in_flight = self.max_in_flight = 0
        self.area: list[float] = []  # request-seconds in flight, per second since start
        self.done: list[int] = []  # calls answered, per second since start
        self.calls: Counter[str] = Counter()
        self.out_tokens: Counter[str] = Counter()
        self.prompt_tokens: Counter[str] = Counter()
        self.out_bytes: Counter[str] = Counter()
        self.truncated = self.gold_misses = 0
        self.per_port: Counter[int] = Counter()
        self.first = self.last_done = None

    def _advance(self, now: float) -> None:
        """Add the requests in flight since the last change to each whole second's area.  In seconds since
        ``t0``: ``int(t) <= t < int(t) + 1`` holds exactly, so every step moves on (absolute times would
        round ``t0 + b + 1`` onto ``t`` now and then and never leave the loop)."""
        t, until = self.last - self.t0, now - self.t0
        while t < until:
            b = int(t)
            self.area.extend([0.0] * (b + 1 - len(self.area)))
            end = min(until, b + 1.0)
            self.area[b] += self.in_flight * (end - t)
            t = end
        self.last = max(self.last, now)

    def _letter(self, prompt: str, body: dict, options: list[str]) -> str:
        stem = m.group(1)[:STEM_KEY] if (m := _STEM.search(prompt)) else ""
        gold = self.golds.get(stem)
        letters = options or ["A", "B", "C", "D"]
        if gold is None:
            self.gold_misses += 1
            return letters[_seed(self.seed, prompt) % len(letters)]
        p_right = random.Random(_seed(self.seed, stem)).betavariate(self.alpha, self.beta)
        path_rng = random.Random(_seed(self.seed, stem, body.get("model"), body.get("temperature"),
                                       json.dumps(body.get("seed"))))
        if path_rng.random() < p_right:
            return gold
        return path_rng.choice([x for x in letters if x != gold] or letters)

    def compose(self, body: dict, raw: bytes) -> tuple[str, str, int, int, bool]:
        """(stage, text, prompt tokens, output tokens, truncated) for one request."""
        users = [str(m.get("content", "")) for m in body.get("messages", []) if m.get("role") == "user"]
        prompt = users[-1] if users else ""
        stage = stage_of(prompt)
        rng = random.Random(_seed(self.seed, hashlib.blake2b(raw, digest_size=16).hexdigest()))
        prompt_tokens = sum(len(str(m.get("content", ""))) for m in body["messages"]) // BYTES_PER_TOKEN + 1
        if stage == "ping":
            return stage, "OK", prompt_tokens, 1, False
        tokens, cut = draw_tokens(stage, rng, 0)
        model = str(body.get("model", ""))
        if stage in ("generate", "refine", "regenerate"):
            said = prompt.split("Work through", 1)[0]
            options = sorted(dict(re.findall(r"^([A-J])\) (.*)$", said, re.M)))
            if stage == "generate":
                letter = self._letter(prompt, body, options)
            else:  # a rewrite is given the correct answer and reaches it
                letter = m.group(1) if (m := re.search(r"^Correct answer:\s*([A-J])\)", said, re.M)) else "A"
            text = cot(prompt, letter, model, tokens * BYTES_PER_TOKEN, rng)
        elif stage == "summarize":
            text = padded_summary(answer(prompt)[1], tokens * BYTES_PER_TOKEN, rng)
        else:
            text = judge_text(answer(prompt, seed=body.get("seed"))[1], rng)
            tokens = len(text) // BYTES_PER_TOKEN + 1
        if cut:
            text = text[: tokens * BYTES_PER_TOKEN]
        return stage, text, prompt_tokens, tokens, cut

    async def chat(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        body = json.loads(raw)
        stage, text, prompt_tokens, tokens, cut = self.compose(body, raw)
        delay = 0.0 if stage == "ping" else latency_s(self.serving, prompt_tokens, tokens, self.time_scale)
        now = time.monotonic()
        counted = stage != "ping"
        if counted:
            self._advance(now)
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            self.first = now if self.first is None else self.first
        try:
            await asyncio.sleep(delay)
        finally:
            if counted:
                self._advance(time.monotonic())
                self.in_flight -= 1
        if counted:
            self.last_done = time.monotonic()
            second = int(self.last_done - self.t0)
            self.done.extend([0] * (second + 1 - len(self.done)))
            self.done[second] += 1
            self.calls[stage] += 1
            self.out_tokens[stage] += tokens
            self.prompt_tokens[stage] += prompt_tokens
            self.out_bytes[stage] += len(text.encode())
            self.truncated += cut
            self.per_port[request.transport.get_extra_info("sockname")[1]] += 1
        usage = {"prompt_tokens": prompt_tokens, "completion_tokens": tokens, "total_tokens": prompt_tokens + tokens}
        data = {"id": f"chatcmpl-{_seed(raw)}", "object": "chat.completion", "created": int(time.time()),
                "model": body.get("model"), "usage": usage,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                             "finish_reason": "length" if cut else "stop"}]}
        return web.json_response(data)

    async def models(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"object": "list", "data": []})  # lists nothing: any model is served

    async def stats(self, request: web.Request) -> web.StreamResponse:
        self._advance(time.monotonic())
        rel = (lambda t: None if t is None else t - self.t0)
        return web.json_response({
            "calls": dict(self.calls), "output_tokens": dict(self.out_tokens),
            "prompt_tokens": dict(self.prompt_tokens), "output_bytes": dict(self.out_bytes),
            "truncated": self.truncated, "gold_misses": self.gold_misses, "max_in_flight": self.max_in_flight,
            "in_flight_area": self.area, "done_per_s": self.done, "t0_monotonic": self.t0, "first_s": rel(self.first), "last_s": rel(self.last_done),
            "per_port": {str(k): v for k, v in self.per_port.items()}})


def load_golds(path: Path) -> dict[str, str]:
    golds = {}
    with path.open(encoding="utf-8") as f:
        for line in f:
            q = json.loads(line)
            golds[q["question"][:STEM_KEY]] = q["answer"]
    return golds


async def serve(args: argparse.Namespace) -> None:
    serving = Serving(args.replica_tok_s, args.prefill_tok_s, args.seqs_per_replica)
    fakes = Replicas(load_golds(Path(args.questions)), serving, args.time_scale, args.alpha, args.beta, args.seed)
    app = web.Application(client_max_size=64 * 2 ** 20)
    app.router.add_post("/v1/chat/completions", fakes.chat)
    app.router.add_get("/v1/models", fakes.models)
    app.router.add_get("/health", lambda r: web.Response(status=200))
    app.router.add_get("/stats", fakes.stats)
    runner = web.AppRunner(app, access_log=None, handler_cancellation=True)
    await runner.setup()
    ports = []
    for _ in range(args.replicas):
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        await web.SockSite(runner, sock, backlog=4096).start()
        ports.append(sock.getsockname()[1])
    print("PORTS " + ",".join(map(str, ports)), flush=True)
    try:
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--replicas", type=int, default=16)
    p.add_argument("--questions", required=True, help="the JSONL the run reads (for the gold answers)")
    p.add_argument("--time-scale", type=float, default=4.0)
    p.add_argument("--replica-tok-s", type=float, default=Serving.replica_tok_s)
    p.add_argument("--prefill-tok-s", type=float, default=Serving.prefill_tok_s)
    p.add_argument("--seqs-per-replica", type=int, default=Serving.seqs_per_replica)
    p.add_argument("--alpha", type=float, default=2.0)
    p.add_argument("--beta", type=float, default=0.8)
    p.add_argument("--seed", type=int, default=14)
    try:
        asyncio.run(serve(p.parse_args()))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
