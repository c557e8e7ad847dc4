"""Tests of the question loaders: generic JSONL / JSON, PubMedQA, and every error."""

from __future__ import annotations

import hashlib
import json
import pickle
from collections import Counter
from pathlib import Path

import pytest

from bus.messages import Question
from reasonmed_async.loaders.dispatch import InputError, content_id, load_questions

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples" / "questions.jsonl"
PUBMEDQA = Path(__file__).resolve().parents[3] / "shared" / "data" / "pubmedqa_ori_pqal.json"


def q(stem: str = "Which vitamin deficiency causes scurvy?", **extra) -> dict:
    rec = {"question": stem, "options": ["Vitamin A", "Vitamin C", "Vitamin D", "Vitamin K"], "answer": "B"}
    rec.update(extra)
    return rec


def jsonl(*records) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def write(tmp_path: Path, name: str, content: str | bytes) -> Path:
    path = tmp_path / name
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding="utf-8")
    return path


def pubmed(question="Is X associated with Y?", contexts=("First part.", "Second part."), labels=("BACKGROUND", "RESULTS"),
           decision="yes", **extra) -> dict:
    rec = {"QUESTION": question, "CONTEXTS": contexts if isinstance(contexts, str) else list(contexts), "final_decision": decision, "LONG_ANSWER": "..."}
    if labels is not None:
        rec["LABELS"] = list(labels)
    rec.update(extra)
    return rec


# -- valid inputs ---------------------------------------------------------


def test_generic_jsonl(tmp_path):
    path = write(tmp_path, "qs.jsonl", jsonl(
        q(id="a-1", context="  A sailor on a long voyage.  ", source="mine"),
        "",
        q("Which organ produces insulin?", options=["Liver", "Pancreas", "Spleen"], answer="pancreas"),
    ) + "\n   \n")
    first, second = load_questions(path)
    assert first == Question(id="a-1", stem="Which vitamin deficiency causes scurvy?",
                             options=("Vitamin A", "Vitamin C", "Vitamin D", "Vitamin K"), answer=1,
                             source="mine", context="A sailor on a long voyage.", ordinal=0)
    assert second.answer_text == "Pancreas" and second.answer_letter == "B"
    assert second.source == "generic" and second.context == "" and second.ordinal == 1
    assert second.id == content_id(second.stem, second.options)


def test_generic_json_list(tmp_path):
    path = write(tmp_path, "qs.json", json.dumps([q(id="x"), q("Another stem?", answer="Vitamin D")], indent=2))
    questions = load_questions(path)
    assert [x.id for x in questions][0] == "x"
    assert [x.answer for x in questions] == [1, 2]
    assert [x.ordinal for x in questions] == [0, 1]


@pytest.mark.parametrize("name", ["qs.json", "qs.txt", "qs"])
def test_format_is_told_from_content_not_extension(tmp_path, name):
    path = write(tmp_path, name, jsonl(q(id="1"), q(id="2"), q(id="3")))
    assert [x.id for x in load_questions(path)] == ["1", "2", "3"]
    path = write(tmp_path, "list" + name, json.dumps([q(id="1"), q(id="2")]))
    assert [x.id for x in load_questions(path)] == ["1", "2"]


def test_single_line_jsonl_and_bom_and_line_separator(tmp_path):
    path = write(tmp_path, "one.jsonl", "\ufeff" + json.dumps(q(context="a\u2028b"), ensure_ascii=False) + "\n")
    (only,) = load_questions(path)
    assert only.context == "a\u2028b"


def test_medqa_style_option_dict(tmp_path):
    rec = {"question": "Stem?", "options": {"A": "one", "B": "two", "C": "three"}, "answer": "three",
           "answer_idx": "C", "meta_info": "step1"}
    (only,) = load_questions(write(tmp_path, "medqa.jsonl", jsonl(rec)))
    assert only.options == ("one", "two", "three") and only.answer == 2


