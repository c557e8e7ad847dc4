"""Verdicts as real judges write them: one table of realistic outputs in six models' styles.

Styles: Qwen2.5-72B (prose then JSON, fenced), DeepSeek-R1-Distill (``<think>`` with a draft
JSON inside, then the answer), HuatuoGPT-o1 (``## Thinking`` / ``## Final Response``),
GPT-4o-mini (fenced, tidy), o1-mini (bare, terse), small local models (single quotes,
trailing commas, Python booleans, unclosed braces, synonyms, echoed placeholders).
"""

from __future__ import annotations

import pytest

from agents.parsing import ParseError, parse_verdict
from agents.prompts import Templates

VERIFY = Templates.load().text("verify")

R_MI = "The reasoning correctly ties ST elevation in II, III and aVF to an inferior myocardial infarction."
R_DIS = "It picks pericarditis, but the tearing pain radiating to the back and unequal arm pressures point to dissection."
R_PMQ = "The abstract reports a significant reduction in readmissions, so answering yes is supported."

GOOD = [
    # --- Qwen2.5-72B: a sentence of prose, then the object (fenced or not)
    ("qwen-prose-bare", f'After reviewing the reasoning, here is my assessment:\n{{"verdict": "Correct", "reason": "{R_MI}"}}', "Correct", R_MI),
    ("qwen-prose-fenced", f'Here is my evaluation.\n\n```json\n{{\n  "verdict": "Error",\n  "reason": "{R_DIS}"\n}}\n```', "Error", R_DIS),
    ("qwen-fenced-then-note", f'```json\n{{"verdict": "Correct", "reason": "{R_PMQ}"}}\n```\n\nLet me know if you need more detail.', "Correct", R_PMQ),
    ("qwen-multiline", f'{{\n    "verdict": "Correct",\n    "reason": "{R_MI}"\n}}', "Correct", R_MI),
    ("qwen-json-upper-fence", f'```JSON\n{{"verdict": "Error", "reason": "{R_DIS}"}}\n```', "Error", R_DIS),
    ("qwen-keys-capitalised", f'{{"Verdict": "Correct", "Reason": "{R_PMQ}"}}', "Correct", R_PMQ),
    ("qwen-extra-key", f'{{"verdict": "Error", "reason": "{R_DIS}", "confidence": 0.8}}', "Error", R_DIS),
    ("qwen-braces-in-reason", '{"verdict": "Error", "reason": "It treats {troponin} as specific to pericarditis, which it is not."}', "Error", "It treats {troponin} as specific to pericarditis, which it is not."),
    ("qwen-escaped-quote", '{"verdict": "Error", "reason": "It calls the \\"classic\\" triad diagnostic of dissection; it is not."}', "Error", 'It calls the "classic" triad diagnostic of dissection; it is not.'),
    ("qwen-newline-in-reason", '{"verdict": "Correct", "reason": "Sound reasoning.\nAll options are weighed."}', "Correct", "Sound reasoning.\nAll options are weighed."),
    # --- DeepSeek-R1-Distill: thinking (with a draft object!) then the answer
    ("r1-draft-in-think", f'<think>\nThe path concludes B. Gold is B. Draft: {{"verdict": "Error", "reason": "draft"}}. Wait, the reasoning is actually fine.\n</think>\n\n{{"verdict": "Correct", "reason": "{R_MI}"}}', "Correct", R_MI),
    ("r1-leading-close", f'Okay, so I need to check whether the reasoning reaches C.\nIt does, but it misreads the chest X-ray.\n</think>\n\n```json\n{{"verdict": "Error", "reason": "{R_DIS}"}}\n```', "Error", R_DIS),
    ("r1-think-then-prose", f'<think>\nLet me go through the criteria one by one.\n1. Key factors: yes.\n2. Options: all considered.\n</think>\n\nBased on my review:\n\n{{"verdict": "Correct", "reason": "{R_PMQ}"}}', "Correct", R_PMQ),
    ("r1-think-braces", f'<think>\nIs {{this}} json? No. {{"verdict": "Correct"}} would be wrong here.\n</think>\n{{"verdict": "Error", "reason": "{R_DIS}"}}', "Error", R_DIS),
    ("r1-upper-tags", f'<THINK>checking</THINK>\n{{"verdict": "Correct", "reason": "{R_MI}"}}', "Correct", R_MI),
    ("r1-thinking-tag", f'<thinking>The reasoning ignores option D.</thinking>\n{{"verdict": "Error", "reason": "{R_DIS}"}}', "Error", R_DIS),
    # --- HuatuoGPT-o1: ## Thinking then ## Final Response
    ("huatuo-sections", f'## Thinking\n\nThe reasoning says inferior MI. The ECG supports it. {{"verdict": "Error"}} no.\n\n## Final Response\n\n{{"verdict": "Correct", "reason": "{R_MI}"}}', "Correct", R_MI),
    ("huatuo-fenced-final", f'## Thinking\nHmm, pericarditis versus dissection.\n## Final Response\n```json\n{{"verdict": "Error", "reason": "{R_DIS}"}}\n```', "Error", R_DIS),
    ("huatuo-final-prose", f'## Thinking\nThe study design is sound.\n\n## Final Response\nThe reasoning holds. {{"verdict": "Correct", "reason": "{R_PMQ}"}}', "Correct", R_PMQ),
    # --- GPT-4o-mini: tidy fenced JSON, sometimes a heading
    ("4omini-fenced", f'```json\n{{\n  "verdict": "Correct",\n  "reason": "{R_MI}"\n}}\n```', "Correct", R_MI),
    ("4omini-heading", f'### Evaluation\n\n```json\n{{\n  "verdict": "Error",\n  "reason": "{R_DIS}"\n}}\n```', "Error", R_DIS),
    ("4omini-plain-fence", f'```\n{{"verdict": "Correct", "reason": "{R_PMQ}"}}\n```', "Correct", R_PMQ),
    ("4omini-bold-verdict", f'{{"verdict": "**Error**", "reason": "{R_DIS}"}}', "Error", R_DIS),
    # --- o1-mini: bare and terse
    ("o1mini-bare", f'{{"verdict":"Correct","reason":"{R_MI}"}}', "Correct", R_MI),
    ("o1mini-error", f'{{"verdict":"Error","reason":"{R_DIS}"}}', "Error", R_DIS),
    ("o1mini-period", f'{{"verdict": "Correct.", "reason": "{R_PMQ}"}}', "Correct", R_PMQ),
    ("o1mini-space", f'  {{"verdict": " correct ", "reason": "  {R_MI}  "}}  ', "Correct", R_MI),
    # --- small local models: the usual slips, all mended
    ("small-single-quotes", "{'verdict': 'Error', 'reason': 'It misses the widened mediastinum on the X-ray.'}", "Error", "It misses the widened mediastinum on the X-ray."),
    ("small-trailing-comma", '{"verdict": "Correct", "reason": "It weighs all four options and rules out each wrong one.",}', "Correct", "It weighs all four options and rules out each wrong one."),
    ("small-unclosed", '{"verdict": "Error", "reason": "It confuses the murmur of aortic stenosis with regurgitation."', "Error", "It confuses the murmur of aortic stenosis with regurgitation."),
    ("small-unquoted-keys", '{verdict: "Correct", reason: "The answer follows from the elevated lipase."}', "Correct", "The answer follows from the elevated lipase."),
    ("small-mixed-quotes", "{\"verdict\": 'Correct', 'reason': \"The ECG findings are read correctly.\"}", "Correct", "The ECG findings are read correctly."),
    ("small-prose-around", 'Sure! Here is the JSON you asked for: {"verdict": "Error", "reason": "It says metformin causes hypoglycaemia on its own."} I hope this helps.', "Error", "It says metformin causes hypoglycaemia on its own."),
    ("small-unclosed-fence", '```json\n{"verdict": "Correct", "reason": "The reasoning is consistent with the abstract."}\n', "Correct", "The reasoning is consistent with the abstract."),
    ("small-two-objects", '{"verdict": "Correct", "reason": "Reaches the gold answer by sound steps."}\n{"verdict": "Correct", "reason": "Reaches the gold answer by sound steps."}', "Correct", "Reaches the gold answer by sound steps."),
    ("small-comment", '{\n  "verdict": "Error", // the path chose A\n  "reason": "It chose A although the context reports no benefit."\n}', "Error", "It chose A although the context reports no benefit."),
    # --- synonyms, mapped explicitly
    ("syn-incorrect", f'{{"verdict": "Incorrect", "reason": "{R_DIS}"}}', "Error", R_DIS),
    ("syn-wrong", f'{{"verdict": "Wrong", "reason": "{R_DIS}"}}', "Error", R_DIS),
    ("syn-right", f'{{"verdict": "Right", "reason": "{R_MI}"}}', "Correct", R_MI),
    ("syn-upper-error", f'{{"verdict": "ERROR!", "reason": "{R_DIS}"}}', "Error", R_DIS),
    ("syn-invalid", f'{{"verdict": "invalid", "reason": "{R_DIS}"}}', "Error", R_DIS),
    ("syn-valid", f'{{"verdict": "Valid", "reason": "{R_PMQ}"}}', "Correct", R_PMQ),
    ("syn-incorrect-single", f"{{'verdict': 'incorrect', 'reason': '{R_DIS}'}}", "Error", R_DIS),
    ("r1-syn-wrong", f'<think>the path chose A, gold is C</think>\n{{"verdict": "Wrong", "reason": "{R_DIS}"}}', "Error", R_DIS),
    # --- a short but real reason is a reason
    ("short-real-reason", '{"verdict": "Error", "reason": "Chose A; gold is C."}', "Error", "Chose A; gold is C."),
    ("terse-words-from-template", '{"verdict": "Correct", "reason": "Sound reasoning, no factual errors."}', "Correct", "Sound reasoning, no factual errors."),
    ("reason-mentions-sentences", '{"verdict": "Correct", "reason": "Two sentences of the abstract state the benefit clearly and the path cites both."}', "Correct", "Two sentences of the abstract state the benefit clearly and the path cites both."),
]

