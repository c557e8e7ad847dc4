"""``SeenIds``: the compact table of question ids a pass has seen, against a plain dict."""

from __future__ import annotations

import json
import random

import pytest

from reasonmed_async.loaders.dispatch import InputError
from reasonmed_async.loaders.seen import SeenIds
from reasonmed_async.loaders.stream import QuestionSource

REAL_IDS = ["pubmedqa-21645374", "medqa-3f9c2a1b7e", "mmlu-anatomy-0007", "medmcqa-e9a3b7c2-5d1f",
            "q-1", "Q-1", "q-1 ", "ß-question", "Straße-ö-12", "问题-42", "😀-7"]


def test_answers_as_a_dict_of_first_places_does():
    rng = random.Random(7)
    ids = REAL_IDS + [f"q-{rng.randrange(3000)}" for _ in range(5000)]  # many repeats, several table growths
    seen, expected = SeenIds(), {}
    for n, qid in enumerate(ids, 1):
        assert seen.first(qid) == expected.get(qid)
        if qid not in expected:
            seen.add(qid, f"line {n}")
            expected[qid] = f"line {n}"
    assert len(seen) == len(expected)
    assert all(seen.first(qid) == where for qid, where in expected.items())
    assert "q-never" not in seen and "pubmedqa-21645374" in seen


def test_ids_whose_hashes_collide_are_still_told_apart(monkeypatch):
    monkeypatch.setattr(SeenIds, "_hash", staticmethod(lambda qid: 5))  # every id in one probe chain
    seen = SeenIds(capacity=4)
    for n, qid in enumerate(REAL_IDS, 1):
        assert seen.first(qid) is None
        seen.add(qid, f"record 'pmid {n}'")
    assert [seen.first(qid) for qid in REAL_IDS] == [f"record 'pmid {n}'" for n in range(1, len(REAL_IDS) + 1)]
    assert seen.first("q-2") is None


def _record(n: int) -> dict:
    return {"id": f"q-{n}", "question": f"A 34-year-old presents with bleeding gums ({n}). Which deficiency?",
            "options": ["Vitamin A", "Vitamin C", "Vitamin D", "Vitamin K"], "answer": "B"}


def test_a_repeated_id_is_refused_naming_both_lines(tmp_path):
    path = tmp_path / "qs.jsonl"
    path.write_text("".join(json.dumps(_record(n % 3 if n == 4 else n)) + "\n" for n in range(6)), encoding="utf-8")
    with pytest.raises(InputError) as err:
        QuestionSource(path)
    assert str(err.value) == f"{path}:5: field 'id': duplicate id 'q-1' (first at line 2, again at line 5)"


def test_a_file_changed_between_the_passes_is_refused_before_its_new_id(tmp_path):
    """The ingest pass does not keep every id: it compares each with the one the validation pass read there."""
    path = tmp_path / "qs.jsonl"
    path.write_text("".join(json.dumps(_record(n)) + "\n" for n in range(5)), encoding="utf-8")
    source = QuestionSource(path)
    path.write_text("".join(json.dumps(_record(1 if n == 3 else n)) + "\n" for n in range(5)), encoding="utf-8")
    read = []
    with pytest.raises(InputError) as err:
        for question in source:
            read.append(question.id)
    assert read == ["q-0", "q-1", "q-2"]  # nothing from the changed line on is handed out
    assert str(err.value).startswith(f"{path}:4: field 'id': the file changed while it was being read (the id here is now 'q-1')")
