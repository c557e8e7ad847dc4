"""The capacity benchmark's arithmetic and fake texts (bench/capacity_*.py): projection, latency, the
stage a real template's prompt is taken for, and CoTs the project's own parsers read back."""

from __future__ import annotations

import random
import statistics
import sys
from pathlib import Path
from string import Template

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

from capacity_model import Measured, Serving, draw_tokens, latency_s, marginal_per_call, project  # noqa: E402
from capacity_report import in_flight_mean, steady_window  # noqa: E402
from capacity_text import cot, stage_of  # noqa: E402

from agents.parsing import split_thinking, stated_answer  # noqa: E402

# 1,000 questions measured: 21.6 calls, 9,000 output and 20,000 prompt tokens each, 1 ms CPU per call, 300 KB each
MEASURED = Measured(questions=1000, calls=21_600, output_tokens=9_000_000, prompt_tokens=20_000_000,
                    orchestrator_cpu_s_per_call=0.001, db_bytes=300_000_000)
SERVING = Serving(replica_tok_s=2000, prefill_tok_s=20_000, seqs_per_replica=125, gpus_per_replica=4)


# 194,925 questions: 1.754325e9 output tokens / 2,000 + 3.8985e9 prompt / 20,000 = 1,072,087.5 replica-seconds
@pytest.mark.parametrize("replicas, wall_h, calls_per_s, core_fraction", [
    (1, 297.802, 3.927, 0.003927),
    (16, 18.6126, 62.84, 0.06284),
    (64, 4.6531, 251.4, 0.2514),
])
def test_projection_for_the_paper_run(replicas: int, wall_h: float, calls_per_s: float, core_fraction: float) -> None:
    p = project(MEASURED, SERVING, replicas)
    assert p.calls == pytest.approx(4_210_380)
    assert p.output_tokens == pytest.approx(1.754325e9)
    assert p.wall_h == pytest.approx(wall_h, rel=1e-4)
    assert p.gpu_hours == pytest.approx(1_072_087.5 * 4 / 3600)  # the same GPU-hours whatever the replica count
    assert p.calls_per_s == pytest.approx(calls_per_s, rel=1e-3)
    assert p.orchestrator_core_h == pytest.approx(4_210.38 / 3600)
    assert p.orchestrator_core_fraction == pytest.approx(core_fraction, rel=1e-3)
    assert p.db_gib == pytest.approx(300e6 * 194.925 / 2**30)


@pytest.mark.parametrize("points, slope, fixed", [
    ([(10_000, 13.0)], 0.0013, 0.0),                      # one size: the mean
    ([(10_000, 13.0), (20_000, 23.0)], 0.001, 3.0),       # two sizes: 1 ms per call + 3 s of start-up
    ([(5_000, 8.0), (10_000, 13.0), (20_000, 23.0)], 0.001, 3.0),
])
def test_marginal_cpu_per_call(points, slope: float, fixed: float) -> None:
    got = marginal_per_call(points)
    assert got == (pytest.approx(slope), pytest.approx(fixed))


def test_latency_is_decode_at_the_shared_rate_plus_prefill_scaled_down() -> None:
    serving = Serving(replica_tok_s=2616, prefill_tok_s=20_000, seqs_per_replica=125)
    real = 0.2 + 400 / 20_000 + 650 / (2616 / 125)  # 31.28 s: a median CoT on a replica holding 125 sequences
    assert latency_s(serving, 400, 650, 1) == pytest.approx(real)
    assert latency_s(serving, 400, 650, 4) == pytest.approx(real / 4)


def test_drawn_lengths() -> None:
    rng = random.Random(1)
    draws = [draw_tokens("generate", rng, 0) for _ in range(4001)]
    assert 600 < statistics.median(n for n, _ in draws) < 700  # lognormal, median 650
    assert all((n == 8192) == cut for n, cut in draws)
    assert draw_tokens("verify", rng, 37) == (37, False)  # a judge's length is its text's


def test_in_flight_mean_over_the_middle_of_the_span() -> None:
    area = [0.0] * 10 + [2000.0] * 80 + [10.0] * 10  # seconds 10-89 full, a tail after
    assert in_flight_mean(area, 10.0, 90.0) == pytest.approx(2000.0)  # seconds 18-81
    assert in_flight_mean(area, 10.0, 100.0) == pytest.approx((71 * 2000 + 10) / 72)  # 19-90: one tail second
    assert in_flight_mean(area, 0.0, 100.0, lo=0.0, hi=1.0) == pytest.approx((80 * 2000 + 100) / 100)


def _render(name: str) -> str:
    text = (ROOT / "agents" / "templates" / f"{name}.txt").read_text()
    text = text.split("[user]\n", 1)[-1]
    return Template(text).safe_substitute(context="", stem="A 54-year-old man has chest pain.",
                                          options="A) Pericarditis\nB) Aortic dissection\nC) Angina",
                                          answer="B) Aortic dissection", cot="1. Restate ...\nFinal answer: B",
                                          error_reasons="- wrong answer", paths="[qwen_1]\n...", names="qwen_1",
                                          response="The answer is B.", answer_line="")


@pytest.mark.parametrize("template, stage", [
    ("generate", "generate"), ("verify", "verify"), ("rank", "rank"), ("refine", "refine"),
    ("regenerate", "regenerate"), ("optimize", "regenerate"), ("summarize", "summarize"), ("score", "score"),
])
def test_the_fakes_know_every_stage_by_its_real_template(template: str, stage: str) -> None:
    assert stage_of(_render(template)) == stage


@pytest.mark.parametrize("model, thinks", [
    ("Qwen2.5-72B-Instruct", False), ("DeepSeek-R1-Distill-Llama-70B", True), ("HuatuoGPT-o1-70B", True),
])
def test_fake_cots_are_read_back_by_the_project_parsers(model: str, thinks: bool) -> None:
    text = cot(_render("generate"), "C", model, 3000, random.Random(7))
    thinking, visible = split_thinking(text)
    assert bool(thinking) is thinks
    assert stated_answer(visible, ["Pericarditis", "Aortic dissection", "Angina"]) == "C"
    assert 2700 < len(text) < 3400
    assert all(f"{i}. " in visible for i in range(1, 7))


@pytest.mark.parametrize("done, window", [
    ([10] * 10, (0, 9)),                      # even: 10 % answered in second 0, 90 % in second 8
    ([0, 0, 50, 50, 0, 0, 0, 0, 0, 1], (2, 4)),  # one straggler 6 s later is left out
    ([5], (0, 1)),
])
def test_steady_window_leaves_out_ramp_and_tail(done: list[int], window: tuple[int, int]) -> None:
    assert steady_window(done) == window


def test_the_fakes_in_flight_area_always_moves_on() -> None:
    from capacity_fakes import Replicas

    fakes = Replicas({}, SERVING, 1.0, 2.0, 0.8, 0)
    fakes.t0 = fakes.last = 4_815.123456789  # a monotonic clock hours in: t0 + b + 1 rounds
    fakes.in_flight = 2
    for step in range(1, 3001):  # 3 s in 1 ms steps, each ending on a float that may round onto a second
        fakes._advance(fakes.t0 + step / 1000)
    assert [round(a, 6) for a in fakes.area] == [2.0, 2.0, 2.0]
