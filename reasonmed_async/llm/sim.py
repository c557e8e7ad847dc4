"""A deterministic, seeded simulated LLM: the default backend, no GPU and no keys.

It reads ``request.meta`` (the task, the gold answer: what the agent knows) and
writes answers shaped like the real models' — six-step CoTs, verifier and
ranker JSON, summaries, scores — with configurable accuracy and fault rates.
Every answer is a pure function of ``(settings.seed, request.cache_key())``:
the same request gives the same completion in any order, process or run.
Only the simulated 503s count attempts, so that a retried call can succeed.
"""

from __future__ import annotations

import asyncio
import json
import random
from functools import lru_cache, partial
from hashlib import blake2b

from agents.llm import BadRequest, ChatRequest, Completion, ServerError
from reasonmed_async.llm import sim_phrases as phrases
from reasonmed_async.llm.sim_settings import SimSettings

__all__ = ["SimClient", "SimSettings"]

# p_correct = clamp(base_accuracy(model, T) + _EASE - _SLOPE * hardness): tuned so
# that 9 paths at the defaults tier ~2/3 easy, ~1/5 medium, ~1/10 difficult.
_EASE = 0.80
_SLOPE = 1.45


def _rng(seed: int, key: str, label: str) -> random.Random:
    d = blake2b(f"{seed}|{key}|{label}".encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(d, "big"))


def _pick(rng: random.Random, pool):  # rng.choice, at a third of its cost
    return pool[int(rng.random() * len(pool))]


@lru_cache(maxsize=4096)
def _hardness(seed: int, question_id: str) -> float:
    d = blake2b(f"{seed}|question|{question_id}".encode(), digest_size=8).digest()
    return int.from_bytes(d, "big") / 2.0**64


def _words(text: str) -> int:
    return text.count(" ") + text.count("\n") + 1 if text else 0


def _need(meta, task: str, *names: str) -> list[str]:
    vals = [meta.get(n) for n in names]
    missing = [n for n, v in zip(names, vals) if not v]
    if missing:
        raise BadRequest(f"sim: task {task!r} needs meta {', '.join(missing)}")
    return vals


