"""Tests of the source loaders: MedQA, MedMCQA, MMLU, detection, cop base, test splits, ids, limit (malformed
files: test_loaders_malformed.py; the samples: source_samples.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonmed_async.loaders.dispatch import SOURCE_FORMATS, InputError, detect_test_split, load_questions
from source_samples import (LEUKO, LEUKO_OPTIONS, MMLU, UTI, UTI_OPTIONS, jsonl, medmcqa,
                            medmcqa_file, medqa, mmlu_rows, pubmed, write)

PUBMEDQA = Path(__file__).resolve().parents[3] / "shared" / "data" / "pubmedqa_ori_pqal.json"


# -- valid files, every source ------------------------------------------------

VALID = [
    # (case, file name, content, kwargs, [(id, answer letter, source)], first stem, first options)
    ("medqa", "US/phrases_no_exclude_train.jsonl",
     jsonl(medqa(), medqa("Second stem?", answer_idx="b", answer=" ceftriaxone "), medqa("Third?", answer=None,
                                                                                          answer_idx="A")),
     {}, [(None, "D", "medqa"), (None, "B", "medqa"), (None, "A", "medqa")], UTI, tuple(UTI_OPTIONS.values())),
    ("medqa-5-options", "US/train.jsonl",
     jsonl(medqa(options={**UTI_OPTIONS, "E": "Trimethoprim"}, answer_idx="E", answer="Trimethoprim")),
     {}, [(None, "E", "medqa")], UTI, (*UTI_OPTIONS.values(), "Trimethoprim")),
    ("medmcqa-official-1-based", "medmcqa/train.json",
     jsonl(medmcqa(), medmcqa(id="b2", question="Q2?", cop=4, subject_name=None),
           medmcqa(id="b3", question="Q3?", cop=2, choice_type="multi", exp=None)),
     {}, [("medmcqa-4e1715fe-0bc3-494e-b6eb-2d4617245aef", "A", "medmcqa/Pathology"), ("medmcqa-b2", "D", "medmcqa"),
          ("medmcqa-b3", "B", "medmcqa/Pathology")], LEUKO, LEUKO_OPTIONS),
    ("medmcqa-hf-0-based-list", "medmcqa_validation.json",
     json.dumps([medmcqa(id="h1", cop=0), medmcqa(id="h2", question="Q2?", cop=3)], indent=2),
     {}, [("medmcqa-h1", "A", "medmcqa/Pathology"), ("medmcqa-h2", "D", "medmcqa/Pathology")], LEUKO, LEUKO_OPTIONS),
    ("mmlu-hendrycks", "data/dev/anatomy_dev.csv", MMLU, {},
     [("mmlu-anatomy-dev-1", "D", "mmlu/anatomy"), ("mmlu-anatomy-dev-2", "D", "mmlu/anatomy"),
      ("mmlu-anatomy-dev-3", "B", "mmlu/anatomy")],
     "What is the embryological origin of the hyoid bone?",
     ("The first pharyngeal arch", "The first and second pharyngeal arches", "The second pharyngeal arch",
      "The second and third pharyngeal arches")),
    ("mmlu-header-crlf", "clinical_knowledge_val.csv",
     "question,A,B,C,D,answer\r\n\r\n" + mmlu_rows("a", " C ").replace("\n", "\r\n"), {},
     [("mmlu-clinical_knowledge-val-1", "A", "mmlu/clinical_knowledge"),
      ("mmlu-clinical_knowledge-val-2", "C", "mmlu/clinical_knowledge")],
     "Question 0?", ("one 0", "two 0", "three 0", "four 0")),
    ("mmlu-unnamed", "my_questions.csv", mmlu_rows("B"), {}, [(None, "B", "mmlu")],
     "Question 0?", ("one 0", "two 0", "three 0", "four 0")),
    ("pubmedqa", "ori_pqal.json", json.dumps({"1": pubmed(), "2": pubmed("maybe")}), {},
     [("pubmedqa-1", "A", "pubmedqa"), ("pubmedqa-2", "C", "pubmedqa")], "Is X associated with Y?",
     ("yes", "no", "maybe")),
]


@pytest.mark.parametrize(("name", "content", "kwargs", "expected", "stem", "options"), [c[1:] for c in VALID],
                         ids=[c[0] for c in VALID])
def test_valid_sources(tmp_path, name, content, kwargs, expected, stem, options):
    questions = load_questions(write(tmp_path, name, content), **kwargs)
    assert [(q.answer_letter, q.source) for q in questions] == [(e[1], e[2]) for e in expected]
    for q, (qid, _, source) in zip(questions, expected):
        assert q.id == qid if qid is not None else q.id.startswith(source.split("/")[0] + "-")
    assert [q.ordinal for q in questions] == list(range(len(expected)))
    assert questions[0].stem == stem and questions[0].options == options
    assert len({q.id for q in questions}) == len(questions)


def test_mmlu_quoted_fields(tmp_path):
    third = load_questions(write(tmp_path, "anatomy_dev.csv", MMLU))[2]
    assert third.stem.endswith("ipsilateral\nparalysis of the facial muscles, and what else?")
    assert third.options == ("loss of taste, lacrimation", "paralysis of the facial muscles, only",
                             'loss of "taste"', "loss of lacrimation")
    assert third.answer_text == "paralysis of the facial muscles, only"


def test_medqa_ids_are_content_hashes(tmp_path):
    recs = [medqa(), medqa("Second stem?", answer_idx="B", answer="Ceftriaxone")]
    one = load_questions(write(tmp_path, "a.jsonl", jsonl(*recs)))
    again = load_questions(write(tmp_path, "a.jsonl", jsonl(*recs)))
    swapped = load_questions(write(tmp_path, "b.jsonl", jsonl(*reversed(recs))))
    assert [q.id for q in one] == [q.id for q in again]
    assert {q.id for q in one} == {q.id for q in swapped}
    assert all(q.id.startswith("medqa-") and len(q.id) == len("medqa-") + 16 for q in one)
    edited = load_questions(write(tmp_path, "c.jsonl", jsonl(medqa(UTI + " "), medqa(UTI + "!"))))
    assert edited[0].id == one[0].id and edited[1].id != one[0].id  # blanks around the stem do not count


@pytest.mark.parametrize("case", [c[0] for c in VALID])
def test_stable_ids_and_limit(tmp_path, case):
    _, name, content, kwargs, expected, *_ = next(c for c in VALID if c[0] == case)
    path = write(tmp_path, name, content)
    first, second = load_questions(path, **kwargs), load_questions(path, **kwargs)
    assert [q.id for q in first] == [q.id for q in second]
    assert load_questions(path, limit=1, **kwargs) == first[:1]
    assert load_questions(path, limit=0, **kwargs) == []


# -- detection --------------------------------------------------------------------

DETECT = [
    # (case, file name, content, format it must be read as)
    ("medqa-jsonl", "q.jsonl", jsonl(medqa()), "medqa"),
    ("medqa-no-extension", "q", jsonl(medqa(), medqa("B?")), "medqa"),
    ("medqa-json-list", "q.json", json.dumps([medqa()]), "medqa"),
    ("medmcqa-dot-json-lines", "dev.json", jsonl(medmcqa(), medmcqa(id="2", question="B?", cop=4)), "medmcqa"),
    ("medmcqa-single-line", "one.json", json.dumps(medmcqa(cop=4)), "medmcqa"),
    ("mmlu-csv", "q.csv", mmlu_rows("A", "B"), "mmlu"),
    ("mmlu-no-extension", "q.txt", mmlu_rows("A", "B"), "mmlu"),
    ("pubmedqa", "p.json", json.dumps({"9": pubmed()}), "pubmedqa"),
    ("generic", "g.jsonl", jsonl({"question": "Q?", "options": ["a", "b"], "answer": "a"}), "generic"),
    ("generic-options-dict-no-idx", "g.jsonl", jsonl({"question": "Q?", "options": {"A": "a", "B": "b"},
                                                      "answer": "B"}), "generic"),
]


@pytest.mark.parametrize(("name", "content", "fmt"), [c[1:] for c in DETECT], ids=[c[0] for c in DETECT])
def test_auto_detection(tmp_path, name, content, fmt):
    path = write(tmp_path, name, content)
    auto = load_questions(path, cop_base=1 if fmt == "medmcqa" else None)
    assert all(q.source.split("/")[0] == fmt for q in auto)
    declared = load_questions(path, source_format=fmt, cop_base=1 if fmt == "medmcqa" else None)
    assert declared == auto
    others = [f for f in SOURCE_FORMATS if f != fmt and not {f, fmt} <= {"generic", "medqa"}]
    for other in others:  # declaring another format reads the file as that one, and fails
        with pytest.raises(InputError):
            load_questions(path, source_format=other, cop_base=1)


def test_bad_arguments(tmp_path):
    path = write(tmp_path, "q.jsonl", jsonl(medqa()))
    with pytest.raises(ValueError, match="source_format"):
        load_questions(path, source_format="MedQA")
    with pytest.raises(ValueError, match="cop_base"):
        load_questions(path, cop_base=2)


def test_real_pubmedqa_declared():
    if not PUBMEDQA.exists():
        pytest.skip(f"{PUBMEDQA} is not here")
    assert load_questions(PUBMEDQA, source_format="pubmedqa", limit=20) == load_questions(PUBMEDQA, limit=20)


# -- which option cop counts from --------------------------------------------------

COP = [
    # (case, cops, cop_base, answers or None for an error, error line, error text)
    ("auto-1-based", (1, 4, 2, 3), None, "ADBC", None, None),
    ("auto-0-based", (0, 3, 2, 1), None, "ADCB", None, None),
    ("declared-0", (1, 2, 3), 0, "BCD", None, None),
    ("declared-1", (1, 2, 3), 1, "ABC", None, None),
    ("declared-0-with-zero", (0, 3), 0, "AD", None, None),
    ("declared-1-with-four", (4, 1), 1, "DA", None, None),
    ("ambiguous", (1, 2, 3, 2), None, None, None, "cannot tell whether cop counts from 0"),
    ("mixed", (1, 0, 2, 4), None, None, 4, "mixes 0-based and 1-based cop: cop 0 at line 2, cop 4 at line 4"),
    ("declared-0-four", (1, 4), 0, None, 2, "4 is out of range: with cop_base=0, cop is 0..3"),
    ("declared-1-zero", (2, 0), 1, None, 2, "0 is out of range: with cop_base=1, cop is 1..4"),
    ("auto-five", (1, 5), None, None, 2, "5 is out of range"),
    ("test-split-minus-one", (1, -1), None, None, 2, "is -1: no answer"),
]


@pytest.mark.parametrize(("cops", "cop_base", "answers", "line", "text"), [c[1:] for c in COP],
                         ids=[c[0] for c in COP])
def test_cop_base(tmp_path, cops, cop_base, answers, line, text):
    path = write(tmp_path, "medmcqa_train.json", medmcqa_file(*cops))
    if answers is not None:
        assert "".join(q.answer_letter for q in load_questions(path, cop_base=cop_base)) == answers
        return
    with pytest.raises(InputError) as info:
        load_questions(path, cop_base=cop_base)
    err = info.value
    assert (err.file, err.line, err.field) == (str(path), line, "cop")
    assert text in str(err)
    expected_where = str(path) if line is None else f"{path}:{line}"
    assert str(err).startswith(f"{expected_where}: field 'cop': ")


def test_ambiguous_cop_message_says_what_to_do(tmp_path):
    path = write(tmp_path, "excerpt.jsonl", medmcqa_file(2, 3))
    with pytest.raises(InputError) as info:
        load_questions(path)
    assert "cop_base=0 or 1 (--cop-base 0|1)" in str(info.value)
    assert "1..4 = a..d" in str(info.value) and "0..3 = a..d" in str(info.value)


# -- test splits ----------------------------------------------------------------------

SPLITS = [
    # (relative path, refused?)
    ("US/test.jsonl", True),
    ("US/4_options/phrases_no_exclude_test.jsonl", True),
    ("medmcqa/test.json", True),
    ("data/test/anatomy_test.csv", True),
    ("clinical_knowledge_test.csv", True),
    ("test_ground_truth.json", True),
    ("pqal_test_set.json", True),
    ("test-00000-of-00001.jsonl", True),
    ("Test/TRAIN.JSONL", True),
    ("US/dev.jsonl", False),
    ("US/4_options/phrases_no_exclude_train.jsonl", False),
    ("data/val/anatomy_val.csv", False),
    ("tests/questions.jsonl", False),
    ("latest.jsonl", False),
    ("contest_train.jsonl", False),
    ("testing.jsonl", False),
    ("ori_pqal.json", False),
]


@pytest.mark.parametrize(("rel", "refused"), SPLITS, ids=[s[0] for s in SPLITS])
def test_test_split_rule(tmp_path, rel, refused):
    content = mmlu_rows("A") if rel.lower().endswith(".csv") else jsonl(medqa())
    path = write(tmp_path, rel, content)
    assert (detect_test_split(rel) is not None) == refused
    if not refused:
        assert len(load_questions(path)) == 1
        return
    with pytest.raises(InputError) as info:
        load_questions(path)
    err = info.value
    assert err.file == str(path) and err.line is None and err.field is None
    assert "test split" in str(err) and "--allow-test-split" in str(err)
    assert len(load_questions(path, allow_test_split=True)) == 1


def test_test_split_refused_before_reading(tmp_path):
    with pytest.raises(InputError, match="refused as a test split"):
        load_questions(tmp_path / "test.jsonl")  # does not exist: the name alone is enough
