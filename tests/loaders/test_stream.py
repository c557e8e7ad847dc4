"""``QuestionSource``: the same questions and the same errors as ``load_questions``, read as a stream."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from reasonmed_async.loaders.dispatch import InputError, load_questions
from reasonmed_async.loaders.stream import QuestionSource

ROOT = Path(__file__).resolve().parents[2]


def q(n: int, **extra) -> dict:
    rec = {"id": f"q-{n}", "question": f"A 34-year-old presents with bleeding gums ({n}). Which deficiency?",
           "options": ["Vitamin A", "Vitamin C", "Vitamin D", "Vitamin K"], "answer": "B"}
    rec.update(extra)
    return {k: v for k, v in rec.items() if v is not None}


def medqa(n: int, **extra) -> dict:
    rec = {"question": f"A 60-year-old man with crushing chest pain ({n}); first drug?",
           "options": {"A": "Aspirin", "B": "Insulin", "C": "Metformin", "D": "Warfarin"},
           "answer": "Aspirin", "answer_idx": "A", "meta_info": "step1"}
    rec.update(extra)
    return rec


def lines(*recs: dict | str) -> str:
    return "".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in recs)


CASES = {
    # name: (file name, content)
    "generic jsonl": ("qs.jsonl", lines(*(q(i) for i in range(7)))),
    "generic jsonl, blank lines and CRLF": ("qs.jsonl", "\n" + lines(q(1)).replace("\n", "\r\n") + "\n\n" + lines(q(2))),
    "generic jsonl without ids": ("qs.jsonl", lines(q(1, id=None), q(2, id=None))),
    "jsonl without the .jsonl suffix": ("qs.txt", lines(q(1), q(2))),
    "medqa jsonl": ("US/train.jsonl", lines(*(medqa(i) for i in range(4)))),
    "medmcqa jsonl (parsed whole)": ("dev.json", lines(
        *({"id": f"m{i}", "question": f"Nerve of the deltoid ({i})?", "opa": "Axillary", "opb": "Radial",
           "opc": "Ulnar", "opd": "Median", "cop": 1, "choice_type": "single"} for i in range(3)))),
    "json list": ("qs.json", json.dumps([q(i) for i in range(3)], indent=2)),
    "one-line json object": ("one.json", json.dumps(q(1))),
    "one-line json list": ("qs.json", json.dumps([q(i) for i in range(3)])),
    "jsonl whose first line is a list": ("qs.jsonl", lines('["not", "a record"]', q(1))),
    "mmlu csv": ("anatomy_dev.csv", "Which bone?,Femur,Tibia,Ulna,Radius,A\nWhich organ?,Heart,Lung,Liver,Brain,C\n"),
    # errors: the same words, from the constructor
    "duplicate id late": ("qs.jsonl", lines(q(1), q(2), q(3), q(2))),
    "bad answer on the last line": ("qs.jsonl", lines(*(q(i) for i in range(5)), q(9, answer="E"))),
    "broken json line": ("qs.jsonl", lines(q(1), '{"id": "q-2", "question": "Broken?"', q(3))),
    "empty": ("qs.jsonl", "\n\n"),
    "not utf-8 on line 3": ("qs.jsonl", lines(q(1), q(2)) + '{"id": "x", "question": "caf\xe9"}\n'),
    "test split": ("test.jsonl", lines(q(1))),
    "medqa answer text disagrees": ("US/train.jsonl", lines(medqa(1), medqa(2, answer="Insulin"))),
}


def _outcome(fn):
    try:
        return list(fn())
    except InputError as exc:
        return f"InputError: {exc}"


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("limit", [None, 2])
def test_same_questions_and_errors_as_load_questions(tmp_path, case, limit):
    name, content = CASES[case]
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content.encode("latin-1") if "utf-8" in case else content.encode("utf-8"))
    expected = _outcome(lambda: load_questions(path, limit=limit))
    got = _outcome(lambda: QuestionSource(path, limit=limit))
    assert got == expected
    if isinstance(expected, list):
        source = QuestionSource(path, limit=limit)
        assert len(source) == len(expected)
        assert list(source) == list(source) == expected  # read again on every iteration


def test_the_real_pubmedqa_file(tmp_path, pubmedqa):
    source = QuestionSource(pubmedqa, limit=50)
    assert len(source) == 50 and list(source) == load_questions(pubmedqa, limit=50)


def test_a_bad_record_is_found_before_any_question_is_handed_out(tmp_path):
    path = tmp_path / "qs.jsonl"
    path.write_text(lines(*(q(i) for i in range(100)), q(100, options=["only one"])), encoding="utf-8")
    with pytest.raises(InputError) as err:
        QuestionSource(path)
    assert str(err.value).startswith(f"{path}:101: field 'options'")


def test_jsonl_is_not_read_whole(tmp_path, monkeypatch):
    path = tmp_path / "qs.jsonl"
    path.write_text(lines(*(q(i) for i in range(20))), encoding="utf-8")
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("read the whole file"))
    monkeypatch.setattr(Path, "read_text", lambda self, *a, **k: pytest.fail("read the whole file"))
    source = QuestionSource(path)
    pulled = iter(source)
    first = next(pulled)
    assert (first.id, first.ordinal, len(source)) == ("q-0", 0, 20)
    assert [x.ordinal for x in pulled] == list(range(1, 20))


@pytest.mark.parametrize("limit", [None, 3, 5])
def test_duplicates_are_merged_as_merge_duplicates_merges_them(tmp_path, limit):
    from reasonmed_async.loaders.dedup import merge_duplicates

    recs = [q(0), q(1), q(2, question=q(0)["question"].upper() + "  "),  # the same question as q-0
            q(3), q(4, question=q(1)["question"]), q(5, question=q(0)["question"], answer="C"),  # answer differs
            q(6, question=q(0)["question"] + "?")]
    path = tmp_path / "qs.jsonl"
    path.write_text(lines(*recs), encoding="utf-8")
    expected = merge_duplicates(load_questions(path, limit=limit))
    source = QuestionSource(path, limit=limit, merge_duplicates=True)
    assert expected.duplicates  # the table has some
    assert source.duplicates == expected.duplicates
    assert len(source) == len(expected.questions)
    assert list(source) == expected.questions
    plain = QuestionSource(path, limit=limit)
    assert plain.duplicates == {} and list(plain) == load_questions(path, limit=limit)


@pytest.mark.parametrize("limit", [None, 30])
def test_a_document_parsed_whole_is_parsed_once_for_validation_and_ingest(pubmedqa, monkeypatch, limit):
    from reasonmed_async.loaders import stream

    parsed: list[Path] = []
    real = stream.load_questions
    monkeypatch.setattr(stream, "load_questions", lambda path, **kw: parsed.append(path) or real(path, **kw))
    source = QuestionSource(pubmedqa, limit=limit, merge_duplicates=True)
    first = list(source)  # the ingest: the questions the validating pass kept
    assert len(parsed) == 1 and len(first) == len(source) == (limit or 1000)
    assert first == load_questions(pubmedqa, limit=limit)
    assert list(source) == first and len(parsed) == 2  # kept for one iteration only: a later one parses again


def test_a_one_line_json_list_is_parsed_once(tmp_path, monkeypatch):
    """A list on one line (as ``json.dump`` writes it) is a document, not JSONL: not parsed as a first line too."""
    from reasonmed_async.loaders import common, dispatch, stream

    parsed: list[int] = []
    real = common.parse_json
    for module in (stream, dispatch):
        monkeypatch.setattr(module, "parse_json", lambda text, *a: parsed.append(len(text)) or real(text, *a))
    path = tmp_path / "qs.json"
    path.write_text(json.dumps([q(i) for i in range(50)]), encoding="utf-8")
    source = QuestionSource(path)
    assert len(parsed) == 1 and list(source) == load_questions(path)
