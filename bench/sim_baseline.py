"""The CPU cost of the simulated LLM itself, per call, in the pipeline's call mix.

For a sample of the questions it builds the requests each stage makes, with
the same prompt builders, sampling and ``meta`` as the agents (generate on all
nine paths; verify each resulting CoT; rank the correct ones; refine,
regenerate and summarize), then times ``SimClient.complete`` over each stage's
requests.  Request building and the request's cache key (which the runtime's
response cache computes anyway, before the backend sees the request) are done
before the clock starts, so the baseline is the simulator's own work only;
the runtime is charged for everything else.  The per-call figure is the mean
of the per-stage figures weighted by the pipeline's stage counts (``calls``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence

from agents.calls import request
from agents.parsing import split_thinking, stated_answer
from agents.prompts import (RANKING_SCHEMA, VERDICT_SCHEMA, Templates, generator_messages, ranker_messages,
                            refiner_messages, regenerator_messages, summarizer_messages,
                            verifier_messages)
from bus import LETTERS, Judgement, Path, Question
from reasonmed_async.config import AppConfig
from reasonmed_async.llm.sim import SimClient, SimSettings


def _requests(cfg: AppConfig, questions: Sequence[Question], sim: SimClient) -> dict[str, list]:
    flow, tpl = cfg.flow, Templates.load(cfg.templates_dir)
    pools: dict[str, list] = {k: [] for k in ("generate", "verify", "rank", "refine", "regenerate", "summarize")}

    async def build() -> None:
        for q in questions:
            letters = LETTERS[: len(q.options)]
            paths: list[Path] = []
            for g in flow.generators:
                for i, (name, sampling) in enumerate(g.paths(), 1):
                    req = request(sampling, generator_messages(tpl, q), sample=i,
                                  meta={"task": "generate", "gold": q.answer_letter, "letters": letters,
                                        "question_id": q.id})
                    pools["generate"].append(req)
                    c = await sim.complete(req)
                    if c.truncated:
                        continue
                    _, visible = split_thinking(c.text)
                    paths.append(Path(name=name, cot=visible, stated_answer=stated_answer(visible, q.options)))
            for p in paths:
                pools["verify"].append(request(
                    flow.verifier, verifier_messages(tpl, q, p.cot), schema=VERDICT_SCHEMA,
                    meta={"task": "verify", "gold": q.answer_letter, "stated": p.stated_answer or "",
                          "question_id": q.id}))
            right = [p for p in paths if p.stated_answer == q.answer_letter] or paths
            wrong = [Judgement(path=p.name, verdict="Error", reason="The path misattributes the mechanism; "
                               f"it concludes {p.stated_answer} against the findings.")
                     for p in paths if p not in right]
            if len(right) >= 2:
                pools["rank"].append(request(flow.ranker, ranker_messages(tpl, q, right), schema=RANKING_SCHEMA,
                                             meta={"task": "rank", "paths": ",".join(p.name for p in right),
                                                   "question_id": q.id}))
            if right:
                rw = {"gold": q.answer_letter, "letters": letters, "question_id": q.id}
                pools["refine"].append(request(flow.refiner, refiner_messages(tpl, q, right[0].cot, wrong), sample=1,
                                               meta={"task": "refine", "path": right[0].name, **rw}))
                pools["regenerate"].append(request(flow.regenerator, regenerator_messages(tpl, q, wrong), sample=1,
                                                   meta={"task": "regenerate", "path": "regen_1", **rw}))
            for p in right[:2]:
                pools["summarize"].append(request(flow.summarizer, summarizer_messages(tpl, q, p.cot),
                                                  meta={"task": "summarize", "stated": p.stated_answer or "",
                                                        "question_id": q.id}))

    asyncio.run(build())
    for pool in pools.values():
        for req in pool:
            req.cache_key()  # computed by the runtime's cache before the backend runs
    return pools


def _time_pool(sim: SimClient, pool: list, repeats: int) -> float:
    """Least CPU seconds per call over ``repeats`` passes of the pool."""
    async def one_pass() -> float:
        c0 = time.process_time()
        for req in pool:
            await sim.complete(req)
        return time.process_time() - c0

    async def passes() -> list[float]:
        return [await one_pass() for _ in range(repeats)]

    return min(asyncio.run(passes())) / len(pool)


def sim_cost(cfg: AppConfig, questions: Sequence[Question], stage_calls: Mapping[str, int],
             *, sample: int = 300, repeats: int = 3) -> dict:
    """Per-stage and mix-weighted CPU ms per ``SimClient.complete`` call."""
    backend = next(b for b in cfg.backends.values() if b.type == "sim")
    sim = SimClient(SimSettings.from_mapping(backend.options))
    step = max(1, len(questions) // sample)
    pools = _requests(cfg, questions[::step][:sample], sim)
    per_stage = {stage: _time_pool(sim, pool, repeats) * 1e3 for stage, pool in pools.items() if pool}
    fallback = sum(per_stage[s] * len(pools[s]) for s in per_stage) / sum(len(pools[s]) for s in per_stage)
    total = sum(stage_calls.values())
    weighted = sum(n * per_stage.get(stage, fallback) for stage, n in stage_calls.items()) / total if total else fallback
    return {"ms_per_call": weighted, "per_stage_ms": per_stage,
            "requests_timed": {s: len(p) for s, p in pools.items()}, "questions_sampled": len(questions[::step][:sample]),
            "repeats": repeats, "unmatched_stages": sorted(set(stage_calls) - set(per_stage))}
