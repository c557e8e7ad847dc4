"""The writer's split memo changes what a split costs, never what it writes: a warm ``Splitter`` (the very
objects again, equal copies, copies decoded from JSON) gives every message the skeleton and pieces a fresh one
gives, and hands SQLite a piece again until a transaction that stored it has committed."""

from __future__ import annotations

import msgspec

from bus import (CoTGenerated, Judgement, Path, Provenance, Question, QuestionIngested, RecordReady, Summarized,
                 TierAssigned, Verdict, decode, encode)
from bus.messages import SCHEMA_VERSION
from reasonmed_async.store.splitting import Splitter
from reasonmed_async.store.texts import _MARKER, markers

RUN = "run-split"
CONTEXT = ("BACKGROUND: Hypertension in pregnancy complicates 5–10 % of pregnancies. METHODS: 2,412 women were"
           " followed; adjusted OR 2.1 (95 % CI 1.4–3.0) for pre-eclampsia with a raised first-trimester sFlt-1.")
THINK = "<think>\nsFlt-1 is raised early; the OR of 2.1 is significant.\n</think>"
COT = ("1. Restate: does a raised first-trimester sFlt-1 predict pre-eclampsia?\n2. Key details: 2,412 women,"
       " OR 2.1 (95 % CI 1.4–3.0).\n3. The interval excludes 1.\n\\boxed{A}\nFinal answer: A")
REASON = "The CoT reads the odds ratio and its interval correctly; its conclusion follows. \u2713"
RESPONSE = "Yes. A raised first-trimester sFlt-1 doubles the odds of pre-eclampsia (OR 2.1, 95 % CI 1.4–3.0)."


def _flow(q: Question, k: int) -> list:
    """A question's messages as the pipeline builds them: each payload object passed on to the next message."""
    ingested = QuestionIngested(run_id=RUN, question_id=q.id, question=q)
    out: list = [ingested]
    verdicts = []
    for i in range(3):
        gen = Provenance(role="generate", model=f"model-{i}", backend="openai", temperature=0.7, top_p=0.9,
                         template="e6e407931582", prompt_tokens=800 + i, completion_tokens=400 + k)
        path = Path(name=f"model-{i}_1", cot=f"{COT} ({k}/{i})", stated_answer="A", thinking=THINK, provenance=(gen,))
        c = CoTGenerated(run_id=RUN, question_id=q.id, parent_id=ingested.id, question=q, path=path)
        judge = Provenance(role="verify", model="judge", backend="openai", temperature=1.0)
        v = Verdict(run_id=RUN, question_id=q.id, parent_id=c.id, question=q, path=path, verdict="Correct",
                    reason=f"{REASON} [{i}]", judge=judge)
        out += [c, v]
        verdicts.append(v)
    judgements = tuple(Judgement(path=v.path.name, verdict=v.verdict, reason=v.reason, judge=v.judge) for v in verdicts)
    tier = TierAssigned(run_id=RUN, question_id=q.id, question=q, tier="easy", errors=0,
                        correct=tuple(v.path for v in verdicts), judgements=judgements)
    prov = Provenance(role="summarize", model="summarizer", backend="openai", temperature=0.2)
    s = Summarized(run_id=RUN, question_id=q.id, parent_id=tier.id, question=q, tier="easy", path=verdicts[0].path,
                   response=RESPONSE, provenance=prov, verdict_reason=verdicts[0].reason)
    r = RecordReady(run_id=RUN, question_id=q.id, parent_id=s.id, question=q, tier="easy", path=s.path,
                    response=s.response, response_provenance=prov, record_id=f"{q.id}/{s.path.name}", steps=3)
    return out + [tier, s, r]


def _messages() -> list:
    out = []
    for k in range(4):
        q = Question(id=f"pubmedqa-{k}", stem=f"Does a raised sFlt-1 predict pre-eclampsia (cohort {k})?",
                     options=("yes", "no", "maybe"), answer=0, source="pubmedqa", context=CONTEXT, ordinal=k)
        out += _flow(q, k)
    # the same messages again as a resumed run sees them: equal copies, decoded from the journal's JSON
    return out + [decode(encode(m)) for m in out[:12]]