def test_pubmedqa_sample(tmp_path):
    data = {
        "101": pubmed(decision="yes"),
        "102": pubmed("Does Z help?", contexts=["Only one."], labels=None, decision="No"),
        "103": pubmed(decision="maybe", labels=["METHODS", ""]),
    }
    path = write(tmp_path, "ori_pqal.json", json.dumps(data, indent=4))
    a, b, c = load_questions(path)
    assert a.id == "pubmedqa-101" and a.source == "pubmedqa"
    assert a.options == ("yes", "no", "maybe") and a.answer_text == "yes"
    assert a.context == "BACKGROUND: First part.\nRESULTS: Second part."
    assert b.id == "pubmedqa-102" and b.answer_text == "no" and b.context == "Only one."
    assert c.answer_text == "maybe" and c.context == "METHODS: First part.\nSecond part."
    assert [x.ordinal for x in (a, b, c)] == [0, 1, 2]


def test_real_pubmedqa_file():
    if not PUBMEDQA.exists():
        pytest.skip(f"{PUBMEDQA} is not here")
    questions = load_questions(PUBMEDQA)
    assert len(questions) == 1000
    assert len({x.id for x in questions}) == 1000
    assert all(x.id.startswith("pubmedqa-") and x.source == "pubmedqa" for x in questions)
    assert {x.answer_text for x in questions} == {"yes", "no", "maybe"}
    assert all(x.context.strip() and x.stem.strip() for x in questions)
    assert [x.ordinal for x in questions] == list(range(1000))
    assert len(load_questions(PUBMEDQA, limit=10)) == 10


def test_examples_file():
    questions = load_questions(EXAMPLES)
    assert len(questions) == 30
    assert [x.id for x in questions] == [f"demo-{i:03d}" for i in range(1, 31)]
    sizes = Counter(len(x.options) for x in questions)
    assert sizes[5] >= 5 and sizes[3] >= 5
    assert all(x.options == ("yes", "no", "maybe") and x.context for x in questions if len(x.options) == 3)
    raw = [json.loads(line) for line in EXAMPLES.read_text().splitlines() if line.strip()]
    assert any(len(r["answer"]) == 1 for r in raw) and any(len(r["answer"]) > 1 for r in raw)


@pytest.mark.parametrize(
    ("options", "answer", "index"),
    [
        (["alpha", "beta", "gamma", "delta"], "C", 2),
        (["alpha", "beta", "gamma", "delta"], "c", 2),
        (["alpha", "beta", "gamma", "delta"], " D ", 3),
        (["alpha", "beta", "gamma", "delta"], "gamma", 2),
        (["alpha", "beta", "gamma", "delta"], "  GAMMA ", 2),
        (["  alpha  ", "beta"], "alpha", 0),
        (["C", "A", "B"], "A", 1),  # option text wins over the letter
        (["yes", "no", "maybe"], "Maybe", 2),
        ([f"o{i}" for i in range(10)], "J", 9),
    ],
)
def test_answer_as_letter_or_text(tmp_path, options, answer, index):
    (only,) = load_questions(write(tmp_path, "a.jsonl", jsonl(q(options=options, answer=answer))))
    assert only.answer == index
    assert only.options == tuple(o.strip() for o in options)


def test_limit(tmp_path):
    path = write(tmp_path, "qs.jsonl", jsonl(*(q(f"Stem {i}?") for i in range(5))))
    assert [x.stem for x in load_questions(path, limit=2)] == ["Stem 0?", "Stem 1?"]
    assert len(load_questions(path, limit=0)) == 0
    assert len(load_questions(path, limit=50)) == 5
    with pytest.raises(ValueError):
        load_questions(path, limit=-1)
    bad = write(tmp_path, "bad.jsonl", jsonl(q("A?"), q("B?"), q("C?", answer="Z")))
    with pytest.raises(InputError, match=r"bad\.jsonl:3: field 'answer'"):
        load_questions(bad, limit=1)  # the whole file is validated first


def test_stable_content_ids(tmp_path):
    path = write(tmp_path, "qs.jsonl", jsonl(q("First?"), q("Second?"), q("Third?", id="given")))
    one, two = load_questions(path), load_questions(path)
    assert [x.id for x in one] == [x.id for x in two]
    assert one[2].id == "given"
    expected = hashlib.blake2b(
        ("First?" + "\x1f" + "\x1f".join(one[0].options)).encode(), digest_size=8).hexdigest()
    assert one[0].id == "q-" + expected
    assert one[0].id != one[1].id
    changed = load_questions(write(tmp_path, "changed.jsonl", jsonl(q("First, changed?"), q("Second?"))))
    assert changed[0].id != one[0].id and changed[1].id == one[1].id
    reordered = load_questions(write(tmp_path, "r.jsonl", jsonl(q("First?", options=["Vitamin C", "Vitamin A"]))))
    assert reordered[0].id != one[0].id


