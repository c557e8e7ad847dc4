"""status counts the questions whose ranker fell back to the first two correct paths."""

from __future__ import annotations


from reasonmed_async.reports.status import StatusReport, render
from reasonmed_async.store.sql import _label
from bus import Path, Question, Ranked


def ranked(ranker: str) -> Ranked:
    q = Question(id="q", stem="s", options=("a", "b"), answer=0)
    return Ranked(run_id="r", question_id="q", parent_id="p", question=q, tier="easy",
                  chosen=(Path(name="x", cot="c"), Path(name="y", cot="c")), reasons={}, ranker=ranker)


def test_a_fallback_is_labelled_so_status_can_count_it() -> None:
    assert _label(ranked("fallback")) == "fallback" and _label(ranked("model")) == "model"


def test_the_row_shows_only_when_there_were_fallbacks() -> None:
    assert "ranker fallbk" not in render(StatusReport())
    assert any(line.split() == ["ranker", "fallbk", "3"] for line in render(StatusReport(ranker_fallbacks=3)).splitlines())
