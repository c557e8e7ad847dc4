"""Scores and rankings as real judges write them: one table of realistic outputs.

Scores accept 8, 8.0, "8", "8/10" (and a half point, rounded up) and refuse anything out of
1..10; rankings take the strict schema's ``[{"path", "reason"}]`` reasons or the older
mapping, resolve names written with brackets or a "Path" prefix, and refuse names not given.
"""

from __future__ import annotations

import pytest

from agents.parsing import ParseError, parse_ranking, parse_score

J = "Accurate and complete; it names the key ECG finding and rules out each distractor."
NAMES = ("qwen_1", "qwen_2", "qwen_3", "deepseek_1", "deepseek_2", "huatuo_1")

SCORES = [
    ("qwen-int", f'{{"score": 8, "justification": "{J}"}}', 8),
    ("qwen-float", f'{{"score": 8.0, "justification": "{J}"}}', 8),
    ("qwen-string", f'{{"score": "8", "justification": "{J}"}}', 8),
    ("qwen-out-of", f'{{"score": "8/10", "justification": "{J}"}}', 8),
    ("qwen-out-of-spaces", f'{{"score": "8 / 10", "justification": "{J}"}}', 8),
    ("qwen-out-of-words", f'{{"score": "9 out of 10", "justification": "{J}"}}', 9),
    ("qwen-half", f'{{"score": 8.5, "justification": "{J}"}}', 9),
    ("qwen-prose-fenced", f'Here is my evaluation:\n```json\n{{"score": 7, "justification": "{J}"}}\n```', 7),
    ("r1-think-draft", f'<think>\nDraft {{"score": 3, "justification": "draft"}}. No, better.\n</think>\n{{"score": 9, "justification": "{J}"}}', 9),
    ("huatuo", f'## Thinking\nThe response is good.\n## Final Response\n{{"score": 10, "justification": "{J}"}}', 10),
    ("4omini-fenced", f'```json\n{{\n  "score": 6,\n  "justification": "{J}"\n}}\n```', 6),
    ("o1mini-bare", f'{{"score":1,"justification":"{J}"}}', 1),
    ("small-single", f"{{'score': 5, 'justification': '{J}'}}", 5),
    ("small-trailing", f'{{"score": 4, "justification": "{J}",}}', 4),
    ("small-string-float", f'{{"score": "7.0", "justification": "{J}"}}', 7),
    ("small-caps-keys", f'{{"Score": 3, "Justification": "{J}"}}', 3),
    ("small-string-period", f'{{"score": "6.", "justification": "{J}"}}', 6),
    ("small-float-out-of", f'{{"score": "8.0/10", "justification": "{J}"}}', 8),
]
SCORE_ERRORS = [
    ("over", f'{{"score": 11, "justification": "{J}"}}', "from 1 to 10"),
    ("zero", f'{{"score": 0, "justification": "{J}"}}', "from 1 to 10"),
    ("negative", f'{{"score": -2, "justification": "{J}"}}', "from 1 to 10"),
    ("hundred-scale", f'{{"score": "85/100", "justification": "{J}"}}', "whole number"),
    ("over-half", f'{{"score": 10.5, "justification": "{J}"}}', "from 1 to 10"),
    ("word", f'{{"score": "eight", "justification": "{J}"}}', "whole number"),
    ("bool", f'{{"score": true, "justification": "{J}"}}', "whole number"),
    ("placeholder-score", f'{{"score": "<integer from 1 to 10>", "justification": "{J}"}}', "whole number"),
    ("placeholder-justification", '{"score": 7, "justification": "<a few sentences>"}', "repeats the instructions"),
    ("echo-justification", '{"score": 7, "justification": "A few sentences."}', "repeats the instructions"),
    ("no-justification", '{"score": 7}', 'no "justification" key'),
    ("prose", "I would give this response an 8 out of 10.", "no JSON object"),
    ("only-thinking", f'<think>{{"score": 8, "justification": "{J}"}}</think>', "all thinking"),
]

