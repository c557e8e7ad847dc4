"""The simulated LLM backend: deterministic, shaped like the real models, with configurable faults."""

from __future__ import annotations

import json

import pytest

from agents.llm import BadRequest, ChatMessage, ChatRequest, ServerError
from reasonmed_async.llm.sim import SimClient, SimSettings

ACC = {"sim-qwen": 0.75, "sim-deepseek": 0.7, "sim-huatuo": 0.72}
TEMPS = (0.7, 0.9, 1.0)
STEPS = ("1. Restate the question", "2. Key clinical details", "3. Evaluate each option", "4. Rule out",
         "5. Compare the remaining options", "6. Conclusion")


def gen(q: str = "q1", model: str = "sim-qwen", temperature: float | None = 0.7, sample: int = 0,
        task: str = "generate", gold: str = "B", letters: str = "ABCD", prompt: str | None = None) -> ChatRequest:
    return ChatRequest(
        model=model,
        messages=(ChatMessage("system", "You are a medical expert."),
                  ChatMessage("user", prompt or f"Question {q}: which option? A) a B) b C) c D) d")),
        temperature=temperature, sample=sample,
        meta={"task": task, "gold": gold, "letters": letters, "question_id": q},
    )


def judge(task: str, body: str, **meta: str) -> ChatRequest:
    return ChatRequest(model="sim-qwen", messages=(ChatMessage("user", body),), temperature=1.0,
                       meta={"task": task, **meta})


def stated(text: str) -> str:
    last = text.rstrip().rsplit("\n", 1)[-1]
    return last.removeprefix("Final answer: ").strip() if last.startswith("Final answer: ") else ""


async def test_same_request_same_completion_across_clients():
    req = gen()
    a = await SimClient(SimSettings(seed=3)).complete(req)
    b = await SimClient(SimSettings(seed=3)).complete(req)
    assert a == b
    other = await SimClient(SimSettings(seed=4)).complete(req)
    assert other.backend == "sim" and other.endpoint == "sim://local"


async def test_samples_differ_and_cot_has_six_steps_and_answer_line():
    c = SimClient()
    texts = [(await c.complete(gen(sample=i))).text for i in range(20)]
    assert len(set(texts)) >= 19
    assert c.calls == 20
    for t in texts:
        pos = [t.index(s) for s in STEPS]
        assert pos == sorted(pos)
        assert all(f"{ch})" in t for ch in "ABCD")
        assert stated(t) in "ABCD" and stated(t)
        assert 300 < len(t) < 2000


async def test_reasoning_models_emit_think_block_and_tokens():
    c = SimClient()
    r1 = await c.complete(gen(model="sim-deepseek-r1"))
    assert r1.text.startswith("<think>") and "</think>\n1. Restate" in r1.text
    assert r1.reasoning_tokens > 0
    plain = await c.complete(gen(model="sim-qwen"))
    assert not plain.text.startswith("<think>") and plain.reasoning_tokens == 0
    assert plain.prompt_tokens == pytest.approx(sum(len(m.content.split()) for m in gen().messages), abs=2)
    assert plain.completion_tokens == pytest.approx(len(plain.text.split()), rel=0.1)
    assert plain.latency_s == 0.0 and plain.finish_reason == "stop"


async def test_wrong_answers_use_valid_letters_and_gold_is_respected():
    c = SimClient(SimSettings(accuracy={"m": 0.0}))
    seen = {stated((await c.complete(gen(q=f"q{i}", model="m", gold="C", letters="ABC", temperature=1.0))).text)
            for i in range(200)}
    assert seen <= set("ABC") and len(seen) >= 2


async def test_higher_temperature_gives_fewer_correct():
    c = SimClient(SimSettings(accuracy={"m": 0.7}, temperature_penalty=0.5))

    async def correct(t: float) -> int:
        return sum([stated((await c.complete(gen(q=f"q{i}", model="m", temperature=t))).text) == "B"
                    for i in range(1000)])

    low, high = await correct(0.7), await correct(1.0)
    assert high < low - 50


async def test_refine_uses_refine_accuracy():
    c = SimClient(SimSettings(accuracy={"m": 0.0}, refine_accuracy=0.9))
    n = sum([stated((await c.complete(gen(q=f"q{i}", model="m", task="refine"))).text) == "B" for i in range(1000)])
    assert 860 <= n <= 940
    regen = await c.complete(gen(task="regenerate"))
    assert stated(regen.text)


async def test_verifier_compares_stated_with_gold():
    c = SimClient(SimSettings(verifier_error_rate=0.0))
    ok = json.loads((await c.complete(judge("verify", "cot 1", gold="B", stated="B"))).text)
    assert ok["verdict"] == "Correct" and ok["reason"]
    bad = json.loads((await c.complete(judge("verify", "cot 2", gold="B", stated="D"))).text)
    assert bad["verdict"] == "Error" and "concludes D" in bad["reason"] and "correct answer is B" in bad["reason"]
    none = json.loads((await c.complete(judge("verify", "cot 3", gold="B", stated=""))).text)
    assert none["verdict"] == "Error"


