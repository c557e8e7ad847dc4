"""The tier router: easy / medium / difficult by the number of Error verdicts."""

from __future__ import annotations

import pytest

from agents.settings import TierPolicy
from agents.tiering import assign_tier

DEFAULT = TierPolicy()


def paper_tier(errors: int) -> str:
    """The ReasonMed paper's rule for nine paths: 0-4 errors easy, 5-7 medium, 8-9 difficult."""
    return "easy" if errors <= 4 else "medium" if errors <= 7 else "difficult"


def test_defaults_are_the_papers():
    assert (DEFAULT.easy_max, DEFAULT.medium_max) == (4, 7)


@pytest.mark.parametrize("errors", range(10))
@pytest.mark.parametrize("correct", range(10))
def test_default_table(errors, correct):
    expected = "difficult" if correct == 0 else paper_tier(errors)
    assert assign_tier(errors, correct, DEFAULT) == expected


# (errors, correct) of nine usable verdicts: correct = 9 - errors
@pytest.mark.parametrize(("errors", "tier"), [
    (0, "easy"), (1, "easy"), (2, "easy"), (3, "easy"), (4, "easy"),
    (5, "medium"), (6, "medium"), (7, "medium"),
    (8, "difficult"), (9, "difficult"),
])
def test_nine_paths(errors, tier):
    assert assign_tier(errors, 9 - errors, DEFAULT) == tier


@pytest.mark.parametrize(("errors", "correct"), [(0, 0), (3, 0), (5, 0), (9, 0)])
def test_no_correct_path_goes_to_the_regenerator(errors, correct):
    """Possible when verdicts were unusable: nothing to rank or refine."""
    assert assign_tier(errors, correct, DEFAULT) == "difficult"


@pytest.mark.parametrize(("easy_max", "medium_max", "errors", "tier"), [
    (0, 1, 0, "easy"),
    (0, 1, 1, "medium"),
    (0, 1, 2, "difficult"),
    (2, 5, 2, "easy"),
    (2, 5, 3, "medium"),
    (2, 5, 5, "medium"),
    (2, 5, 6, "difficult"),
    (6, 8, 6, "easy"),
    (6, 8, 7, "medium"),
    (6, 8, 9, "difficult"),
    (4, 100, 99, "medium"),
])
def test_custom_thresholds(easy_max, medium_max, errors, tier):
    assert assign_tier(errors, 1, TierPolicy(easy_max=easy_max, medium_max=medium_max)) == tier


@pytest.mark.parametrize(("errors", "correct"), [(-1, 3), (3, -1), (-1, -1)])
def test_negative_counts_are_refused(errors, correct):
    with pytest.raises(ValueError, match=">= 0"):
        assign_tier(errors, correct, DEFAULT)


@pytest.mark.parametrize("kwargs", [
    {"easy_max": -1},
    {"easy_max": 7, "medium_max": 7},
    {"easy_max": 8, "medium_max": 7},
    {"easy_max": 0, "medium_max": 0},
    {"min_usable": 0},
    {"min_usable": -3},
])
def test_invalid_policy(kwargs):
    with pytest.raises(ValueError):
        TierPolicy(**kwargs)


@pytest.mark.parametrize("kwargs", [{}, {"easy_max": 0, "medium_max": 1}, {"min_usable": 1}, {"min_usable": 9}])
def test_valid_policy(kwargs):
    TierPolicy(**kwargs)
