"""The ReasonMed flow as subscriptions: which agent consumes what.

    generator ─CoTGenerated→ verifier ─Verdict/StageFailed→ tierer ─TierAssigned→
      easy/medium → ranker ─Ranked→ easy: summarizer / medium: refiner
      difficult   → regenerator
    refiner / regenerator ─Refined→ reverify-1 ─Verdict(Error)→ retry-1 ─Refined→ reverify-2 …
    reverify-k ─Verdict(Correct)→ summarizer ─Summarized→ assembler ─RecordReady→ scorer

Re-verification and its retry are unrolled, one subscription per attempt, so
the graph of queues stays acyclic and back-pressure cannot deadlock.
"""

from __future__ import annotations

from collections.abc import Callable

from bus import (
    Backoff,
    CoTGenerated,
    Message,
    QuestionIngested,
    Ranked,
    RecordReady,
    Stage,
    Refined,
    StageFailed,
    Subscription,
    Summarized,
    TierAssigned,
    Verdict,
)

from .generator import Generator
from .llm import LLMClient
from .ports import JoinState
from .prompts import Templates
from .ranker import Ranker
from .rewrite import Rewriter
from .scorer import Scorer
from .settings import FlowSettings
from .summarizer import Assembler, Summarizer
from .tierer import Tierer, is_first_pass
from .verifier import Verifier


def _tier(*tiers: str) -> Callable[[Message], bool]:
    return lambda m: getattr(m, "tier", None) in tiers


def _attempt(k: int, verdict: str | None = None) -> Callable[[Message], bool]:
    def accepts(m: Message) -> bool:
        return getattr(m, "attempt", None) == k and (verdict is None or getattr(m, "verdict", None) == verdict)
    return accepts


def _final(settings: FlowSettings) -> Callable[[Message], bool]:
    def accepts(m: Message) -> bool:
        if isinstance(m, Ranked):
            return m.tier == "easy"
        if isinstance(m, Refined):
            return not settings.reverify
        return isinstance(m, Verdict) and m.attempt >= 1 and m.verdict == "Correct"
    return accepts


_STAGES = {"generator": Stage.GENERATE, "verifier": Stage.VERIFY, "tierer": Stage.TIER, "ranker": Stage.RANK,
           "refiner": Stage.REFINE, "regenerator": Stage.REGENERATE, "summarizer": Stage.SUMMARIZE,
           "assembler": Stage.ASSEMBLE, "reverify": Stage.REVERIFY, "retry": Stage.REFINE, "scorer": Stage.SCORE}


#: worker tasks per agent when ``[concurrency]`` does not say (``reasonmed_async/sizing.py`` raises an LLM stage's
#: to keep its endpoints full); any agent not listed: 8
DEFAULT_WORKERS = {"generator": 4, "verifier": 16, "tierer": 16, "assembler": 2}


def build_subscriptions(
    clients: dict[str, LLMClient],
    join: JoinState,
    settings: FlowSettings,
    templates: Templates,
    *,
    concurrency: dict[str, int] | None = None,
    queue_size: int = 64,
    backoff: Backoff | None = None,
) -> list[Subscription]:
    conc = concurrency or {}
    backoff = backoff or Backoff()
    verifier = Verifier(clients, settings, templates)
    rewriter = Rewriter(clients, settings, templates)

    def sub(name: str, topics: tuple[type[Message], ...], handler, accepts=None) -> Subscription:
        extra = {"accepts": accepts} if accepts is not None else {}
        agent = name.split("-")[0]
        return Subscription(name=name, topics=topics, handler=handler,
                            concurrency=conc.get(agent, DEFAULT_WORKERS.get(agent, 8)),
                            queue_size=queue_size, backoff=backoff, stage=_STAGES[name.split("-")[0]], **extra)

    subs = [
        sub("generator", (QuestionIngested,), Generator(clients, settings, templates).handle),
        sub("verifier", (CoTGenerated,), verifier.handle),
        sub("tierer", (Verdict, StageFailed), Tierer(join, settings).handle, is_first_pass),
        sub("ranker", (TierAssigned,), Ranker(clients, settings, templates).handle, _tier("easy", "medium")),
        sub("refiner", (Ranked,), rewriter.refine, _tier("medium")),
        sub("regenerator", (TierAssigned,), rewriter.regenerate, _tier("difficult")),
        sub("summarizer", (Ranked, Refined, Verdict), Summarizer(clients, settings, templates).handle, _final(settings)),
        sub("assembler", (Summarized,), Assembler(settings.gates).handle),
    ]
    if settings.reverify:
        for k in range(1, settings.refine_attempts + 1):
            subs.append(sub(f"reverify-{k}", (Refined,), verifier.handle, _attempt(k)))
            if k < settings.refine_attempts:
                subs.append(sub(f"retry-{k}", (Verdict,), rewriter.retry, _attempt(k, "Error")))
    if settings.scorer is not None and settings.score_rate > 0:
        scorer = Scorer(clients, settings, templates)
        subs.append(sub("scorer", (RecordReady,), scorer.handle, scorer.accepts))
    return subs