async def test_verifier_error_rate_flips_verdicts():
    c = SimClient(SimSettings(verifier_error_rate=0.1))
    flips = sum([json.loads((await c.complete(judge("verify", f"cot {i}", gold="A", stated="A"))).text)["verdict"]
                 == "Error" for i in range(2000)])
    assert 150 <= flips <= 250


def _parses(text: str, keys: set[str]) -> bool:
    try:
        obj = json.loads(text)
    except json.JSONDecodeError:
        return False
    return isinstance(obj, dict) and keys <= obj.keys()


async def test_malformed_rate_for_judges():
    c = SimClient(SimSettings(malformed_rate=0.2))
    n = 2000
    bad_v = sum([not _parses((await c.complete(judge("verify", f"c{i}", gold="A", stated="A"))).text,
                             {"verdict", "reason"}) for i in range(n)])
    bad_s = sum([not _parses((await c.complete(judge("score", f"r{i}"))).text, {"score"}) for i in range(n)])
    paths = "qwen_1,qwen_2,huatuo_3,deepseek_1"
    bad_r = 0
    for i in range(n):
        text = (await c.complete(judge("rank", f"p{i}", paths=paths))).text
        ok = _parses(text, {"top2", "reasons"})
        if ok:
            top = json.loads(text)["top2"]
            ok = len(set(top)) == 2 and set(top) <= set(paths.split(","))
        bad_r += not ok
    for bad in (bad_v, bad_s, bad_r):
        assert 0.16 * n <= bad <= 0.24 * n


async def test_well_formed_rank_and_score_and_summary():
    c = SimClient()
    names = ["qwen_1", "qwen_2", "huatuo_3", "deepseek_1"]
    out = json.loads((await c.complete(judge("rank", "x", paths=",".join(names)))).text)
    assert len(set(out["top2"])) == 2 and set(out["top2"]) <= set(names)
    assert set(out["reasons"]) == set(names) - set(out["top2"])
    scores = {json.loads((await c.complete(judge("score", f"r{i}"))).text)["score"] for i in range(200)}
    assert scores == {6, 7, 8, 9, 10}
    summary = (await c.complete(judge("summarize", "cot", stated="C"))).text
    assert summary.startswith("The answer is C.") and 2 <= summary.count(". ") + 1 <= 4


async def test_truncation_rate():
    c = SimClient(SimSettings(truncation_rate=0.3))
    outs = [await c.complete(gen(q=f"q{i}")) for i in range(2000)]
    cut = [o for o in outs if o.finish_reason == "length"]
    assert 0.26 * 2000 <= len(cut) <= 0.34 * 2000
    assert all(o.truncated and "Final answer:" not in o.text for o in cut)
    assert all(stated(o.text) for o in outs if not o.truncated)


async def test_max_tokens_truncates():
    req = ChatRequest(model="m", messages=(ChatMessage("user", "q"),), max_tokens=10,
                      meta={"task": "generate", "gold": "A", "letters": "AB", "question_id": "q"})
    out = await SimClient().complete(req)
    assert out.finish_reason == "length" and out.completion_tokens == 10


async def test_failure_rate_and_retry_succeeds():
    c = SimClient(SimSettings(failure_rate=0.25))
    failures = 0
    for i in range(2000):
        try:
            await c.complete(gen(q=f"q{i}"))
        except ServerError as e:
            assert e.status == 503 and e.retryable
            failures += 1
    assert 0.21 * 2000 <= failures <= 0.29 * 2000
    req, attempts = gen(q="retry"), 0
    while True:
        attempts += 1
        try:
            out = await c.complete(req)
            break
        except ServerError:
            assert attempts < 50
    assert out == await SimClient().complete(req)  # a retried answer is the same answer


async def test_latency_is_simulated():
    out = await SimClient(SimSettings(latency_ms=2.0)).complete(gen())
    assert 0.001 <= out.latency_s <= 0.003


async def test_call_log_counts_started_calls(tmp_path):
    log = tmp_path / "calls.log"
    c = SimClient(SimSettings(call_log=str(log), failure_rate=0.5))
    reqs = [gen(q=f"q{i}") for i in range(30)]
    for r in reqs:
        try:
            await c.complete(r)
        except ServerError:
            pass
    with pytest.raises(BadRequest):
        await c.complete(judge("nope", "x"))
    lines = log.read_text().splitlines()
    assert len(lines) == 31 == c.calls
    assert lines[0] == f"generate\tsim-qwen\t{reqs[0].cache_key()}"
    assert lines[-1].startswith("nope\tsim-qwen\t")


