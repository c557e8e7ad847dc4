"""Tests of the source loaders: MedQA, MedMCQA, MMLU, detection, cop base, test splits, ids, limit."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonmed_async.loaders.dispatch import SOURCE_FORMATS, InputError, detect_test_split, load_questions

PUBMEDQA = Path(__file__).resolve().parents[3] / "shared" / "data" / "pubmedqa_ori_pqal.json"


def jsonl(*records) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records)


def write(tmp_path: Path, name: str, content: str) -> Path:
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content, encoding="utf-8", newline="")
    return path


# -- hand-written samples in each source's real shape ------------------------

UTI = ("A 23-year-old pregnant woman at 22 weeks gestation presents with burning upon urination. "
       "Which of the following is the best treatment for this patient?")
UTI_OPTIONS = {"A": "Ampicillin", "B": "Ceftriaxone", "C": "Doxycycline", "D": "Nitrofurantoin"}


def medqa(question: str = UTI, options: dict | None = None, answer_idx="D", answer="Nitrofurantoin", **extra) -> dict:
    rec = {"question": question, "answer": answer, "options": dict(options or UTI_OPTIONS), "meta_info": "step2&3",
           "answer_idx": answer_idx, "metamap_phrases": ["23 year old pregnant woman", "burning"]}
    if answer is None:
        del rec["answer"]
    rec.update(extra)
    return rec


LEUKO = ("A 40-year-old man presents with 5 days of productive cough and fever. CBC shows marked leukocytosis "
         "and a shift to left. Which term best describes these findings?")
LEUKO_OPTIONS = ("Leukemoid reaction", "Leukopenia", "Myeloid metaplasia", "Neutrophilia")


def medmcqa(id="4e1715fe-0bc3-494e-b6eb-2d4617245aef", question=LEUKO, cop=1, options=LEUKO_OPTIONS, **extra) -> dict:
    rec = {"question": question, "exp": "Leukemoid reactions resemble leukaemia.", "cop": cop,
           **dict(zip(("opa", "opb", "opc", "opd"), options)), "subject_name": "Pathology",
           "topic_name": None, "id": id, "choice_type": "single"}
    rec.update(extra)
    return rec


def medmcqa_file(*cops: int, **extra) -> str:
    return jsonl(*(medmcqa(id=f"id-{i}", question=f"Question {i}?", cop=c, **extra) for i, c in enumerate(cops)))


MMLU = (
    "What is the embryological origin of the hyoid bone?,The first pharyngeal arch,"
    "The first and second pharyngeal arches,The second pharyngeal arch,The second and third pharyngeal arches,D\n"
    '"Which of these branches of the trigeminal nerve contain somatic motor processes?",'
    "The supraorbital nerve,The infraorbital nerve,The mental nerve,None of the above,D\n"
    '"A lesion causing compression of the facial nerve at the stylomastoid foramen will cause ipsilateral\n'
    'paralysis of the facial muscles, and what else?","loss of taste, lacrimation",'
    '"paralysis of the facial muscles, only","loss of ""taste""",loss of lacrimation,B\n'
)


def mmlu_rows(*answers: str) -> str:
    return "".join(f"Question {i}?,one {i},two {i},three {i},four {i},{a}\n" for i, a in enumerate(answers))


def pubmed(decision: str = "yes") -> dict:
    return {"QUESTION": "Is X associated with Y?", "CONTEXTS": ["First.", "Second."],
            "LABELS": ["BACKGROUND", "RESULTS"], "final_decision": decision}


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


# -- malformed files ----------------------------------------------------------------

