"""The HTTP bench's fake server answers as a sampling model does (``--sampling``): a hot, unseeded request is
worded anew each time it is sent, a seeded or greedy one alike; so ``reasonmed run`` against it sends every
request to the server, where the plain fake's one text per prompt let the cache answer ~40% of them."""

from __future__ import annotations

import asyncio
import os
from collections import Counter, defaultdict
from pathlib import Path

import aiohttp

from agents.parsing import parse_verdict, stated_answer
from agents.prompts import Templates, generator_messages, verifier_messages
from bus import CoTGenerated
from e2e_support import cli_command, messages, query, read_jsonl
from fake_llm_server import FakeLLMServer
from reasonmed_async.loaders.dispatch import load_questions

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = ROOT / "examples" / "questions.jsonl"
TEMPLATES = Templates.load(None)


def _question():
    return load_questions(str(QUESTIONS), limit=1)[0]


def _body(content: str, **sampling: object) -> dict:
    return {"model": "m", "messages": [{"role": "user", "content": content}], "max_tokens": 2048, **sampling}


async def _texts(server: FakeLLMServer, body: dict, times: int) -> list[str]:
    async with aiohttp.ClientSession() as session:
        out = []
        for _ in range(times):
            async with session.post(f"{server.openai_url}/chat/completions", json=body,
                                    headers={"Authorization": "Bearer test-key"}) as response:
                assert response.status == 200
                out.append((await response.json())["choices"][0]["message"]["content"])
        return out


async def test_a_hot_unseeded_request_is_worded_anew_a_seeded_or_greedy_one_alike():
    q = _question()
    prompt = generator_messages(TEMPLATES, q)[-1].content
    async with FakeLLMServer(sampling=True) as server:
        hot = await _texts(server, _body(prompt, temperature=0.7), 4)
        seeded = await _texts(server, _body(prompt, temperature=0.7, seed=11), 2)
        greedy = await _texts(server, _body(prompt, temperature=0), 2)
        assert (await server_stats(server)) == {"requests": 8, "answered": 8}
    assert len(set(hot)) == 4
    assert seeded[0] == seeded[1] and greedy[0] == greedy[1]
    for text in hot + seeded + greedy:  # each still a six-step CoT that concludes one of the options
        assert text.count("\n") == 6 and stated_answer(text, q.options) in "ABCDEFGHIJ"[: len(q.options)]
    async with FakeLLMServer() as plain:  # the plain fake: one text per prompt, as before
        again = await _texts(plain, _body(prompt, temperature=0.7), 2)
    assert again[0] == again[1]


async def server_stats(server: FakeLLMServer) -> dict:
    async with aiohttp.ClientSession() as session, session.get(f"{server.base_url}/fake/stats") as response:
        return await response.json()


async def test_a_sampled_verdict_judges_the_letter_the_cot_concludes():
    q = _question()
    prompt = generator_messages(TEMPLATES, q)[-1].content
    async with FakeLLMServer(sampling=True) as server:
        cots = await _texts(server, _body(prompt, temperature=1.0), 40)
        letters = [stated_answer(c, q.options) for c in cots]
        assert len(set(letters)) > 1  # hot CoTs stray from the model's own answer now and then
        for cot, letter in zip(cots[:12], letters):
            judged = await _texts(server, _body(verifier_messages(TEMPLATES, q, cot)[-1].content, temperature=1.0), 1)
            verdict, reason = parse_verdict(judged[0], TEMPLATES.text("verify"))
            assert verdict == ("Correct" if letter == q.answer_letter else "Error") and reason


async def _run_cli(server: FakeLLMServer, tmp_path: Path, limit: int) -> Path:
    db = tmp_path / f"run-{server.port}.db"
    env = {k: v for k, v in os.environ.items() if not k.startswith("REASONMED_")}
    env.update(REASONMED_OPENAI_BASE_URL=server.openai_url, REASONMED_OPENAI_API_KEY="test-key",
               REASONMED_OPENAI_MODEL="bench-model")
    proc = await asyncio.create_subprocess_exec(
        *cli_command("run", "--config", ROOT / "examples" / "openai.toml", "--input", QUESTIONS, "--limit", limit,
                     "--db", db), cwd=ROOT, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 120)
    assert proc.returncode == 0, err.decode()[-2000:]
    return db


async def test_against_the_sampling_fake_every_request_of_a_run_reaches_the_server(tmp_path):
    async with FakeLLMServer(sampling=True, api_key="test-key") as server:
        db = await _run_cli(server, tmp_path, 3)
        answered = server.answered
    calls = query(db, "SELECT SUM(calls) FROM calls WHERE outcome = 'ok'")[0][0]
    lines = [e for e in read_jsonl(Path(f"{db}.log")) if e.get("event") == "llm.call"]
    assert answered == calls + 1  # and the preflight's probe
    assert len(lines) == calls and not any(e["cached"] for e in lines)  # no request answered without a call
    paths: dict[str, list[str]] = defaultdict(list)
    for m in messages(db, "CoTGenerated"):
        assert isinstance(m, CoTGenerated)
        paths[m.question_id].append(m.path.cot)
    assert len(paths) == 3 and all(len(set(cots)) == len(cots) == 9 for cots in paths.values())


async def test_against_the_plain_fake_a_run_is_partly_answered_by_its_cache(tmp_path):
    """What the sampling mode is for: the plain fake's nine identical CoTs make identical verify requests."""
    async with FakeLLMServer(api_key="test-key") as server:
        db = await _run_cli(server, tmp_path, 3)
    lines = [e for e in read_jsonl(Path(f"{db}.log")) if e.get("event") == "llm.call"]
    by_stage = Counter(e["stage"] for e in lines if e["cached"])
    assert by_stage["verify"] >= 3 * 8, by_stage  # the nine paths' verdicts: one call, eight answered without one
