"""Each text stored once (schema v3): a question, a CoT, a reason or a response is one ``texts`` row however many
messages and cached completions carry it; every message and completion reads back as it was written."""

from __future__ import annotations

import hashlib
import json
import sqlite3

import pytest

from bus import CoTGenerated, Judgement, Path, Provenance, Question, QuestionIngested, RecordReady, Routed, Verdict
from reasonmed_async.store.checkpoint import CheckpointStore, DamageError
from reasonmed_async.store.reading import MESSAGE_COLUMNS
from reasonmed_async.store.texts import text_digest

RUN = "run-t"
KEY = hashlib.sha256(b"key-1").hexdigest()  # a cache key as ChatRequest.cache_key makes one
# a PubMedQA-like question: an abstract as context, the real shape of the stored texts
CONTEXT = ("BACKGROUND: Reliable longitudinal data of patients with functional somatic symptoms in general practice"
           " are lacking. AIMS: To identify distinctive features in patients with persistent symptoms. "
           "METHODS: A cohort of 1,203 adults followed for 24 months; Kaplan–Meier estimates, HR 1.8 (95% CI 1.2–2.6).")
STEM = "Do patients with persistent functional somatic symptoms in general practice differ from the others?"
THINK = "<think>\nThe cohort shows HR 1.8 — a real difference.\n</think>\n"
COT = ("1. Restate the question: does persistence set these patients apart?\n2. Key details: 1,203 adults, 24 months,"
       " HR 1.8 (95% CI 1.2–2.6).\n3. Conclusion: yes.\n\\boxed{A}\nFinal answer: A")
REASON = "The CoT reads the hazard ratio correctly and its conclusion follows from the cohort's result. ✓"
RESPONSE = "Yes: persistent symptoms are associated with distinct features (HR 1.8) over 24 months of follow-up."


def _question() -> Question:
    return Question(id="pubmedqa-1", stem=STEM, options=("yes", "no", "maybe"), answer=0, source="pubmedqa",
                    context=CONTEXT)


def _flow() -> list:
    q = _question()
    gen = Provenance(role="generate", model="qwen2.5-72b-instruct", backend="openai", temperature=0.7, top_p=0.9,
                     template="e6e407931582", prompt_tokens=812, completion_tokens=402)
    path = Path(name="qwen_1", cot=COT, stated_answer="A", thinking=THINK, provenance=(gen,))
    ingested = QuestionIngested(run_id=RUN, question_id=q.id, question=q)
    cot = CoTGenerated(run_id=RUN, question_id=q.id, parent_id=ingested.id, question=q, path=path)
    judge = Provenance(role="verify", model="qwen2.5-72b-instruct", backend="openai", temperature=1.0)
    verdict = Verdict(run_id=RUN, question_id=q.id, parent_id=cot.id, question=q, path=path, verdict="Correct",
                      reason=REASON, judge=judge,
                      error_reasons=(Judgement(path="qwen_2", verdict="Error", reason=REASON + " (not here)"),))
    record = RecordReady(run_id=RUN, question_id=q.id, parent_id=verdict.id, question=q, tier="easy", path=path,
                         response=RESPONSE, response_provenance=judge, record_id=f"{q.id}/qwen_1", steps=3)
    return [ingested, cot, verdict, record]


def _text_rows(db, text: str) -> int:
    con = sqlite3.connect(db)
    try:
        key = text_digest(text)
        return con.execute("SELECT COUNT(*) FROM texts WHERE digest=?", (key,)).fetchone()[0]
    finally:
        con.close()


async def test_every_message_reads_back_as_written_and_each_text_is_stored_once(tmp_path):
    db = tmp_path / "t.db"
    flow = _flow()
    async with await CheckpointStore.open(db) as store:
        await store.commit([Routed(m, ("next",)) for m in flow])
        completion = json.dumps({"text": THINK + COT, "finish_reason": "stop", "prompt_tokens": 812,
                                 "completion_tokens": 402, "more": [{"text": COT}]}).encode()
        await store.cache_put(KEY, "qwen2.5-72b-instruct", completion, "generate", "http://127.0.0.1:1", 812, 402)
        loaded = await store.load(f"SELECT {MESSAGE_COLUMNS} FROM messages ORDER BY seq")
        assert [m for _, m in loaded] == flow
        assert json.loads(await store.cache_get(KEY)) == json.loads(completion)
        pending = [m async for _, m in store.pending("next", None)]
        assert pending == flow
    for text in (CONTEXT, STEM, COT, REASON, RESPONSE):  # carried by up to four messages and the cache: one row
        assert _text_rows(db, text) == 1, text
    con = sqlite3.connect(db)
    payloads = b"".join(p for (p,) in con.execute("SELECT payload FROM messages UNION ALL SELECT payload FROM llm_cache"))
    con.close()
    assert STEM.encode() not in payloads and b"Restate the question" not in payloads  # the rows reference them


async def test_a_stored_text_that_is_gone_is_damage_named_with_its_message(tmp_path):
    db = tmp_path / "t.db"
    flow = _flow()
    async with await CheckpointStore.open(db) as store:
        await store.commit([Routed(m, ("next",)) for m in flow])
    con = sqlite3.connect(db)
    con.execute("DELETE FROM texts WHERE digest=?", (text_digest(RESPONSE),))
    con.commit()
    con.close()
    async with await CheckpointStore.open(db) as store:
        with pytest.raises(DamageError, match=rf"texts .*needed by message {flow[-1].id} of question pubmedqa-1"):
            await store.load(f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE type='RecordReady'")
        assert store.damage is not None  # nothing more is written