MAL = [
    # (case, file name, content, kwargs, location text, field)
    ("medqa-missing-question", "m.jsonl", jsonl(medqa(), {k: v for k, v in medqa().items() if k != "question"}),
     {}, ":2", "question"),
    ("medqa-missing-answer-idx", "m.jsonl", jsonl(medqa(), {k: v for k, v in medqa("B?").items() if k != "answer_idx"}),
     {}, ":2", "answer_idx"),
    ("medqa-idx-not-in-options", "m.jsonl", jsonl(medqa(), medqa("B?", answer_idx="E", answer=None)), {}, ":2",
     "answer_idx"),
    ("medqa-idx-not-letter", "m.jsonl", jsonl(medqa(answer_idx="Nitrofurantoin")), {}, ":1", "answer_idx"),
    ("medqa-idx-number", "m.jsonl", jsonl(medqa(answer_idx=3)), {}, ":1", "answer_idx"),
    ("medqa-answer-mismatch", "m.jsonl", jsonl(medqa(), medqa("B?", answer="Ampicillin")), {}, ":2", "answer"),
    ("medqa-answer-empty", "m.jsonl", jsonl(medqa(answer="")), {}, ":1", "answer"),
    ("medqa-option-empty", "m.jsonl", jsonl(medqa(options={**UTI_OPTIONS, "B": " "})), {}, ":1", "options"),
    ("medqa-options-keys", "m.jsonl", jsonl(medqa(options={"A": "x", "C": "y"}, answer_idx="A", answer=None)), {},
     ":1", "options"),
    ("medqa-same-question-twice", "m.jsonl", jsonl(medqa(), medqa("B?"), medqa()), {}, ":3", "id"),
    ("medqa-declared-on-generic", "g.jsonl", jsonl({"question": "Q?", "options": ["a", "b"], "answer": "a"}),
     {"source_format": "medqa"}, ":1", "answer_idx"),
    ("medqa-broken-line", "m.jsonl", jsonl(medqa(), '{"question": "Q?", "opt'), {}, ":2", None),
    ("medqa-json-list", "m.json", json.dumps([medqa(), medqa("B?", answer_idx="F")]), {}, "record 2", "answer_idx"),
    ("medmcqa-missing-id", "mc.json", jsonl(medmcqa(), {k: v for k, v in medmcqa(cop=4).items() if k != "id"}), {},
     ":2", "id"),
    ("medmcqa-empty-id", "mc.json", jsonl(medmcqa(id=" ")), {"cop_base": 1}, ":1", "id"),
    ("medmcqa-missing-opc", "mc.json", jsonl({k: v for k, v in medmcqa().items() if k != "opc"}), {}, ":1", "opc"),
    ("medmcqa-empty-opb", "mc.json", jsonl(medmcqa(), medmcqa(id="2", options=("a", "", "c", "d"))), {}, ":2", "opb"),
    ("medmcqa-opd-number", "mc.json", jsonl(medmcqa(options=("a", "b", "c", 4))), {}, ":1", "opd"),
    ("medmcqa-same-options", "mc.json", jsonl(medmcqa(options=("Both", "None", "both", "All"))), {}, ":1", "opc"),
    ("medmcqa-missing-cop", "mc.json", jsonl({k: v for k, v in medmcqa().items() if k != "cop"}), {}, ":1", "cop"),
    ("medmcqa-cop-string", "mc.json", jsonl(medmcqa(cop="2")), {}, ":1", "cop"),
    ("medmcqa-cop-bool", "mc.json", jsonl(medmcqa(cop=True)), {}, ":1", "cop"),
    ("medmcqa-cop-float", "mc.json", jsonl(medmcqa(cop=1.0)), {}, ":1", "cop"),
    ("medmcqa-bad-choice-type", "mc.json", jsonl(medmcqa(cop=4, choice_type="many")), {}, ":1", "choice_type"),
    ("medmcqa-subject-number", "mc.json", jsonl(medmcqa(cop=4, subject_name=3)), {}, ":1", "subject_name"),
    ("medmcqa-duplicate-id", "mc.json", jsonl(medmcqa(id="x", cop=4), medmcqa(id="y", question="B?"),
                                              medmcqa(id="x", question="C?")), {}, ":3", "id"),
    ("medmcqa-not-object", "mc.json", jsonl(medmcqa(cop=4), "[1, 2]"), {}, ":2", None),
    ("medmcqa-list-cop", "mc.json", json.dumps([medmcqa(cop=0), medmcqa(id="2", cop=9)]), {}, "record 2", "cop"),
    ("mmlu-five-columns", "anatomy_dev.csv", mmlu_rows("A") + "Q?,a,b,c,D\n", {}, ":2", None),
    ("mmlu-seven-columns", "anatomy_dev.csv", "Q?,a,b,c,d,A,extra\n", {}, ":1", None),
    ("mmlu-empty-question", "anatomy_dev.csv", mmlu_rows("A", "B") + " ,a,b,c,d,A\n", {}, ":3", "question"),
    ("mmlu-empty-option", "anatomy_dev.csv", "Q?,a,b,,d,A\n", {}, ":1", "C"),
    ("mmlu-same-options", "anatomy_dev.csv", "Q?,a,b,A,d,A\n", {}, ":1", "C"),
    ("mmlu-answer-e", "anatomy_dev.csv", mmlu_rows("A", "E"), {}, ":2", "answer"),
    ("mmlu-answer-text", "anatomy_dev.csv", "Q?,a,b,c,d,a or b\n", {}, ":1", "answer"),
    ("mmlu-answer-empty", "anatomy_dev.csv", "Q?,a,b,c,d,\n", {}, ":1", "answer"),
    ("mmlu-line-after-multiline-record", "anatomy_dev.csv", MMLU + "Q?,a,b,c,d,Z\n", {}, ":5", "answer"),
    ("mmlu-unclosed-quote", "anatomy_dev.csv", mmlu_rows("A") + '"Q?,a,b,c,d,A\nQ2?,a,b,c,d,B\n', {}, ":2", None),
    ("mmlu-stray-quote", "anatomy_dev.csv", mmlu_rows("A", "B") + 'Q?,"a"b,b,c,d,A\n', {}, ":3", None),
    ("mmlu-declared-on-jsonl", "g.jsonl", jsonl({"question": "Q?"}), {"source_format": "mmlu"}, ":1", None),
    ("pubmedqa-declared-on-jsonl", "g.jsonl", jsonl(medqa(), medqa("B?")), {"source_format": "pubmedqa"}, ":2", None),
    ("pubmedqa-declared-on-list", "g.json", json.dumps([medqa()]), {"source_format": "pubmedqa"}, ":1", None),
]


