"""One retry layer, counted by the server: the CLI as a subprocess against the fake server on 127.0.0.1.

Every count below comes from the server's own request log (``server.requests``), never from the
client's counters; "the same request" is the same JSON body."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from fake_llm_server import FakeLLMServer, RequestRecord
from retry_support import (KEY, QUESTIONS, body_key, cli, config, db_rows, env, is_generation, is_ranking,
                           read_jsonl, repeats, sent)

pytestmark = pytest.mark.slow


class Chosen:
    """Picks the first generation request the server sees and fails it: ``times`` times (None: always)."""

    def __init__(self, status: int, message: str, times: int | None) -> None:
        self.status, self.message, self.times = status, message, times
        self.key: str | None = None

    def __call__(self, record: RequestRecord, body: dict, seen: int):
        if self.key is None and is_generation(body):
            self.key = body_key(body)
        if body_key(body) == self.key and (self.times is None or seen < self.times):
            return self.status, self.message, {}
        return None


async def _run_with(tmp_path: Path, chosen: Chosen, *, attempts: int = 3, limit: int = 2) -> tuple[FakeLLMServer, Path]:
    async with FakeLLMServer(api_key=KEY) as server:
        server.script = chosen
        db = tmp_path / "run.db"
        rc, _, err = await cli("run", "--config", str(config(tmp_path, attempts=attempts)), "--input", str(QUESTIONS),
                               "--db", str(db), "--limit", str(limit), environ=env(server))
        assert rc == 0, err
    assert chosen.key is not None
    return server, db


async def test_one_http_500_costs_exactly_two_calls(tmp_path):
    server, db = await _run_with(tmp_path, Chosen(500, "The server had an error.", times=1))
    assert sent(server, server.script.key) == 2
    # the failed attempt is accounted to the endpoint that failed it (LLMError carries its endpoint)
    assert db_rows(db, "SELECT endpoint, SUM(calls) FROM calls WHERE outcome='error:ServerError'"
                       " GROUP BY endpoint") == [(server.openai_url, 1)]
    assert db_rows(db, "SELECT COUNT(*) FROM messages WHERE type='StageFailed'") == [(0,)]
    others = repeats(server)
    del others[server.script.key]
    assert max(others.values()) == 1, "no other request was sent twice"


async def test_a_non_retryable_400_costs_exactly_one_call(tmp_path):
    chosen = Chosen(400, "This model's maximum context length is 4096 tokens.", times=None)
    server, db = await _run_with(tmp_path, chosen)
    assert sent(server, chosen.key) == 1
    (kind,) = db_rows(db, "SELECT COUNT(*) FROM messages WHERE type='StageFailed' AND label='generate'")[0]
    assert kind == 1


@pytest.mark.parametrize("attempts", [2, 4])
async def test_a_request_that_always_fails_alone_costs_exactly_attempts_calls(tmp_path, attempts):
    chosen = Chosen(500, "The server had an error.", times=None)
    server, db = await _run_with(tmp_path, chosen, attempts=attempts)
    assert sent(server, chosen.key) == attempts, "the bus adds no attempt of its own"
    assert sum(r.status == 200 for r in server.requests) > 20, "the server answered the others meanwhile"
    assert len(db_rows(db, "SELECT id FROM messages WHERE type='StageFailed' AND label='generate'")) == 1


GARBAGE = "Both paths look reasonable to me; I would keep the clearer ones."


async def test_a_judge_answering_garbage_gets_new_correction_requests_then_an_unparseable_failure(tmp_path):
    def garbage_ranker(record: RequestRecord, body: dict, seen: int):
        return (200, GARBAGE, {}) if is_ranking(body) else None

    async with FakeLLMServer(api_key=KEY) as server:
        server.script = garbage_ranker
        db, out = tmp_path / "run.db", tmp_path / "out"
        environ = env(server)
        rc, _, err = await cli("run", "--config", str(config(tmp_path)), "--input", str(QUESTIONS), "--db", str(db),
                               "--limit", "8", environ=environ)
        assert rc in (0, 3), err
        rc, _, err = await cli("export", "--db", str(db), "--out", str(out), environ=environ)
        assert rc == 0, err
    ranking = [r for r in server.requests if r.body and is_ranking(r.body)]
    assert ranking, "the ranker was called (else the test is vacuous)"
    assert max(Counter(body_key(r.body) for r in ranking).values()) == 1, "never the same judge request twice"
    failures = [f for f in read_jsonl(out / "failures.jsonl") if f["stage"] == "rank"]
    assert failures and len(ranking) == 3 * len(failures)  # the original and two corrections each
    for f in failures:
        assert (f["kind"], f["error_class"], f["raw"], f["attempts"]) == ("unparseable", "JudgeFailed", GARBAGE, 3)
    firsts = [r for r in ranking if len(r.body["messages"]) <= 2]
    assert len(firsts) == len(failures)
    corrections = [r for r in ranking if len(r.body["messages"]) > 2]
    assert all(r.body["messages"][-2]["content"] == GARBAGE for r in corrections)
