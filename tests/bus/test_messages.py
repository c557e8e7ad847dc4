"""Typed messages: codec round trips, schema version, validation, frozen structs.  Their ids: test_message_ids.py."""

from __future__ import annotations

import json

import msgspec
import pytest

from bus import (
    ALL_MESSAGES,
    SCHEMA_VERSION,
    CoTGenerated,
    FailureKind,
    Message,
    Path,
    Question,
    QuestionIngested,
    SchemaMismatch,
    Scored,
    Stage,
    StageFailed,
    TierAssigned,
    Verdict,
    decode,
    encode,
)
from message_samples import COMMON, JUDGE, PATH, PROV, Q, RUN, SAMPLES


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


def test_messages_are_frozen():
    with pytest.raises(AttributeError):
        SAMPLES[Verdict].verdict = "Error"  # type: ignore[misc]


def test_question_properties():
    assert Q.answer_letter == "B"
    assert Q.answer_text == "Pancreas"
    tier = SAMPLES[TierAssigned]
    assert isinstance(tier, TierAssigned)
    assert tier.error_reasons == (JUDGE,)
