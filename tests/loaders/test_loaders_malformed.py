"""Malformed input files, every source: one line naming file, line and field; nothing half-ingested."""

from __future__ import annotations

import json

import pytest

from reasonmed_async.loaders.dispatch import InputError, load_questions
from source_samples import MMLU, UTI_OPTIONS, jsonl, medmcqa, medmcqa_file, medqa, mmlu_rows, write

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
