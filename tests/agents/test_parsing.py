"""Output parsing: JSON extraction, the three judges, thinking splits and stated answers."""

from __future__ import annotations

import pytest

from agents.parsing import (
    ParseError,
    extract_json,
    parse_ranking,
    parse_score,
    parse_verdict,
    split_thinking,
    stated_answer,
)

OPTS4 = ("Pericarditis", "Myocardial infarction", "Aortic dissection", "Pulmonary embolism")
OPTS3 = ("yes", "no", "maybe")
NAMES = ("qwen_1", "qwen_2", "deepseek_1", "huatuo_3")


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"a": 1}', {"a": 1}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ('```\n{"a": 1}\n```', {"a": 1}),
        ('Here is my verdict:\n{"a": 1}\nHope that helps!', {"a": 1}),
        ('{"a": {"b": {"c": [1, {"d": 2}]}}} trailing {"x": 0}', {"a": {"b": {"c": [1, {"d": 2}]}}}),
        ('{"reason": "a brace } inside { a string", "v": 1}', {"reason": "a brace } inside { a string", "v": 1}),
        ('{"reason": "escaped \\" quote and } brace", "v": 2}', {"reason": 'escaped " quote and } brace', "v": 2}),
        ("note {not json} then {\"a\": 3}", {"a": 3}),
        ('{"outer": broken, "inner": {"a": 4}}', {"a": 4}),
        ('{unclosed prose {"a": 5}', {"a": 5}),
        ('{"reason": "line one\nline two"}', {"reason": "line one\nline two"}),
        ('```json\n{"a": 6}\n```\n{"a": 7}', {"a": 6}),
    ],
    ids=["bare", "fenced-json", "fenced-plain", "prose", "nested", "braces-in-string", "escaped-quote",
         "skip-invalid", "inner-of-invalid", "inner-of-unclosed", "raw-newline", "fence-first"],
)
def test_extract_json(text: str, expected: dict) -> None:
    assert extract_json(text) == expected


@pytest.mark.parametrize(
    "text, error",
    [
        ("no json here", "no JSON object"),
        ('{', "no readable JSON object"),
        ("[1, 2]", "no JSON object"),
        ("", "no JSON object"),
    ],
)
def test_extract_json_errors(text: str, error: str) -> None:
    with pytest.raises(ParseError, match=error):
        extract_json(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"verdict": "Correct", "reason": "Sound."}', ("Correct", "Sound.")),
        ('{"verdict": "Correct.", "reason": "Sound."}', ("Correct", "Sound.")),
        ('{"verdict": " correct ", "reason": " Sound. "}', ("Correct", "Sound.")),
        ('{"verdict": "ERROR!", "reason": "Wrong option."}', ("Error", "Wrong option.")),
        ('{"verdict": "**Error**", "reason": "Picks B."}', ("Error", "Picks B.")),
        ('{"Verdict": "Error", "REASON": "keys in any case"}', ("Error", "keys in any case")),
        ('```json\n{"verdict": "Error", "reason": "fenced"}\n```', ("Error", "fenced")),
        ('My review: {"verdict": "Correct", "reason": "uses {braces}"} done.', ("Correct", "uses {braces}")),
    ],
)
def test_parse_verdict(text: str, expected: tuple[str, str]) -> None:
    assert parse_verdict(text) == expected


@pytest.mark.parametrize(
    "text, error",
    [
        ('{"verdict": true, "reason": "x"}', r'"verdict" must be the string.*true'),
        ('{"verdict": 1, "reason": "x"}', r'"verdict" must be the string.*1'),
        ('{"verdict": "Partially correct", "reason": "x"}', r'must be "Correct" or "Error"'),
        ('{"verdict": "Correct"}', r'no "reason" key'),
        ('{"verdict": "Correct", "reason": "  "}', r'"reason" must be a non-empty string'),
        ('{"reason": "x"}', r'no "verdict" key'),
        ("Correct", "no JSON object"),
    ],
)
def test_parse_verdict_errors(text: str, error: str) -> None:
    with pytest.raises(ParseError, match=error):
        parse_verdict(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"top2": ["qwen_1", "huatuo_3"], "reasons": {"qwen_2": "vague", "deepseek_1": "long"}}',
         (("qwen_1", "huatuo_3"), {"qwen_2": "vague", "deepseek_1": "long"})),
        ('{"top2": ["[qwen_2]", " Deepseek_1 "]}', (("qwen_2", "deepseek_1"), {})),
        ('{"TOP2": ["qwen_1", "qwen_2"], "reasons": {"ghost_9": "dropped", "[huatuo_3]": "too long", "deepseek_1": 5}}',
         (("qwen_1", "qwen_2"), {"huatuo_3": "too long"})),
        ('{"top2": ["qwen_1", "qwen_2"], "reasons": null}', (("qwen_1", "qwen_2"), {})),
    ],
    ids=["plain", "brackets-and-case", "drop-unknown-reasons", "null-reasons"],
)
def test_parse_ranking(text: str, expected) -> None:
    assert parse_ranking(text, NAMES) == expected