def _fresh(message) -> tuple[bytes, dict]:
    pieces: dict = {}
    return Splitter().message(message, SCHEMA_VERSION, pieces), pieces


def test_a_warm_splitter_writes_what_a_fresh_one_writes_and_stores_each_piece_once_committed():
    messages = _messages()
    warm = Splitter(capacity=8, learns=True)  # small: its memo fills, forgets and refills during the flow
    stored: set[bytes] = set()
    for start in range(0, len(messages), 5):  # one transaction per five messages, as group commits do
        batch = messages[start : start + 5]
        pieces: dict = {}
        skeletons = [warm.message(m, SCHEMA_VERSION, pieces) for m in batch]
        handed = {key for key, _, _ in warm.new_pieces(pieces)}
        expected: dict = {}
        for m, skeleton in zip(batch, skeletons, strict=True):
            fresh_skeleton, fresh_pieces = _fresh(m)
            assert skeleton == fresh_skeleton
            assert all(pieces[k] == v for k, v in fresh_pieces.items() if k in pieces)
            expected.update(fresh_pieces)
        assert handed == set(expected) - stored  # every piece not yet committed, and only those
        warm.transaction_ended(True)
        stored |= handed
    assert len(stored) > 20


def test_pieces_of_a_rolled_back_transaction_are_handed_again():
    q = Question(id="pubmedqa-9", stem="Is it?", options=("yes", "no"), answer=0, context=CONTEXT)
    first, again = _flow(q, 9)[:2]
    splitter = Splitter(learns=True)
    pieces: dict = {}
    splitter.message(first, SCHEMA_VERSION, pieces)
    handed = splitter.new_pieces(pieces)
    assert handed
    splitter.transaction_ended(False)  # rolled back: nothing of it is stored
    pieces = {}
    splitter.message(again, SCHEMA_VERSION, pieces)  # carries the same question
    assert {k for k, _, _ in handed if k in _fresh(first)[1]} & {k for k, _, _ in splitter.new_pieces(pieces)}
    splitter.transaction_ended(True)
    pieces = {}
    splitter.message(first, SCHEMA_VERSION, pieces)
    assert splitter.new_pieces(pieces) == []  # all committed now


def test_a_struct_with_a_dict_is_split_each_time_and_the_same():
    class Note(msgspec.Struct, frozen=True):
        tags: dict
        text: str

    note = Note(tags={"a": COT}, text=REASON)
    splitter = Splitter(learns=True)
    out = [splitter._conv(note, {}) for _ in range(2)]
    assert out[0] == out[1] == Splitter()._conv(Note(tags={"a": COT}, text=REASON), {})


def test_markers_are_found_where_the_reference_pattern_finds_them():
    messages = _messages()
    pieces: dict = {}
    splitter = Splitter()
    samples = [splitter.message(m, SCHEMA_VERSION, pieces) for m in messages]
    samples += [body for _, body in pieces.values()]
    token = b"A" * 16
    samples += [  # a marker only where a JSON value starts, never inside a string or as a key
        b'{"a":"\\u0000T' + token + b'","b":["\\u0000R' + token + b'",1]}',
        b'{"c":"x\\"\\u0000T' + token + b'"}', b'["\\u0000T' + token + b'":1]', b'"\\u0000T' + token + b'"',
        b'{"k":"\\\\u0000T' + token + b'"}', b'{"k":"abc\\u0000T' + token + b'"}', b'[,"\\u0000X' + token + b'"]',
    ]
    found = 0
    for s in samples:
        reference = [(m.start(), m.end(), m[2]) for m in _MARKER.finditer(s)]
        assert markers(s) == reference, s
        found += len(reference)
    assert found > len(messages)