A, B = "Clear and complete, with every option weighed.", "Accurate, cites the key finding."
RANKINGS = [
    ("strict-array", f'{{"top2": ["qwen_1", "deepseek_2"], "reasons": [{{"path": "qwen_2", "reason": "{A}"}}]}}',
     ("qwen_1", "deepseek_2"), {"qwen_2": A}),
    ("older-mapping", f'{{"top2": ["qwen_1", "huatuo_1"], "reasons": {{"qwen_3": "{B}"}}}}', ("qwen_1", "huatuo_1"), {"qwen_3": B}),
    ("brackets", '{"top2": ["[qwen_2]", "[deepseek_1]"], "reasons": []}', ("qwen_2", "deepseek_1"), {}),
    ("path-prefix", '{"top2": ["Path qwen_2", "path: deepseek_1"], "reasons": []}', ("qwen_2", "deepseek_1"), {}),
    ("case", '{"top2": ["QWEN_3", "Huatuo_1"]}', ("qwen_3", "huatuo_1"), {}),
    ("r1-draft", '<think>{"top2": ["qwen_1", "qwen_2"]}</think>\n{"top2": ["deepseek_1", "huatuo_1"], "reasons": []}',
     ("deepseek_1", "huatuo_1"), {}),
    ("huatuo", '## Thinking\nqwen_1 is best.\n## Final Response\n{"top2": ["qwen_1", "qwen_3"], "reasons": []}', ("qwen_1", "qwen_3"), {}),
    ("fenced", '```json\n{"top2": ["qwen_1", "qwen_2"], "reasons": []}\n```', ("qwen_1", "qwen_2"), {}),
    ("single-quotes", "{'top2': ['qwen_1', 'qwen_2'], 'reasons': [],}", ("qwen_1", "qwen_2"), {}),
    ("echoed-reason-dropped", '{"top2": ["qwen_1", "qwen_2"], "reasons": [{"path": "qwen_3", "reason": "<one sentence>"}]}',
     ("qwen_1", "qwen_2"), {}),
    ("unknown-reason-path-dropped", f'{{"top2": ["qwen_1", "qwen_2"], "reasons": [{{"path": "ghost", "reason": "{A}"}}]}}',
     ("qwen_1", "qwen_2"), {}),
    ("null-reasons", '{"top2": ["qwen_1", "qwen_2"], "reasons": null}', ("qwen_1", "qwen_2"), {}),
    ("no-reasons", '{"top2": ["qwen_1", "qwen_2"]}', ("qwen_1", "qwen_2"), {}),
    ("two-reasons", f'{{"top2": ["qwen_1", "qwen_2"], "reasons": [{{"path": "qwen_3", "reason": "{A}"}}, {{"path": "huatuo_1", "reason": "{B}"}}]}}',
     ("qwen_1", "qwen_2"), {"qwen_3": A, "huatuo_1": B}),
]
RANKING_ERRORS = [
    ("echoed-name", '{"top2": ["<name>", "<name>"], "reasons": []}', "not one of the paths given"),
    ("echoed-not-chosen", '{"top2": ["qwen_1", "<name of a path not chosen>"]}', "not one of the paths given"),
    ("ghost", '{"top2": ["qwen_1", "gpt_9"]}', "not one of the paths given"),
    ("twice", '{"top2": ["qwen_1", "[qwen_1]"]}', "twice"),
    ("one", '{"top2": ["qwen_1"]}', "exactly 2"),
    ("three", '{"top2": ["qwen_1", "qwen_2", "qwen_3"]}', "exactly 2"),
    ("string", '{"top2": "qwen_1, qwen_2"}', "exactly 2"),
    ("numbers", '{"top2": [1, 2]}', "as strings"),
    ("reasons-string", '{"top2": ["qwen_1", "qwen_2"], "reasons": "others were worse"}', "must be a list"),
    ("prose", "The best two paths are qwen_1 and qwen_2.", "no JSON object"),
    ("no-top2", '{"best": ["qwen_1", "qwen_2"]}', 'no "top2" key'),
    ("only-thinking", '<think>{"top2": ["qwen_1", "qwen_2"]}</think>', "all thinking"),
]


@pytest.mark.parametrize("text, expected", [c[1:] for c in SCORES], ids=[c[0] for c in SCORES])
def test_real_scores(text: str, expected: int) -> None:
    assert parse_score(text) == (expected, J)


@pytest.mark.parametrize("text, error", [c[1:] for c in SCORE_ERRORS], ids=[c[0] for c in SCORE_ERRORS])
def test_real_scores_refused(text: str, error: str) -> None:
    with pytest.raises(ParseError, match=error):
        parse_score(text)


@pytest.mark.parametrize("text, top2, reasons", [c[1:] for c in RANKINGS], ids=[c[0] for c in RANKINGS])
def test_real_rankings(text: str, top2: tuple[str, str], reasons: dict[str, str]) -> None:
    assert parse_ranking(text, NAMES) == (top2, reasons)


@pytest.mark.parametrize("text, error", [c[1:] for c in RANKING_ERRORS], ids=[c[0] for c in RANKING_ERRORS])
def test_real_rankings_refused(text: str, error: str) -> None:
    with pytest.raises(ParseError, match=error):
        parse_ranking(text, NAMES)


def test_the_table_is_large_enough() -> None:
    assert len(SCORES) + len(SCORE_ERRORS) + len(RANKINGS) + len(RANKING_ERRORS) >= 55