# -- errors ---------------------------------------------------------------

TOO_MANY = [f"option {i}" for i in range(11)]

MALFORMED = [
    # (case id, file name, content, location text, field)
    ("jsonl-broken-json", "bad.jsonl", jsonl(q(), '{"question": "Stem?", "options": ['), ":2", None),
    ("jsonl-not-object", "bad.jsonl", jsonl(q(), q("B?"), "[1, 2]"), ":3", None),
    ("jsonl-string-record", "bad.jsonl", jsonl('"just text"'), ":1", None),
    ("missing-question", "bad.jsonl", jsonl({"options": ["a", "b"], "answer": "A"}), ":1", "question"),
    ("missing-options", "bad.jsonl", jsonl(q(), {"question": "Q?", "answer": "A"}), ":2", "options"),
    ("missing-answer", "bad.jsonl", jsonl({"question": "Q?", "options": ["a", "b"]}), ":1", "answer"),
    ("question-not-string", "bad.jsonl", jsonl(q(), q("B?"), q(question=42)), ":3", "question"),
    ("question-empty", "bad.jsonl", jsonl(q(question="   ")), ":1", "question"),
    ("options-not-list", "bad.jsonl", jsonl(q(options="a, b, c")), ":1", "options"),
    ("options-empty", "bad.jsonl", jsonl(q(options=[])), ":1", "options"),
    ("options-one", "bad.jsonl", jsonl(q(options=["only"], answer="A")), ":1", "options"),
    ("options-eleven", "bad.jsonl", jsonl(q(options=TOO_MANY, answer="A")), ":1", "options"),
    ("option-empty", "bad.jsonl", jsonl(q(options=["a", "", "c"])), ":1", "options"),
    ("option-blank", "bad.jsonl", jsonl(q(options=["a", "  ", "c"])), ":1", "options"),
    ("option-not-string", "bad.jsonl", jsonl(q(options=["a", 2, "c"])), ":1", "options"),
    ("option-duplicate", "bad.jsonl", jsonl(q(options=["Aspirin", "Heparin", "aspirin "])), ":1", "options"),
    ("option-dict-keys", "bad.jsonl", jsonl(q(options={"A": "x", "C": "y"})), ":1", "options"),
    ("answer-letter-out-of-range", "bad.jsonl", jsonl(q(), q("B?"), q("C?", answer="E")), ":3", "answer"),
    ("answer-unknown-text", "bad.jsonl", jsonl(q(answer="Vitamin E")), ":1", "answer"),
    ("answer-not-string", "bad.jsonl", jsonl(q(answer=1)), ":1", "answer"),
    ("answer-empty", "bad.jsonl", jsonl(q(answer="")), ":1", "answer"),
    ("id-empty", "bad.jsonl", jsonl(q(id="")), ":1", "id"),
    ("id-not-string", "bad.jsonl", jsonl(q(id=7)), ":1", "id"),
    ("context-not-string", "bad.jsonl", jsonl(q(context=["a"])), ":1", "context"),
    ("source-empty", "bad.jsonl", jsonl(q(source="")), ":1", "source"),
    ("duplicate-key", "bad.jsonl", jsonl('{"question": "Q?", "options": ["a", "b"], "answer": "A", "answer": "B"}'),
     ":1", "answer"),
    ("duplicate-given-id", "bad.jsonl", jsonl(q(id="x"), q("B?", id="y"), q("C?", id="x")), ":3", "id"),
    ("duplicate-content-id", "bad.jsonl", jsonl(q(), q("Other?"), "", q()), ":4", "id"),
    ("not-utf8", "bad.jsonl", jsonl(q()).encode() + b'{"question": "\xff"}\n', ":2", None),
    ("json-broken", "bad.json", '[\n  {"question": "Q?",\n   "options": ["a", "b"],\n   "answer": }\n]\n', ":4", None),
    ("json-not-object", "bad.json", json.dumps([q(), "text"]), "record 2", None),
    ("json-too-few-options", "bad.json", json.dumps([q(), q("B?"), q("C?", options=["a"])]), "record 3", "options"),
    ("json-duplicate-id", "bad.json", json.dumps([q(id="x"), q("B?", id="x")], indent=1), "record 2", "id"),
    ("json-scalar", "bad.json", "42\n", ":1", None),
    ("pubmed-not-object", "pq.json", json.dumps({"1": pubmed(), "2": ["x"]}), "record 'pmid 2'", None),
    ("pubmed-missing-question", "pq.json", json.dumps({"1": pubmed(), "2": {"CONTEXTS": ["c"], "final_decision": "no"}}),
     "record 'pmid 2'", "QUESTION"),
    ("pubmed-contexts-not-list", "pq.json", json.dumps({"9": pubmed(contexts="text", labels=None)}),
     "record 'pmid 9'", "CONTEXTS"),
    ("pubmed-contexts-empty", "pq.json", json.dumps({"9": pubmed(contexts=[], labels=None)}), "record 'pmid 9'",
     "CONTEXTS"),
    ("pubmed-labels-mismatch", "pq.json", json.dumps({"9": pubmed(labels=["ONLY"])}), "record 'pmid 9'", "LABELS"),
    ("pubmed-bad-decision", "pq.json", json.dumps({"1": pubmed(), "123": pubmed(decision="perhaps")}),
     "record 'pmid 123'", "final_decision"),
    ("pubmed-missing-decision", "pq.json", json.dumps({"5": {"QUESTION": "Q?", "CONTEXTS": ["c"]}}),
     "record 'pmid 5'", "final_decision"),
    ("pubmed-duplicate-pmid", "pq.json", '{"7": %s, "7": %s}' % (json.dumps(pubmed()), json.dumps(pubmed())),
     "record 'pmid 7'", "id"),
]


