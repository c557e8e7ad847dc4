"""A template section compiled once renders exactly what ``string.Template.substitute`` renders."""

from __future__ import annotations

import string

import pytest

from agents.prompts import Templates, split_sections
from agents.rendering import compile_section, substitute

FIELDS = {
    "stem": "A 45-year-old man costs $120 a day in the ICU; which drug (${dose} mg) first?",
    "options": "A) Aspirin\nB) Heparin\nC) Alteplase\nD) Clopidogrel",
    "context": "Context:\nTroponin $$ rose; ECG shows ST elevation in II, III, aVF.\n\n",
    "answer": "C) Alteplase",
    "cot": "<think>\nST elevation: reperfusion.\n</think>\nFinal answer: C",
    "paths": "[m1-t0.7-1]\nReasoning ...", "names": "m1-t0.7-1, m2-t1.0-2",
    "error_reasons": "- [m1-t0.7-1] confuses $x with ${y}", "answer_line": "", "response": "**C**", "x_y": "Q",
}
SECTIONS = ["", "no variables at all", "$$", "$$stem", "a $$ b ${stem}$stem$$$stem end", "$stem", "${stem}",
            "x$x_y ${stem}z", "Price: $$5 and $$ ${answer}.", "$cot\n\n$options\n"]


@pytest.mark.parametrize("section", SECTIONS)
def test_the_same_text_as_string_template(section):
    assert substitute(compile_section(section), FIELDS) == string.Template(section).substitute(FIELDS)


def test_every_packaged_template_renders_as_string_template_renders_it():
    for name, text in Templates.load().items:
        system, user = split_sections(text)
        for section in (s for s in (system, user) if s is not None):
            assert substitute(compile_section(section), FIELDS) == string.Template(section).substitute(FIELDS), name


def test_a_missing_variable_is_a_key_error_as_with_string_template():
    with pytest.raises(KeyError, match="dose"):
        string.Template("$dose").substitute(FIELDS)
    with pytest.raises(KeyError, match="dose"):
        substitute(compile_section("$dose"), FIELDS)
