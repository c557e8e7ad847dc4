"""The de-duplication key: equal questions (as a re-export or a copy-paste writes them) share it; others do not."""

from __future__ import annotations

import pytest

from bus import Question
from reasonmed_async.loaders.dedup import dedup_key, merge_duplicates

STEM = "A 45-year-old man presents with crushing chest pain radiating to the left arm. What is the next step?"
OPTIONS = ("Aspirin and ECG", "Discharge home", "Start antibiotics", "Order a chest X-ray")


def q(qid: str = "q1", stem: str = STEM, options: tuple[str, ...] = OPTIONS, answer: int = 0, context: str = "",
      ordinal: int = 0) -> Question:
    return Question(id=qid, stem=stem, options=options, answer=answer, context=context, ordinal=ordinal)


@pytest.mark.parametrize("other, same", [
    (q("q2"), True),                                                      # another id only
    (q("q2", stem=STEM.upper().replace(" ", "  ")), True),                # case and spacing
    (q("q2", stem="Ａ" + STEM[1:]), True),                                # a full-width letter (NFKC)
    (q("q2", options=tuple(o + " " for o in OPTIONS)), True),             # trailing spaces in options
    (q("q2", context="Abstract: a cohort of 120 patients..."), False),   # PubMedQA: another abstract
    (q("q2", stem=STEM.replace("45", "54")), False),                      # a different patient
])
def test_the_key_tells_equal_questions_from_different_ones(other, same):
    assert (dedup_key(q()) == dedup_key(other)) is same


def test_copies_that_disagree_on_the_answer_are_not_merged():
    merged = merge_duplicates([q("a"), q("b", answer=1, ordinal=1)])
    assert [x.id for x in merged.questions] == ["a", "b"] and merged.duplicates == {}


def test_copies_with_options_reordered_but_the_same_answer_merge():
    merged = merge_duplicates([q("a"), q("b", options=OPTIONS[::-1], answer=len(OPTIONS) - 1, ordinal=1)])
    assert [x.id for x in merged.questions] == ["a"] and merged.duplicates == {"a": ("b",)}


def test_merge_keeps_the_first_renumbers_and_lists_the_others():
    questions = [q("a", ordinal=0), q("b", stem="Which drug is first line for hypertension?", ordinal=1),
                 q("c", stem=STEM + "  ", ordinal=2), q("d", ordinal=3)]
    merged = merge_duplicates(questions)
    assert [x.id for x in merged.questions] == ["a", "b"]
    assert [x.ordinal for x in merged.questions] == [0, 1]
    assert merged.questions[0].duplicate_ids == ("c", "d")
    assert merged.duplicates == {"a": ("c", "d")} and merged.merged_count == 2
    assert "2 duplicate question(s) merged into 1: c, d -> a" == merged.describe()


def test_merge_without_duplicates_changes_nothing():
    questions = [q("a"), q("b", stem="Which drug is first line for hypertension?", ordinal=1)]
    merged = merge_duplicates(questions)
    assert merged.questions == questions and merged.duplicates == {}


def test_whitespace_is_collapsed_exactly_as_the_regex_did():
    """``normalise`` splits at ``str.isspace()`` characters: the same text as ``re.sub(r"\\s+", " ", t).strip()``,
    the form the key was first defined with, for every Unicode whitespace character (keys must stay stable)."""
    import re
    import sys
    import unicodedata

    from reasonmed_async.loaders.dedup import normalise

    spaces = [chr(c) for c in range(sys.maxunicode + 1) if re.fullmatch(r"\s", chr(c))]
    assert spaces == [chr(c) for c in range(sys.maxunicode + 1) if chr(c).isspace()]
    for ws in spaces:
        text = f"{ws}Chest{ws}{ws}pain,{ws}left arm{ws}"
        regex_form = re.sub(r"\s+", " ", unicodedata.normalize("NFKC", text).casefold()).strip()
        assert normalise(text) == regex_form == "chest pain, left arm"


def test_the_key_of_a_question_with_unusual_whitespace_is_the_one_earlier_builds_stored():
    # computed by the regex formulation (main at 1bb8005): sharding and merging rely on the digest itself
    tricky = q(stem="A 45-year-old\u00a0man\u2003presents\twith chest pain.\u2028What is next?\x1c",
               options=("Aspirin\u3000and ECG", "Discharge\nhome"),
               context="BACKGROUND:\x85 a cohort\r\n\r\nof 120 patients\u205f")
    assert dedup_key(tricky) == "f8ac80f9f5f70ae6ed81fb51b565acaf43a47b4af227d1b3bca448ab6278af09"