@pytest.mark.parametrize(("name", "content", "where", "field"), [c[1:] for c in MALFORMED],
                         ids=[c[0] for c in MALFORMED])
def test_malformed_input(tmp_path, name, content, where, field):
    path = write(tmp_path, name, content)
    with pytest.raises(InputError) as info:
        load_questions(path)
    err = info.value
    text = str(err)
    assert err.file == str(path)
    assert text.startswith(str(path) + where) or text.startswith(f"{path}: {where}")
    assert err.line is not None
    assert (err.record if isinstance(err.record, str) else str(err.line)) in text
    assert err.message and text.endswith(err.message)
    if field is None:
        assert err.field is None and "field '" not in text
    else:
        assert err.field == field and f"field '{field}'" in text


def test_error_messages_read_well(tmp_path):
    bad = write(tmp_path, "bad.jsonl", jsonl(q(), q("B?"), q("C?", answer="E")))
    with pytest.raises(InputError) as info:
        load_questions(bad)
    assert str(info.value).startswith(f"{bad}:3: field 'answer': 'E' is not among the 4 options")
    assert (info.value.line, info.value.field) == (3, "answer")

    dup = write(tmp_path, "dup.jsonl", jsonl(q(id="x"), "", q("B?", id="x")))
    with pytest.raises(InputError, match=r"duplicate id 'x' \(first at line 1, again at line 3\)"):
        load_questions(dup)

    pq = write(tmp_path, "data.json", json.dumps({"123": pubmed(decision="perhaps")}))
    with pytest.raises(InputError) as info:
        load_questions(pq)
    assert str(info.value) == f"{pq}: record 'pmid 123': field 'final_decision': 'perhaps' is not yes, no or maybe"

    restored = pickle.loads(pickle.dumps(info.value))
    assert str(restored) == str(info.value) and restored.field == "final_decision"


@pytest.mark.parametrize("content", ["", "\n\n  \n", "[]", "{}", "[]\n"], ids=["empty", "blank", "list", "dict", "list-nl"])
def test_no_questions(tmp_path, content):
    path = write(tmp_path, "empty.json", content)
    with pytest.raises(InputError) as info:
        load_questions(path)
    assert str(path) in str(info.value) and "no questions" in str(info.value)


def test_missing_file(tmp_path):
    path = tmp_path / "nope.jsonl"
    with pytest.raises(InputError) as info:
        load_questions(path)
    assert str(path) in str(info.value)


def test_first_problem_wins(tmp_path):
    path = write(tmp_path, "two.jsonl", jsonl(q(), q("B?", options=["x"]), "{broken"))
    with pytest.raises(InputError) as info:
        load_questions(path)
    assert (info.value.line, info.value.field) == (2, "options")
