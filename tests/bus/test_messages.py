"""Typed messages: codec round trips, schema version, validation, deterministic ids."""

from __future__ import annotations

import json

import msgspec
import pytest

from bus import (
    ALL_MESSAGES,
    SCHEMA_VERSION,
    CoTGenerated,
    Judgement,
    FailureKind,
    Message,
    Path,
    Provenance,
    Question,
    QuestionIngested,
    Ranked,
    RecordReady,
    Refined,
    SchemaMismatch,
    Stage,
    Scored,
    StageFailed,
    Summarized,
    TierAssigned,
    Verdict,
    decode,
    encode,
)

RUN = "run-1"
Q = Question(id="q1", stem="Which organ makes insulin?", options=("Liver", "Pancreas", "Spleen", "Kidney"),
             answer=1, source="generic", context="ctx", ordinal=3)
PROV = Provenance(role="generate", model="m", backend="sim", temperature=0.7, top_p=0.9, seed=1,
                  template="abc", prompt_tokens=10, completion_tokens=20)
PATH = Path(name="qwen_1", cot="step 1 ... answer B", stated_answer="B", thinking="hmm", provenance=(PROV,))
PATH2 = Path(name="qwen_2", cot="step 1 ... answer A", stated_answer="A")
JUDGE = Judgement(path="qwen_2", verdict="Error", reason="wrong organ")
JUDGE_NONE = Judgement(path="qwen_3", verdict=None, reason="unparseable", stage=Stage.VERIFY,
                       kind=FailureKind.UNPARSEABLE)
COMMON = {"run_id": RUN, "question_id": Q.id, "parent_id": "p0"}


def _samples() -> dict[type[Message], Message]:
    return {
        QuestionIngested: QuestionIngested(run_id=RUN, question_id=Q.id, question=Q),
        CoTGenerated: CoTGenerated(**COMMON, question=Q, path=PATH),
        Verdict: Verdict(**COMMON, question=Q, path=PATH, verdict="Correct", reason="fine", attempt=1,
                         tier="medium", error_reasons=(JUDGE,)),
        StageFailed: StageFailed(**COMMON, stage=Stage.VERIFY, kind=FailureKind.CALL_FAILED, error_class="ServerError",
                                 message="boom", attempts=3, path="qwen_1",
                                 failed_type="CoTGenerated"),
        TierAssigned: TierAssigned(**COMMON, question=Q, tier="medium", errors=5, correct=(PATH,),
                                   judgements=(JUDGE, JUDGE_NONE)),
        Ranked: Ranked(**COMMON, question=Q, tier="easy", chosen=(PATH, PATH2), reasons={"qwen_1": "clear"},
                       error_reasons=(JUDGE,), called=False),
        Refined: Refined(**COMMON, question=Q, tier="medium", path=PATH, source_path="qwen_1", attempt=2,
                         error_reasons=(JUDGE,)),
        Summarized: Summarized(**COMMON, question=Q, tier="easy", path=PATH, response="B. Pancreas",
                               provenance=PROV, verdict_reason="ok"),
        RecordReady: RecordReady(**COMMON, question=Q, tier="difficult", path=PATH, response="B",
                                 response_provenance=PROV, record_id="r-1"),
        Scored: Scored(**COMMON, target_id="r-1", score=7, justification="good", provenance=PROV),
    }


SAMPLES = _samples()


def test_every_message_type_has_a_sample():
    assert set(SAMPLES) == set(ALL_MESSAGES)


@pytest.mark.parametrize("kind", ALL_MESSAGES, ids=lambda k: k.__name__)
def test_codec_round_trip(kind: type[Message]):
    message = SAMPLES[kind]
    data = encode(message)
    envelope = json.loads(data)
    assert envelope["v"] == SCHEMA_VERSION
    assert envelope["m"]["type"] == kind.__name__
    back = decode(data)
    assert type(back) is kind
    assert back == message
    assert back.id == message.id
    assert decode(data.decode()) == message  # str input too
    assert encode(back) == data


@pytest.mark.parametrize("version", [0, SCHEMA_VERSION + 1, 99])
@pytest.mark.parametrize("kind", [QuestionIngested, Verdict, Scored], ids=lambda k: k.__name__)
def test_decode_other_schema_version_raises(kind: type[Message], version: int):
    envelope = json.loads(encode(SAMPLES[kind]))
    envelope["v"] = version
    with pytest.raises(SchemaMismatch, match=f"v{version}"):
        decode(json.dumps(envelope).encode())


def test_decode_rejects_invalid_payload():
    envelope = json.loads(encode(SAMPLES[Scored]))
    envelope["m"]["score"] = 11
    with pytest.raises(msgspec.ValidationError, match="score"):
        decode(json.dumps(envelope))


# -- validation on construction ----------------------------------------------------------------

def _verdict(**kw):
    return Verdict(**{**COMMON, "question": Q, "path": PATH, "verdict": "Correct", "reason": "r", **kw})