async def test_tier_distribution_of_nine_paths():
    c = SimClient(SimSettings(accuracy=ACC))
    tiers = {"easy": 0, "medium": 0, "difficult": 0}
    for q in range(2000):
        errors = 0
        for model in ACC:
            for i, t in enumerate(TEMPS):
                cot = (await c.complete(gen(q=f"syn-{q}", model=model, temperature=t, sample=i,
                                            prompt=f"Question syn-{q}"))).text
                v = await c.complete(judge("verify", cot, gold="B", stated=stated(cot)))
                errors += json.loads(v.text)["verdict"] == "Error"
        tiers["easy" if errors <= 4 else "medium" if errors <= 7 else "difficult"] += 1
    share = {k: v / 2000 for k, v in tiers.items()}
    assert 0.60 <= share["easy"] <= 0.75, share
    assert 0.15 <= share["medium"] <= 0.30, share
    assert 0.05 <= share["difficult"] <= 0.15, share


async def test_unknown_or_missing_task_raises_bad_request():
    c = SimClient()
    with pytest.raises(BadRequest, match="'translate'"):
        await c.complete(judge("translate", "x"))
    with pytest.raises(BadRequest, match="unknown task ''"):
        await c.complete(ChatRequest(model="m", messages=(ChatMessage("user", "x"),)))
    with pytest.raises(BadRequest, match="gold"):
        await c.complete(ChatRequest(model="m", messages=(ChatMessage("user", "x"),), meta={"task": "generate"}))
    await c.aclose()


def test_settings_validation_and_from_mapping():
    s = SimSettings.from_mapping({"seed": 7, "accuracy": {"a": 0.5}, "malformed_rate": 0.1})
    assert s.seed == 7 and s.accuracy == {"a": 0.5} and s.malformed_rate == 0.1
    assert s.base_accuracy("a", 1.0) == pytest.approx(0.5 - 0.15 * 0.3)
    assert s.base_accuracy("other", 0.5) == 0.7
    with pytest.raises(ValueError, match="bogus.*colour|colour.*bogus") as e:
        SimSettings.from_mapping({"seed": 1, "bogus": 1, "colour": 2})
    assert "seed" not in str(e.value).split("(known")[0]
    for bad in ({"failure_rate": 1.5}, {"malformed_rate": -0.1}, {"latency_ms": -1}, {"accuracy": {"a": 2}},
                {"refine_accuracy": "high"}):
        with pytest.raises(ValueError):
            SimSettings(**bad)


async def test_planted_correct_paths_are_exact():
    c = SimClient(SimSettings(accuracy={"m": 1.0}, correct_paths={"one": 1, "none": 0}))
    one = [stated((await c.complete(gen(q="one", model="m", sample=i))).text) for i in range(1, 10)]
    assert one[0] == "B" and all(a != "B" for a in one[1:])
    assert all([stated((await c.complete(gen(q="none", model="m", sample=i))).text) != "B" for i in range(1, 10)])


async def test_planted_lenient_verifier_says_correct_of_a_wrong_answer():
    c = SimClient(SimSettings(verifier_error_rate=0.0, verifier_accepts=("lenient",)))
    lenient = json.loads((await c.complete(judge("verify", "cot", gold="B", stated="D", question_id="lenient"))).text)
    strict = json.loads((await c.complete(judge("verify", "cot", gold="B", stated="D", question_id="other"))).text)
    assert (lenient["verdict"], strict["verdict"]) == ("Correct", "Error")


@pytest.mark.parametrize("task", ["refine", "regenerate"])
async def test_self_reference_rate_marks_rewrites_only(task):
    from agents.gates import self_reference

    never, always = SimClient(SimSettings()), SimClient(SimSettings(self_reference_rate=1.0))
    assert all([self_reference((await never.complete(gen(q=f"q{i}", task=task))).text) is None for i in range(20)])
    assert all([self_reference((await always.complete(gen(q=f"q{i}", task=task))).text) for i in range(20)])
    generated = [(await c.complete(gen(q="g", sample=3))).text for c in (never, always)]
    assert generated[0] == generated[1] and self_reference(generated[0]) is None
    planted = SimClient(SimSettings(self_reference_rate=1.0, correct_paths={"p": 1}))
    assert self_reference((await planted.complete(gen(q="p", task=task))).text) is None


def test_planted_settings_are_checked():
    for bad in ({"correct_paths": {"q": -1}}, {"correct_paths": {"q": True}}, {"verifier_accepts": "q1"},
                {"self_reference_rate": 2}):
        with pytest.raises(ValueError):
            SimSettings(**bad)
    s = SimSettings.from_mapping({"correct_paths": {"q": 1}, "verifier_accepts": ["a", "b"]})
    assert s.correct_paths == {"q": 1} and s.verifier_accepts == ("a", "b")