@pytest.mark.parametrize(
    "text, error",
    [
        ('{"top2": ["qwen_1", "ghost_9"]}', r'"ghost_9", which is not one of the paths given; valid names: qwen_1, '),
        ('{"top2": ["qwen_1", "qwen_1"]}', r"'qwen_1' twice"),
        ('{"top2": ["qwen_1", "[qwen_1]"]}', r"'qwen_1' twice"),
        ('{"top2": ["qwen_1"]}', r"exactly 2"),
        ('{"top2": ["qwen_1", "qwen_2", "huatuo_3"]}', r"exactly 2"),
        ('{"top2": "qwen_1, qwen_2"}', r"exactly 2"),
        ('{"top2": ["qwen_1", 2]}', r"as strings"),
        ('{"reasons": {}}', r'no "top2" key'),
        ('{"top2": ["qwen_1", "qwen_2"], "reasons": "all fine"}', r'"reasons" must be a list'),
    ],
)
def test_parse_ranking_errors(text: str, error: str) -> None:
    with pytest.raises(ParseError, match=error):
        parse_ranking(text, NAMES)


@pytest.mark.parametrize(
    "text, expected",
    [
        ('{"score": 8, "justification": "Good."}', (8, "Good.")),
        ('{"score": "8", "justification": "Good."}', (8, "Good.")),
        ('{"score": 8.0, "justification": "Good."}', (8, "Good.")),
        ('{"score": "9/10", "justification": "Good."}', (9, "Good.")),
        ('{"Score": 1, "Justification": "Poor."}', (1, "Poor.")),
        ('Evaluation:\n```json\n{"score": 10, "justification": "Excellent."}\n```', (10, "Excellent.")),
    ],
)
def test_parse_score(text: str, expected: tuple[int, str]) -> None:
    assert parse_score(text) == expected


@pytest.mark.parametrize(
    "text, error",
    [
        ('{"score": 11, "justification": "x"}', r"from 1 to 10, got 11"),
        ('{"score": 0, "justification": "x"}', r"from 1 to 10, got 0"),
        ('{"score": "eight", "justification": "x"}', r'whole number.*"eight"'),
        ('{"score": 10.5, "justification": "x"}', r"from 1 to 10, got 10.5"),
        ('{"score": true, "justification": "x"}', r"whole number.*true"),
        ('{"score": 7}', r'no "justification" key'),
        ('{"justification": "x"}', r'no "score" key'),
    ],
)
def test_parse_score_errors(text: str, error: str) -> None:
    with pytest.raises(ParseError, match=error):
        parse_score(text)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("Plain answer.\nFinal answer: B", ("", "Plain answer.\nFinal answer: B")),
        ("<think>\nhmm, MI?\n</think>\n\nStep 1...\nFinal answer: B", ("hmm, MI?", "Step 1...\nFinal answer: B")),
        ("<THINK>a</THINK>mid<think>b</think> end", ("a\n\nb", "mid end")),
        ("reasoning (opening tag was in the prompt)\n</think>\nVisible.<think>more</think>", (
            "reasoning (opening tag was in the prompt)\n\nmore", "Visible.")),
        ("Lead.<think>never closed", ("never closed", "Lead.")),
        ("## Thinking\n\nLet me think.\n### detail\nmore\n\n## Final Response\n\nStep 1.\nFinal answer: C",
         ("Let me think.\n### detail\nmore", "Step 1.\nFinal answer: C")),
        ("## Thinking\nthoughts\n## Answer\nC it is", ("thoughts", "## Answer\nC it is")),
        ("## Thinking\nonly thoughts, truncated", ("only thoughts, truncated", "")),
        ("Intro\n## Thinking\nnot leading\n## Final Response\nx", ("", "Intro\n## Thinking\nnot leading\n## Final Response\nx")),
    ],
    ids=["none", "think", "two-blocks", "leading-close", "unclosed", "huatuo", "other-header", "no-header", "not-leading"],
)
def test_split_thinking(text: str, expected: tuple[str, str]) -> None:
    assert split_thinking(text) == expected


@pytest.mark.parametrize(
    "text, options, expected",
    [
        ("... Final answer: B", OPTS4, "B"),
        ("Final Answer: **B**", OPTS4, "B"),
        ("**Final Answer:** C", OPTS4, "C"),
        ("**Final Answer**: D", OPTS4, "D"),
        ("So the final answer is (C).", OPTS4, "C"),
        ("Answer: D) Pulmonary embolism", OPTS4, "D"),
        ("Final answer: Myocardial infarction.", OPTS4, "B"),
        ("Final answer: myocardial INFARCTION", OPTS4, "B"),
        ("Final answer: maybe", OPTS3, "C"),
        ("Final answer:\n\nA) Pericarditis", OPTS4, "A"),
        ("The answer is option C.", OPTS4, "C"),
        ("final answer: b", OPTS4, "B"),
        ("Answer: A. Pericarditis\nOn reflection...\nFinal answer: B", OPTS4, "B"),
        ("Final answer: B\nAs a summary, the answer is not C but the answer is A", OPTS4, "B"),
        ("the answer is a rare form of angina", OPTS4, None),
        ("Final answer: D", OPTS3, None),
        ("I think it is B.", OPTS4, None),
        ("Final answer: something else", OPTS4, None),
        ("", OPTS4, None),
    ],
)
def test_stated_answer(text: str, options: tuple[str, ...], expected: str | None) -> None:
    assert stated_answer(text, options) == expected