def _scored(**kw):
    return Scored(**{**COMMON, "target_id": "r", "score": 5, "justification": "j", "provenance": PROV, **kw})


def _question(**kw):
    return Question(**{"id": "q", "stem": "stem?", "options": ("a", "b"), "answer": 0, **kw})


INVALID = [
    pytest.param(lambda: _verdict(verdict="Maybe"), "Correct or Error", id="verdict-label"),
    pytest.param(lambda: _verdict(verdict="correct"), "Correct or Error", id="verdict-label-case"),
    pytest.param(lambda: _verdict(attempt=-1), "attempt", id="verdict-negative-attempt"),
    pytest.param(lambda: _scored(score=0), "1..10", id="score-0"),
    pytest.param(lambda: _scored(score=11), "1..10", id="score-11"),
    pytest.param(lambda: _scored(run_id=""), "run_id", id="empty-run-id"),
    pytest.param(lambda: CoTGenerated(run_id="r", question_id="", question=Q, path=PATH), "question_id",
                 id="empty-question-id"),
    pytest.param(lambda: _question(answer=2), "answer index", id="answer-out-of-range"),
    pytest.param(lambda: _question(answer=-1), "answer index", id="answer-negative"),
    pytest.param(lambda: _question(options=("only",), answer=0), "options", id="too-few-options"),
    pytest.param(lambda: _question(options=tuple("abcdefghijk")), "options", id="too-many-options"),
    pytest.param(lambda: _question(id=""), "id is empty", id="question-empty-id"),
    pytest.param(lambda: _question(stem="  "), "stem", id="question-empty-stem"),
    pytest.param(lambda: Path(name="", cot="x"), "path name", id="path-empty-name"),
    pytest.param(lambda: QuestionIngested(run_id=RUN, question_id="other", question=Q), "question_id",
                 id="ingested-id-mismatch"),
    pytest.param(lambda: StageFailed(**COMMON, stage="verify", kind=FailureKind.INTERNAL, message="x"),
                 "must be a Stage", id="failed-stage-as-text"),
    pytest.param(lambda: StageFailed(**COMMON, stage=Stage.VERIFY, kind="truncated", message="x"),
                 "must be a Stage", id="failed-kind-as-text"),
    pytest.param(lambda: StageFailed(**COMMON, stage=Stage.VERIFY, kind=FailureKind.INTERNAL, message=""),
                 "message is required", id="failed-no-message"),
    pytest.param(lambda: TierAssigned(**COMMON, question=Q, tier="hard", errors=1, correct=(), judgements=()),
                 "tier", id="unknown-tier"),
]


@pytest.mark.parametrize(("build", "match"), INVALID)
def test_construction_validates(build, match):
    with pytest.raises(ValueError, match=match):
        build()


@pytest.mark.parametrize("score", [1, 5, 10])
def test_valid_scores(score):
    assert _scored(score=score).score == score


# -- deterministic ids ----------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ALL_MESSAGES, ids=lambda k: k.__name__)
def test_id_is_deterministic(kind: type[Message]):
    a, b = SAMPLES[kind], _samples()[kind]
    assert a is not b
    assert a.id == b.id
    assert decode(encode(a)).id == a.id


@pytest.mark.parametrize("kind", ALL_MESSAGES, ids=lambda k: k.__name__)
@pytest.mark.parametrize("field", ["run_id", "question_id", "parent_id"])
def test_id_depends_on_run_question_and_parent(kind: type[Message], field: str):
    message = SAMPLES[kind]
    if kind is QuestionIngested and field == "question_id":
        changed = QuestionIngested(run_id=RUN, question_id="q2", question=msgspec.structs.replace(Q, id="q2"))
    else:
        changed = msgspec.structs.replace(message, **{field: "other"})
    assert changed.id != message.id


#: ids as the stored databases hold them (computed by the tree before ids were cached): they must not change
STORED_IDS = {
    QuestionIngested: "b51e96cf6d63a76761e6e4c8", CoTGenerated: "ab3937244a14d1aaf7cfd537",
    Verdict: "3243562608ea49a9b7d09703", StageFailed: "83035f07f2e58e7c6450eded",
    TierAssigned: "f373c5041bd50f26a237cd8b", Ranked: "13f1f2d192bf28d62bf5acd8", Refined: "5f53724d485f1d2153a86b54",
    Summarized: "4eabe69c627c431875877bbf", RecordReady: "d24b7ed89298e2b1056e99b2", Scored: "025ae5b22c531799c7219a4c",
}


@pytest.mark.parametrize("kind", ALL_MESSAGES, ids=lambda k: k.__name__)
def test_a_cached_id_is_the_stored_id_and_not_part_of_the_message(kind: type[Message]):
    fresh = _samples()[kind]
    before = encode(fresh)
    assert fresh.id == STORED_IDS[kind] and fresh.id == STORED_IDS[kind]  # computed once, then cached
    assert encode(fresh) == before and fresh == _samples()[kind]  # the cache is neither encoded nor compared
    assert msgspec.structs.replace(fresh, parent_id="elsewhere").id != fresh.id  # a changed copy has its own


