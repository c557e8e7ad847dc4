"""The capacity benchmark's arithmetic (pure): how long a served 70B model takes to answer each stage's
request, and what the paper-scale run costs in wall time and GPU-hours.

**Serving assumption** (state it with every figure): one replica of a 70B model = 4 x H100 (tensor
parallel 4, FP8) decoding ``REPLICA_TOK_S`` = 2,616 output tokens/s in aggregate at batch 64 —
TensorRT-LLM's published figure for LLaMA 70B, 4 x H100 FP8, 128 tokens in / 2,048 out
(`docs/source/performance.md`, release 0.5.0); vLLM >= 0.6 is in the same range on the same
hardware.  Prefill at ``PREFILL_TOK_S`` = 20,000 tokens/s per replica (an assumption: a few times the
decode rate, of the order of published 70B prefill figures on 8 x A100 ~ 4 x H100).  A request's
latency is ``ttft + tokens / per_sequence_rate`` with ``per_sequence_rate = replica rate / sequences
in flight on the replica`` (continuous batching shares the decode steps), ``ttft = 0.2 s + prompt
tokens / prefill rate``.  The benchmark divides every latency by ``time_scale``.

**Output lengths** (tokens, ~4 bytes of text each): a generator's CoT is lognormal, median 650
(~2.6 KB) and sigma 0.7 (mean ~830 tokens ~ 3.3 KB; about 1 in 7,000 reaches the 8,192 cap and comes
back ``finish_reason = length``); a refined or regenerated CoT median 800, sigma 0.5; a summary median
200, sigma 0.35 (ResponseMed's mean response is ~225 tokens, SPEC); a judge's JSON is as long as its
text.  Paper figures (SPEC): 194,925 questions, nine paths each (1.75 M paths).
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass

PAPER_QUESTIONS = 194_925
PAPER_PATHS = PAPER_QUESTIONS * 9  # 1,754,325: "1.75 M in all" (SPEC 1.1)
ISSUE_CALLS = 2_400_000  # issue 14's "about 2.4 M LLM calls" (see the report: the pipeline makes more)
REPLICA_TOK_S = 2616.0
GPUS_PER_REPLICA = 4
PREFILL_TOK_S = 20_000.0
TTFT_BASE_S = 0.2
BYTES_PER_TOKEN = 4
MAX_TOKENS = 8192


@dataclass(frozen=True)
class Lengths:
    """Output tokens of one stage: lognormal (median, sigma), at most ``cap``; median 0: the text's own length."""

    median: float
    sigma: float
    cap: int = MAX_TOKENS


STAGE_LENGTHS: dict[str, Lengths] = {
    "generate": Lengths(650, 0.7),
    "refine": Lengths(800, 0.5),
    "regenerate": Lengths(800, 0.5),
    "summarize": Lengths(200, 0.35, 1024),
    "verify": Lengths(0, 0), "rank": Lengths(0, 0), "score": Lengths(0, 0), "ping": Lengths(0, 0),
}


def lognormal_mean(lengths: Lengths) -> float:
    """The mean of the uncapped lognormal: median * exp(sigma^2 / 2)."""
    return lengths.median * math.exp(lengths.sigma ** 2 / 2)


def draw_tokens(stage: str, rng: random.Random, text_tokens: int) -> tuple[int, bool]:
    """(output tokens, truncated) for one answer of ``stage``; judges answer ``text_tokens`` (their text's)."""
    lengths = STAGE_LENGTHS[stage]
    if lengths.median <= 0:
        return max(1, text_tokens), False
    n = int(round(rng.lognormvariate(math.log(lengths.median), lengths.sigma)))
    return (lengths.cap, True) if n >= lengths.cap else (max(1, n), False)


@dataclass(frozen=True)
class Serving:
    """One replica's speed and how many sequences it holds at once."""

    replica_tok_s: float = REPLICA_TOK_S
    prefill_tok_s: float = PREFILL_TOK_S
    seqs_per_replica: int = 125  # 2,000 in flight over 16 replicas
    gpus_per_replica: int = GPUS_PER_REPLICA

    @property
    def per_sequence_tok_s(self) -> float:
        return self.replica_tok_s / self.seqs_per_replica


def latency_s(serving: Serving, prompt_tokens: int, output_tokens: int, time_scale: float) -> float:
    """Seconds the fake replica waits before answering: real latency ÷ ``time_scale``."""
    real = TTFT_BASE_S + prompt_tokens / serving.prefill_tok_s + output_tokens / serving.per_sequence_tok_s
    return real / time_scale


@dataclass(frozen=True)
class Measured:
    """Per-question and per-call figures from the scaled run (``questions`` of them)."""

    questions: int
    calls: int
    output_tokens: int
    prompt_tokens: int
    orchestrator_cpu_s_per_call: float  # marginal CPU per call (the slope between two sizes, else the mean)
    db_bytes: int


@dataclass(frozen=True)
class Projection:
    replicas: int
    calls: float
    output_tokens: float
    wall_h: float
    gpu_hours: float
    calls_per_s: float
    orchestrator_core_h: float
    orchestrator_core_fraction: float  # of one core, over the run's wall time
    db_gib: float


def project(measured: Measured, serving: Serving, replicas: int, questions: int = PAPER_QUESTIONS) -> Projection:
    """The real run of ``questions`` on ``replicas`` replicas, linear in questions from ``measured``.

    Wall time = (output tokens ÷ decode rate + prompt tokens ÷ prefill rate) ÷ replicas: the replicas
    are kept busy (enough requests in flight) and share the work evenly.  GPU-hours = wall x replicas x
    GPUs per replica.  The orchestrator needs ``calls x CPU per call`` of one core over that wall time.
    """
    per_q = questions / measured.questions
    calls, out, prompt = measured.calls * per_q, measured.output_tokens * per_q, measured.prompt_tokens * per_q
    replica_s = out / serving.replica_tok_s + prompt / serving.prefill_tok_s
    wall_s = replica_s / replicas
    core_s = calls * measured.orchestrator_cpu_s_per_call
    return Projection(replicas=replicas, calls=calls, output_tokens=out, wall_h=wall_s / 3600,
                      gpu_hours=wall_s * replicas * serving.gpus_per_replica / 3600, calls_per_s=calls / wall_s,
                      orchestrator_core_h=core_s / 3600, orchestrator_core_fraction=core_s / wall_s,
                      db_gib=measured.db_bytes * per_q / 2 ** 30)


def marginal_per_call(points: list[tuple[int, float]]) -> tuple[float, float]:
    """(slope, intercept) of CPU seconds against calls, least squares over (calls, cpu_s) points.

    One point: (cpu / calls, 0).  Two or more: the fixed cost (start-up, imports) is the intercept,
    what each further call costs the slope."""
    if not points:
        raise ValueError("no measurements")
    if len(points) == 1:
        calls, cpu = points[0]
        return cpu / calls, 0.0
    n = len(points)
    mx, my = sum(c for c, _ in points) / n, sum(s for _, s in points) / n
    sxx = sum((c - mx) ** 2 for c, _ in points)
    if sxx == 0:
        return my / mx, 0.0
    slope = sum((c - mx) * (s - my) for c, s in points) / sxx
    return slope, my - slope * mx
