"""Message ids: deterministic, made of the run, question and parent, stable against the stored databases, distinct
for siblings, kept by a message produced again (a retry, a resume)."""

from __future__ import annotations

import msgspec
import pytest

from bus import (
    ALL_MESSAGES,
    CoTGenerated,
    FailureKind,
    Message,
    Path,
    QuestionIngested,
    Ranked,
    RecordReady,
    Refined,
    Scored,
    Stage,
    StageFailed,
    Summarized,
    TierAssigned,
    Verdict,
    decode,
    encode,
)
from message_samples import COMMON, PATH, PROV, Q, RUN, SAMPLES, _samples


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