def test_ids_differ_across_types_with_same_cause():
    ids = {m.id for m in SAMPLES.values()}
    assert len(ids) == len(SAMPLES)


def _path(name: str, cot: str = "c") -> Path:
    return Path(name=name, cot=cot)


SIBLINGS = [
    pytest.param(
        CoTGenerated(**COMMON, question=Q, path=_path("qwen_1")),
        CoTGenerated(**COMMON, question=Q, path=_path("qwen_2")),
        id="cot-two-paths",
    ),
    pytest.param(
        Summarized(**COMMON, question=Q, tier="easy", path=_path("qwen_1"), response="r", provenance=PROV),
        Summarized(**COMMON, question=Q, tier="easy", path=_path("llama_2"), response="r", provenance=PROV),
        id="summarized-two-paths-same-parent",
    ),
    pytest.param(
        Refined(**COMMON, question=Q, tier="medium", path=_path("qwen_1"), source_path="qwen_1", attempt=1),
        Refined(**COMMON, question=Q, tier="medium", path=_path("qwen_1"), source_path="qwen_1", attempt=2),
        id="refined-attempt-1-vs-2",
    ),
    pytest.param(
        Refined(**COMMON, question=Q, tier="medium", path=_path("qwen_1"), source_path="qwen_1", attempt=1),
        Refined(**COMMON, question=Q, tier="medium", path=_path("qwen_2"), source_path="qwen_2", attempt=1),
        id="refined-two-source-paths",
    ),
    pytest.param(
        Verdict(**COMMON, question=Q, path=PATH, verdict="Error", reason="r", attempt=1),
        Verdict(**COMMON, question=Q, path=PATH, verdict="Error", reason="r", attempt=2),
        id="verdict-attempts",
    ),
    pytest.param(
        Verdict(**COMMON, question=Q, path=PATH, verdict="Error", reason="r", attempt=0),
        Verdict(**COMMON, question=Q, path=PATH, verdict="Error", reason="r", attempt=1),
        id="verdict-first-pass-vs-reverify",
    ),
    pytest.param(
        StageFailed(**COMMON, stage=Stage.VERIFY, kind=FailureKind.CALL_FAILED, message="x", path="qwen_1"),
        StageFailed(**COMMON, stage=Stage.VERIFY, kind=FailureKind.CALL_FAILED, message="x", path="qwen_2"),
        id="stagefailed-two-paths",
    ),
    pytest.param(
        StageFailed(**COMMON, stage=Stage.VERIFY, kind=FailureKind.CALL_FAILED, message="x", path="qwen_1"),
        StageFailed(**COMMON, stage=Stage.REVERIFY, kind=FailureKind.CALL_FAILED, message="x", path="qwen_1"),
        id="stagefailed-two-stages",
    ),
]


@pytest.mark.parametrize(("a", "b"), SIBLINGS)
def test_siblings_have_distinct_ids(a: Message, b: Message):
    assert a.parent_id == b.parent_id and a.run_id == b.run_id and a.question_id == b.question_id
    assert a.id != b.id


SAME = [
    pytest.param(
        CoTGenerated(**COMMON, question=Q, path=_path("qwen_1", "first text")),
        CoTGenerated(**COMMON, question=Q, path=_path("qwen_1", "regenerated different text")),
        id="cot-same-path-different-text",
    ),
    pytest.param(
        Verdict(**COMMON, question=Q, path=PATH, verdict="Correct", reason="a"),
        Verdict(**COMMON, question=Q, path=PATH, verdict="Error", reason="b"),
        id="verdict-retried-judge-changes-mind",
    ),
    pytest.param(
        StageFailed(**COMMON, stage=Stage.VERIFY, kind=FailureKind.CALL_FAILED, message="first error", attempts=1, path="p"),
        StageFailed(**COMMON, stage=Stage.VERIFY, kind=FailureKind.CALL_FAILED, message="other error", attempts=3, path="p"),
        id="stagefailed-different-reason",
    ),
    pytest.param(
        Scored(**COMMON, target_id="r", score=3, justification="a", provenance=PROV),
        Scored(**COMMON, target_id="r", score=9, justification="b", provenance=PROV),
        id="scored-different-score",
    ),
]


@pytest.mark.parametrize(("a", "b"), SAME)
def test_reproduced_message_keeps_its_id(a: Message, b: Message):
    """The same cause produced twice (a retry, a resume) is one message, whatever its content."""
    assert a != b
    assert a.id == b.id


def test_messages_are_frozen():
    with pytest.raises(AttributeError):
        SAMPLES[Verdict].verdict = "Error"  # type: ignore[misc]


def test_question_properties():
    assert Q.answer_letter == "B"
    assert Q.answer_text == "Pancreas"
    tier = SAMPLES[TierAssigned]
    assert isinstance(tier, TierAssigned)
    assert tier.error_reasons == (JUDGE,)