BAD = [
    # --- echoed placeholders: never a reason
    ("echo-angle", '{"verdict": "Correct", "reason": "<one or two sentences>"}', "repeats the instructions"),
    ("echo-angle-verdict", '{"verdict": "<Correct or Error>", "reason": "<one or two sentences>"}', 'must be "Correct" or "Error"'),
    ("echo-words", '{"verdict": "Error", "reason": "One or two sentences."}', "repeats the instructions"),
    ("echo-your-reason", '{"verdict": "Correct", "reason": "your reason here"}', "repeats the instructions"),
    ("echo-ellipsis", '{"verdict": "Error", "reason": "..."}', "repeats the instructions"),
    ("echo-explanation", '{"verdict": "Correct", "reason": "explanation"}', "repeats the instructions"),
    ("echo-angle-in-text", '{"verdict": "Error", "reason": "<name the specific mistake>"}', "repeats the instructions"),
    ("echo-small-single", "{'verdict': 'Correct', 'reason': '<a few sentences>'}", "repeats the instructions"),
    ("echo-template-words", '{"verdict": "Correct", "reason": "in your own words, why this reasoning earns that verdict"}', "repeats the instructions"),
    ("echo-template-mistake", '{"verdict": "Error", "reason": "The specific mistake it makes."}', "repeats the instructions"),
    ("echo-template-criterion", '{"verdict": "Error", "reason": "Does it contain any factual errors?"}', "repeats the instructions"),
    ("echo-description", '{"verdict": "Correct", "reason": "one or two sentences in your own words that explain the verdict"}', "repeats the instructions"),
    # --- anything other than the verdict words and their synonyms
    ("partially", f'{{"verdict": "Partially correct", "reason": "{R_MI}"}}', 'must be "Correct" or "Error"'),
    ("mostly", f'{{"verdict": "Mostly right", "reason": "{R_MI}"}}', 'must be "Correct" or "Error"'),
    ("yes", f'{{"verdict": "Yes", "reason": "{R_MI}"}}', 'must be "Correct" or "Error"'),
    ("bool", f'{{"verdict": true, "reason": "{R_MI}"}}', 'must be the string'),
    ("number", f'{{"verdict": 1, "reason": "{R_MI}"}}', 'must be the string'),
    ("empty-reason", '{"verdict": "Correct", "reason": "  "}', "non-empty string"),
    ("no-reason", '{"verdict": "Correct"}', 'no "reason" key'),
    ("no-verdict", f'{{"reason": "{R_MI}"}}', 'no "verdict" key'),
    ("prose-only", "The reasoning is correct because the ECG shows ST elevation in the inferior leads.", "no JSON object"),
    ("word-only", "Correct", "no JSON object"),
    # --- a draft inside the thinking is not the answer
    ("r1-only-draft", f'<think>\nDraft: {{"verdict": "Correct", "reason": "{R_MI}"}}\n</think>\n', "all thinking"),
    ("r1-unclosed-think", f'<think>\nThe answer is {{"verdict": "Error", "reason": "{R_DIS}"}} maybe', "all thinking"),
    ("huatuo-only-thinking", f'## Thinking\n{{"verdict": "Correct", "reason": "{R_MI}"}}', "all thinking"),
    ("r1-visible-prose", f'<think>{{"verdict": "Correct", "reason": "{R_MI}"}}</think>\nThe reasoning is correct.', "no JSON object"),
]


@pytest.mark.parametrize("text, verdict, reason", [c[1:] for c in GOOD], ids=[c[0] for c in GOOD])
def test_real_verdicts_parse(text: str, verdict: str, reason: str) -> None:
    assert parse_verdict(text, VERIFY) == (verdict, reason)


@pytest.mark.parametrize("text, error", [c[1:] for c in BAD], ids=[c[0] for c in BAD])
def test_real_verdicts_refused(text: str, error: str) -> None:
    with pytest.raises(ParseError, match=error):
        parse_verdict(text, VERIFY)


def test_the_table_is_large_enough() -> None:
    assert len(GOOD) + len(BAD) >= 60
