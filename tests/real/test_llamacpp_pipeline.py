"""The whole pipeline on a real model behind a real server: SmolLM2-135M-Instruct in llama-cpp-python.

One seeded run of ten questions (five real PubMedQA questions, read in place, and five of the
project's own) goes through the ``openai`` backend with ``structured_output = "auto"`` and
``examples/llamacpp.toml``; it is SIGKILLed part-way and resumed.  A counting proxy between the
pipeline and the server is the server's own request count.  With a model this small the data
is poor: these tests assert handling, never quality.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import SERVED, missing  # this directory is on sys.path
from counting_proxy import CountingProxy

from agents.parsing import is_placeholder
from agents.prompts import Templates
from bus import Stage, StageFailed, Verdict, decode

ROOT = Path(__file__).resolve().parents[2]
PUBMEDQA = ROOT.parent / "shared" / "data" / "pubmedqa_ori_pqal.json"
DEMO = ROOT / "examples" / "questions.jsonl"
PER_SOURCE = 5
KILL_AFTER = 30          # answered calls before the SIGKILL: mid-generation / verification
RUN_TIMEOUT_S = 2400
CONCURRENCY_CAP = 4      # examples/llamacpp.toml: max_concurrency = 4 (at most that many in flight)
# Answered by the server but not in the database when the SIGKILL lands: the requests in flight (the proxy
# files them under the phase they arrived in, "run", when the server finishes them after the kill), and the
# answer that triggered the kill, sent the moment the proxy relayed it: its slot is already free and reused
# by the next request while its cache row still waits for the writer's commit.
UNRECORDED_AT_KILL = CONCURRENCY_CAP + 1


@dataclass
class Outcome:
    db: Path
    out: Path
    proxy: CountingProxy
    cached_at_kill: int
    ok_calls_at_kill: int
    questions: list[str]
    run_log: str
    status_text: str


def _questions(tmp: Path) -> tuple[Path, list[str]]:
    """Five PubMedQA questions (through the project's own loader, read in place) and five demo ones, as JSONL."""
    from reasonmed_async.loaders.dispatch import load_questions

    if not PUBMEDQA.is_file():
        missing(f"the real PubMedQA questions are not at {PUBMEDQA}")
    rows = []
    for q in list(load_questions(PUBMEDQA))[:PER_SOURCE] + list(load_questions(DEMO))[:PER_SOURCE]:
        rows.append({"id": q.id, "question": q.stem, "options": list(q.options), "answer": q.options[q.answer],
                     "context": q.context, "source": q.source})
    path = tmp / "questions.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path, [r["id"] for r in rows]


def _cli(*args: object) -> list[str]:
    return [sys.executable, "-m", "reasonmed_async.cli", *map(str, args)]


def _env(proxy: CountingProxy) -> dict[str, str]:
    env = dict(os.environ)
    env.update(REASONMED_LLAMACPP_BASE_URL=proxy.url, REASONMED_LLAMACPP_MODEL=SERVED,
               REASONMED_LLAMACPP_GEN_TOKENS="256", REASONMED_LLAMACPP_JUDGE_TOKENS="240",
               REASONMED_LLAMACPP_SEED="20250611",
               # three paths a question (three generator names, one temperature) and tiers scaled to
               # three, so ten questions fit the tier's time on two cores: the flow is the same
               REASONMED_LLAMACPP_TEMPERATURES="0.8", REASONMED_LLAMACPP_EASY_MAX="1",
               REASONMED_LLAMACPP_MEDIUM_MAX="2", REASONMED_LLAMACPP_MIN_USABLE="2")
    return env


def _one(db: Path, sql: str) -> int:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as con:
        return int(con.execute(sql).fetchone()[0] or 0)


@pytest.fixture(scope="module")
def outcome(llama_server: str, tmp_path_factory: pytest.TempPathFactory) -> Outcome:
    tmp = tmp_path_factory.mktemp("real-run")
    questions, ids = _questions(tmp)
    db, out = tmp / "run.db", tmp / "export"
    proxy = CountingProxy(llama_server).start()
    env = _env(proxy)
    try:
        proxy.phase = "run"
        killed_at = proxy.event_after(KILL_AFTER)
        with (tmp / "run.out").open("w") as log:
            run = subprocess.Popen(_cli("run", "--config", ROOT / "examples" / "llamacpp.toml", "--input", questions,
                                        "--db", db), stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp)
            killed_at.wait(RUN_TIMEOUT_S)
            run.send_signal(signal.SIGKILL)
            assert run.wait(60) == -signal.SIGKILL, f"the run ended before the kill: {(tmp / 'run.out').read_text()}"
        proxy.phase = "killed"  # nothing new should arrive now
        # llama.cpp's server finishes the killed run's requests (it does not notice the client is gone);
        # a restart waits for that, as a user would, or its preflight probe times out on a busy server
        assert proxy.wait_idle(600), "the server never finished the killed run's requests"
        cached = _one(db, "SELECT COUNT(*) FROM llm_cache")
        ok_calls = _one(db, "SELECT SUM(calls) FROM calls WHERE outcome='ok'")
        proxy.phase = "resume"
        resumed = subprocess.run(_cli("resume", "--db", db), capture_output=True, text=True, env=env, cwd=tmp,
                                 timeout=RUN_TIMEOUT_S)
        assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
        proxy.phase = "after"
        exported = subprocess.run(_cli("export", "--db", db, "--out", out), capture_output=True, text=True, env=env)
        assert exported.returncode == 0, exported.stderr[-3000:]
        status = subprocess.run(_cli("status", "--db", db), capture_output=True, text=True, env=env)
        assert status.returncode == 0, status.stderr[-3000:]
    finally:
        proxy.stop()
    return Outcome(db, out, proxy, cached, ok_calls, ids, Path(f"{db}.log").read_text(), status.stdout)


def _messages(db: Path, *types: str) -> list:
    from e2e_support import messages

    return messages(db, *types)


def test_the_run_finishes_and_every_question_is_a_record_or_a_typed_failure(outcome: Outcome) -> None:
    assert _one(outcome.db, "SELECT COUNT(*) FROM runs WHERE status != 'finished'") == 0
    assert _one(outcome.db, "SELECT COUNT(*) FROM deliveries WHERE state = 'pending'") == 0
    records = {json.loads(line)["question_id"] for line in (outcome.out / "records.jsonl").read_text().splitlines()}
    failures = [m for m in _messages(outcome.db, "StageFailed") if isinstance(m, StageFailed)]
    for f in failures:
        Stage(f.stage)  # a stage of the enum, never free text
        if hasattr(f, "kind"):
            from bus import FailureKind
            FailureKind(f.kind)
        assert f.reason if hasattr(f, "reason") else f.message
    failed = {f.question_id for f in failures if not Stage(f.stage).per_path}
    lost = [q for q in outcome.questions if q not in records and q not in failed]
    assert not lost, f"questions with neither a record nor a question-level failure: {lost}"
    assert records, "not one question produced a record"


def test_no_call_fails_because_of_the_request_format(outcome: Outcome) -> None:
    refused = outcome.proxy.refused()
    # Only the negotiation's refusals of json_schema, at most one per request in flight when it happened, per process.
    assert all("response_format" in s.error or "json_schema" in s.error for s in refused), refused[:3]
    assert len(refused) <= 2 * CONCURRENCY_CAP, refused[:3]
    fell_back = [json.loads(line) for line in outcome.run_log.splitlines() if '"llm.structured_output"' in line]
    assert fell_back and all(e["refused"] == "json_schema" and e["now"] == "json_object" for e in fell_back)
    assert _one(outcome.db, "SELECT COUNT(*) FROM calls WHERE outcome LIKE 'error:%'") == 0


def test_verdicts_are_usable_after_corrections(outcome: Outcome) -> None:
    verify = Templates.load().text("verify")
    verdicts = [m for m in _messages(outcome.db, "Verdict") if isinstance(m, Verdict) and m.attempt == 0]
    unusable = [m for m in _messages(outcome.db, "StageFailed") if isinstance(m, StageFailed) and m.stage == "verify"]
    usable = [v for v in verdicts if not is_placeholder(v.reason, verify) and v.reason not in verify]
    total = len(verdicts) + len(unusable)
    assert total >= 20, f"too few verify deliveries to judge: {total}"
    share = len(usable) / total
    print(f"verify deliveries: {total}, usable verdicts: {len(usable)} ({share:.1%})")
    assert share >= 0.90, f"only {share:.1%} of verify deliveries ended with a usable verdict"


def test_resume_repays_no_completed_call(outcome: Outcome) -> None:
    before = Counter(s.digest for s in outcome.proxy.answered("run") + outcome.proxy.answered("killed"))
    again = Counter(s.digest for s in outcome.proxy.answered("resume"))
    repaid = sum((before & again).values())
    completed_not_recorded = sum(before.values()) - outcome.ok_calls_at_kill
    assert outcome.cached_at_kill > 0 and sum(again.values()) > 0, "the kill landed at the very start or the end"
    assert 0 <= completed_not_recorded <= UNRECORDED_AT_KILL
    assert repaid <= completed_not_recorded, f"{repaid} calls re-paid; only {completed_not_recorded} were in flight"
    assert outcome.proxy.answered("after") == []
    # run and resume each probed the one model on the one endpoint before starting (preflight), and nothing else
    assert [(s.phase, s.status) for s in outcome.proxy.probes()] == [("run", 200), ("resume", 200)]


def test_status_accounting_matches_the_servers_count(outcome: Outcome) -> None:
    ok_total = _one(outcome.db, "SELECT SUM(calls) FROM calls WHERE outcome='ok'")
    assert ok_total - outcome.ok_calls_at_kill == len(outcome.proxy.answered("resume"))  # exact, after the kill
    lost = len(outcome.proxy.answered("run")) - outcome.ok_calls_at_kill              # answered as the kill landed
    assert 0 <= lost <= UNRECORDED_AT_KILL
    total_line = [line for line in outcome.status_text.splitlines() if line.startswith("total")]
    assert total_line and int(total_line[0].split()[1]) == ok_total, outcome.status_text
    fallbacks = _one(outcome.db, "SELECT COUNT(*) FROM messages WHERE type='Ranked' AND label='fallback'")
    shown = [line.split()[-1] for line in outcome.status_text.splitlines() if line.startswith("ranker fallbk")]
    assert shown == ([str(fallbacks)] if fallbacks else [])


def test_no_exported_text_carries_a_nested_think_tag(outcome: Outcome) -> None:
    # ReasonMed's output is one <think>CoT</think>response pair by design; the CoT inside never has a tag.
    for line in (outcome.out / "reasonmed.jsonl").read_text().splitlines():
        output = json.loads(line)["output"]
        assert output.count("<think>") <= 1 and output.count("</think>") <= 1, output[:300]
    for name in ("cotmed.jsonl", "responsemed.jsonl"):
        text = (outcome.out / name).read_text()
        assert "<think>" not in text and "</think>" not in text, name
    for line in (outcome.out / "records.jsonl").read_text().splitlines():
        rec = json.loads(line)
        assert not any(t in rec["cot"] + rec["thinking"] for t in ("<think>", "</think>")), rec["record_id"]