def _cot(s: SimSettings, req: ChatRequest, key: str, task: str) -> tuple[str, str, str]:
    """(text, finish_reason, thinking) of a generated / refined / regenerated CoT."""
    meta = req.meta
    gold, letters = _need(meta, task, "gold", "letters")
    if gold not in letters:
        raise BadRequest(f"sim: gold {gold!r} is not among letters {letters!r}")
    rng = _rng(s.seed, key, task)
    ch = partial(_pick, rng)
    u_trunc, u_ok = rng.random(), rng.random()
    planted = s.correct_paths.get(meta.get("question_id", ""))
    if task == "generate" and planted is not None:  # exactly `planted` of the paths (by sample index) are right
        p = 1.0 if req.sample <= planted else 0.0
    elif task == "generate":
        h = _hardness(s.seed, meta.get("question_id") or key)
        p = min(1.0, max(0.0, s.base_accuracy(req.model, req.temperature) + _EASE - _SLOPE * h))
    else:
        p = s.refine_accuracy
    others = [c for c in letters if c != gold]
    ans = gold if u_ok < p or not others else ch(others)
    rest = [c for c in letters if c != ans]
    alt = ch(rest) if rest else ans
    m = ch(phrases.MECH)
    evals = " ".join(f"{c}) " + (ch(phrases.BEST).format(m=m) if c == ans
                                 else ch(phrases.ALT) if c == alt else ch(phrases.OTHER))
                     for c in letters)
    out = [c for c in rest if c != alt]
    rule = ch(phrases.RULE).format(x=", ".join(out)) if out else "No option can be excluded outright."
    end = ch(phrases.CONCLUDE).format(a=ans)  # generated CoTs draw nothing more, so they are the same whatever the rate
    if task != "generate" and planted is None and rng.random() < s.self_reference_rate:  # drawn last: see above
        end += " " + ch(phrases.REFINED)  # "Unlike the earlier attempts, ..."
    text = (f"1. Restate the question: {ch(phrases.RESTATE)}\n"
            f"2. Key clinical details: {ch(phrases.DETAIL).format(m=m, n=5 + int(rng.random() * 91))}\n"
            f"3. Evaluate each option: {evals}\n4. Rule out: {rule}\n"
            f"5. Compare the remaining options: {ch(phrases.COMPARE).format(a=ans, b=alt, m=m)}\n"
            f"6. Conclusion: {end}\nFinal answer: {ans}")
    think = ""
    low = req.model.lower()
    if "deepseek" in low or "r1" in low:
        think = ch(phrases.THINK).format(a=ans, b=alt)
        text = f"<think>{think}</think>\n{text}"
    if u_trunc < s.truncation_rate:
        return text[: len(text) // 2].rsplit("\n", 1)[0], "length", think
    return text, "stop", think


def _malformed(rng: random.Random, full: str, prose: str) -> str:
    """Unusable output: the JSON broken off after its first key (no tolerant reader can mend that), or prose."""
    return full[: full.index(":") + 1] if rng.random() < 0.5 else prose


def _verify(s: SimSettings, req: ChatRequest, key: str, task: str) -> str:
    (gold,) = _need(req.meta, task, "gold")
    stated = req.meta.get("stated", "") or ""
    rng = _rng(s.seed, key, task)
    u_bad, u_flip = rng.random(), rng.random()
    lenient = req.meta.get("question_id", "") in s.verifier_accepts  # planted: Correct whatever the answer
    ok = lenient or (stated == gold) != (u_flip < s.verifier_error_rate)
    if ok:
        reason = _pick(rng, phrases.OK)
    else:
        why = _pick(rng, phrases.WHY).format(g=gold)
        if not stated:
            reason = f"The reasoning states no final answer, while the correct answer is {gold}; {why}"
        elif stated == gold:
            reason = f"The reasoning reaches {gold} but contains a factual error: {why}"
        else:
            reason = f"The reasoning concludes {stated} but the correct answer is {gold}; {why}"
    verdict = "Correct" if ok else "Error"
    full = json.dumps({"verdict": verdict, "reason": reason})
    if u_bad < s.malformed_rate:
        return _malformed(rng, full, f"Verdict: {verdict}\nReason: {reason}")
    return full


def _rank(s: SimSettings, req: ChatRequest, key: str, task: str) -> str:
    (paths,) = _need(req.meta, task, "paths")
    names = [p.strip() for p in paths.split(",") if p.strip()]
    rng = _rng(s.seed, key, task)
    u_bad = rng.random()
    top = rng.sample(names, min(2, len(names)))
    reasons = {n: _pick(rng, phrases.NOT_TOP) for n in names if n not in top}
    if u_bad < s.malformed_rate:
        if rng.random() < 0.5:  # names a path it was not given
            return json.dumps({"top2": [top[0], "gpt_9"], "reasons": reasons})
        return _malformed(rng, json.dumps({"top2": top, "reasons": reasons}),
                          f"The best paths are {' and '.join(top)}.")
    return json.dumps({"top2": top, "reasons": reasons})


def _summarize(s: SimSettings, req: ChatRequest, key: str, task: str) -> str:
    stated = req.meta.get("stated") or req.meta.get("gold")
    if not stated:
        raise BadRequest(f"sim: task {task!r} needs meta stated")
    rng = _rng(s.seed, key, task)
    return " ".join([f"The answer is {stated}.", *rng.sample(phrases.SUMMARY, rng.randint(1, 3))])


def _score(s: SimSettings, req: ChatRequest, key: str, task: str) -> str:
    rng = _rng(s.seed, key, task)
    u_bad, n, why = rng.random(), 6 + int(rng.random() * 5), _pick(rng, phrases.JUSTIFY)
    full = json.dumps({"score": n, "justification": why})
    if u_bad < s.malformed_rate:
        return _malformed(rng, full, f"I would give this response a {n} out of 10. {why}")
    return full


def _answer(s: SimSettings, req: ChatRequest, key: str, task: str) -> str:
    """A benchmark answer (``reasonmed eval``): right with ``answer_accuracy``; it reasons, then ends
    ``Answer: X`` (simple-evals), or with ``malformed_rate`` in a form only a lenient reader takes."""
    gold, letters = _need(req.meta, task, "gold", "letters")
    rng = _rng(s.seed, key, task)
    u_ok, u_bad = rng.random(), rng.random()
    p = s.answer_accuracy.get(req.model, s.default_accuracy)
    others = [c for c in letters if c != gold]
    ans = gold if u_ok < p or not others else _pick(rng, others)
    reasoning = f"{_pick(rng, phrases.RESTATE)} {_pick(rng, phrases.DETAIL).format(m=_pick(rng, phrases.MECH), n=5 + int(rng.random() * 91))}"
    if u_bad < s.malformed_rate:
        return f"{reasoning}\nSo the best choice is **({ans})**."
    return f"{reasoning}\n{_pick(rng, phrases.CONCLUDE).format(a=ans)}\nAnswer: {ans}"


_JUDGES = {"verify": _verify, "rank": _rank, "summarize": _summarize, "score": _score, "answer": _answer}
_COTS = frozenset({"generate", "refine", "regenerate"})


class SimClient:
    """An ``LLMClient`` that simulates the ReasonMed models from ``request.meta``."""

    backend = "sim"
    endpoint = "sim://local"

    def __init__(self, settings: SimSettings | None = None) -> None:
        self.settings = settings if settings is not None else SimSettings()
        self.calls = 0
        self._attempts: dict[str, int] = {}  # failed attempts per cache key, for simulated 503s

    @property
    def answers_at_once(self) -> bool:
        """``complete`` never yields to the event loop (no latency to simulate): no timeout can apply."""
        return self.settings.latency_ms <= 0

    async def complete(self, request: ChatRequest) -> Completion:
        s = self.settings
        key = request.cache_key()
        task = request.meta.get("task", "")
        self.calls += 1
        if s.call_log is not None:
            with open(s.call_log, "a", encoding="utf-8") as f:
                f.write(f"{task}\t{request.model}\t{key}\n")
                f.flush()
        think, finish = "", "stop"
        if task in _COTS:
            text, finish, think = _cot(s, request, key, task)
        elif task in _JUDGES:
            text = _JUDGES[task](s, request, key, task)
        else:
            raise BadRequest(f"sim: unknown task {task!r} (expected generate, refine, regenerate, "
                             "verify, rank, summarize, score or answer in request.meta['task'])")
        latency = 0.0
        if s.latency_ms > 0:
            latency = s.latency_ms * (0.5 + _rng(s.seed, key, "latency").random()) / 1000.0
            await asyncio.sleep(latency)
        if s.failure_rate > 0:
            attempt = self._attempts.get(key, 0)
            if _rng(s.seed, key, f"fail|{attempt}").random() < s.failure_rate:
                self._attempts[key] = attempt + 1
                raise ServerError("simulated 503", status=503)
            self._attempts.pop(key, None)
        n_out = _words(text)
        if n_out > request.max_tokens:  # the server stops at max_tokens
            text, finish, n_out = " ".join(text.split(" ")[: request.max_tokens]), "length", request.max_tokens
        return Completion(
            text=text,
            finish_reason=finish,
            prompt_tokens=sum(_words(m.content) for m in request.messages),
            completion_tokens=n_out,
            reasoning_tokens=_words(think),
            latency_s=latency,
            endpoint=self.endpoint,
            backend=self.backend,
        )

    async def aclose(self) -> None:
        self._attempts.clear()
