"""Hostile input stops at the loader: invalid Unicode, oversize text, deep nesting — one line, exit 2.

The texts are what a bad export or a hostile upload holds: a lone surrogate
escaped in JSON (``"\\ud800"``, valid JSON, not valid text), a NUL, a 5 MB
stem, JSON nested 100 000 deep (past Python's recursion limit) and 40 deep.
The message names file, line and field and quotes at most ~80 characters.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from e2e_support import run_cli
from fault_support import TIMEOUT_S, make_config, one_line_error
from reasonmed_async.loaders.dispatch import load_questions
from reasonmed_async.loaders.errors import InputError
from reasonmed_async.loaders.limits import InputLimits

GOOD = {"id": "q1", "question": "Which vitamin deficiency causes scurvy?", "options": ["A", "B", "C", "D"],
        "answer": "C"}


def _line(**changes: object) -> str:
    return json.dumps({**GOOD, **changes})


CASES = {
    # name -> (file text, field named, words in the message)
    "lone surrogate in the stem": (_line(question="Scurvy \ud800 is caused by?"),
                                   "stem", ["lone surrogate", "U+D800"]),
    "NUL in an option": (_line(options=["A", "B\u0000", "C", "D"]), "options[1]", ["NUL"]),
    "five-megabyte stem": (_line(question="x" * 5_000_000), "stem", ["5,000,000 characters", "100,000"]),
    "deep nesting past recursion": ('{"id": "q1", "extra": ' + "[" * 100_000 + "]" * 100_000 + "}", None,
                                    ["nests deeper than 32"]),
    "nesting past the limit": ('{"id": "q1", "question": "Q?", "options": ["A", "B"], "answer": "A", "x": '
                               + "[" * 40 + "]" * 40 + "}", None, ["nests deeper than 32"]),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_hostile_text_is_refused_at_the_loader(case: str, tmp_path: Path) -> None:
    text, field, words = CASES[case]
    path = tmp_path / "questions.jsonl"
    path.write_text(_line(id="q0") + "\n" + text + "\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_questions(path)
    error = caught.value
    assert error.line == 2 and error.field == field, (error.line, error.field, str(error))
    message = str(error)
    for word in words:
        assert word in message, message
    assert len(message) < len(str(path)) + 260, f"the message echoes too much: {len(message)} characters"


def test_limits_are_settings(tmp_path: Path) -> None:
    path = tmp_path / "questions.jsonl"
    path.write_text(_line(question="y" * 300) + "\n", encoding="utf-8")
    assert load_questions(path)  # within the defaults
    with pytest.raises(InputError, match="more than the limit of 200"):
        load_questions(path, limits=InputLimits(max_question_chars=200))


@pytest.mark.parametrize("case", ["lone surrogate in the stem", "deep nesting past recursion", "five-megabyte stem"])
def test_the_run_command_exits_2_and_stores_nothing(case: str, tmp_path: Path) -> None:
    text, _, words = CASES[case]
    path = tmp_path / "questions.jsonl"
    path.write_text(_line(id="q0") + "\n" + text + "\n", encoding="utf-8")
    db = tmp_path / "run.db"
    proc = run_cli("run", "--config", make_config(tmp_path), "--input", path, "--db", db, timeout=TIMEOUT_S)
    assert proc.returncode == 2, proc.stderr
    line = one_line_error(proc)
    assert f"{path}:2" in line and words[0] in line and len(line) < 400, line
    assert not db.exists()