@pytest.mark.parametrize(("name", "content", "kwargs", "where", "field"), [c[1:] for c in MAL],
                         ids=[c[0] for c in MAL])
def test_malformed_sources(tmp_path, name, content, kwargs, where, field):
    path = write(tmp_path, name, content)
    with pytest.raises(InputError) as info:
        load_questions(path, **kwargs)
    err = info.value
    text = str(err)
    assert err.file == str(path)
    assert text.startswith(str(path) + where) or text.startswith(f"{path}: {where}"), text
    assert err.line is not None
    assert err.message and text.endswith(err.message)
    if field is None:
        assert err.field is None and "field '" not in text
    else:
        assert err.field == field and f"field '{field}'" in text, text


def test_messages_read_well(tmp_path):
    cases = [
        ("m.jsonl", jsonl(medqa(answer="Ampicillin")),
         ":1: field 'answer': 'Ampicillin' is not option D ('Nitrofurantoin'), which answer_idx names"),
        ("m.jsonl", jsonl(medqa(answer_idx="E", answer=None)),
         ":1: field 'answer_idx': 'E' is not the letter of one of the 4 options (A-D)"),
        ("anatomy_dev.csv", "Q?,a,b,c,d\n", ":1: expected 6 columns (question, A, B, C, D, answer), got 5"),
        ("anatomy_dev.csv", "Q?,a,b,c,d,E\n", ":1: field 'answer': 'E' is not a letter A-D"),
        ("mc.json", medmcqa_file(4) + jsonl(medmcqa(id="id-0", question="Again?", cop=1)),
         ":2: field 'id': duplicate id 'medmcqa-id-0' (first at line 1, again at line 2)"),
    ]
    for name, content, tail in cases:
        path = write(tmp_path, name, content)
        with pytest.raises(InputError) as info:
            load_questions(path)
        assert str(info.value) == f"{path}{tail}"


def test_nothing_half_ingested(tmp_path):
    """A bad last record fails the whole file, whatever the limit."""
    files = [
        ("m.jsonl", jsonl(medqa(), medqa("B?"), medqa("C?", answer_idx="Z"))),
        ("mc.json", medmcqa_file(1, 4, 2) + jsonl(medmcqa(id="z", question="Z?", cop=6))),
        ("anatomy_dev.csv", mmlu_rows("A", "B", "C") + "Q?,a,b,c,d,Q\n"),
        ("ambiguous.json", medmcqa_file(1, 2, 3)),
    ]
    for name, content in files:
        path = write(tmp_path, name, content)
        with pytest.raises(InputError):
            load_questions(path, limit=1)
