"""What the capacity benchmark's fake replicas write (pure): CoTs of a given length in the styles real
models use, padded judge and summary texts, and which stage a prompt belongs to.

Styles, by served model name: Qwen-style plain six numbered steps; DeepSeek-R1-distill-style
``<think>…</think>`` then the steps; HuatuoGPT-o1-style ``## Thinking`` / ``## Final Response``.  Every
CoT ends with the line ``Final answer: X`` the prompt asks for.  The filler is drawn word by word
from clinical phrases with the request's own random stream, so the texts neither repeat nor
compress unrealistically well; none of it mentions other attempts (the self-contained gate).
"""

from __future__ import annotations

import json
import random
import re

_CLAUSES = (
    "the presentation is consistent with", "this finding argues against", "the time course points toward",
    "a key discriminating feature is", "laboratory data would help distinguish", "the pathophysiology involves",
    "an important pitfall is to overlook", "imaging typically shows", "the classic triad includes",
    "epidemiology favours", "the mechanism of injury suggests", "first-line management would include",
    "a normal result would make it unlikely", "the vital signs indicate", "treatment response supports",
)
_TERMS = (
    "impaired renal perfusion", "a type IV hypersensitivity reaction", "elevated jugular venous pressure",
    "immune complex deposition", "a left-sided lesion", "systemic inflammation", "an obstructive pattern",
    "reduced ejection fraction", "hepatocellular injury", "granulomatous disease", "volume depletion",
    "a metabolic alkalosis", "portal hypertension", "an autoimmune process", "a thromboembolic event",
    "bacterial infection", "adrenal insufficiency", "demyelination", "increased intracranial pressure",
    "electrolyte imbalance", "a drug adverse effect", "chronic hypoxaemia", "a paraneoplastic syndrome",
)
_TAILS = ("in this patient", "given the history", "at this age", "in the acute setting", "on balance",
          "as the findings show", "which matters here", "on examination")
_STEPS = ("Restate the question", "Key clinical details and background", "Evaluate every option", "Rule out",
          "Compare what remains", "Conclude")


def sentence(rng: random.Random) -> str:
    clause, term, tail = rng.choice(_CLAUSES), rng.choice(_TERMS), rng.choice(_TAILS)
    return f"{clause[0].upper()}{clause[1:]} {term} {tail}."


def filler(rng: random.Random, chars: int) -> str:
    """About ``chars`` characters of clinical-sounding sentences (at least one)."""
    out, n = [], 0
    while n < chars or not out:
        s = sentence(rng)
        out.append(s)
        n += len(s) + 1
    return " ".join(out)


def stage_of(prompt: str) -> str:
    """The stage whose template wrote ``prompt`` (the user message): by its fixed wording."""
    if '"verdict"' in prompt:
        return "verify"
    if '"top2"' in prompt:
        return "rank"
    if '"score"' in prompt and '"justification"' in prompt:
        return "score"
    if re.search(r"\bcondense\b|\bsummari[sz]e\b", prompt, re.I):
        return "summarize"
    if "Original reasoning:" in prompt:
        return "refine"
    if "Reasoning to improve:" in prompt or "from scratch" in prompt:
        return "regenerate"
    if "Reply with OK." in prompt:
        return "ping"
    return "generate"


_OPTION = re.compile(r"^([A-J])\) (.*)$", re.M)


def cot(prompt: str, letter: str, model: str, chars: int, rng: random.Random) -> str:
    """A six-step CoT of about ``chars`` characters committing to ``letter``, in ``model``'s style."""
    options = dict(_OPTION.findall(prompt.split("Work through", 1)[0]))
    stem = m.group(1)[:160] if (m := re.search(r"Question: (.*)", prompt)) else "which option is right"
    letters = sorted(options) or ["A", "B"]
    name = model.lower()
    think_share = 0.45 if ("deepseek" in name or "huatuo" in name) else 0.0
    weighed = " ".join(f"{k}) {options.get(k, '')}: {'fits the findings' if k == letter else 'does not fit'}."
                       for k in letters)
    heads = [f"it asks {stem}", "the findings point to one mechanism.", weighed,
             f"every option but {letter} conflicts with the findings.", f"{letter} explains all the findings.",
             f"the answer is {letter}) {options.get(letter, '')}."]
    fixed = sum(len(t) + len(h) + 6 for t, h in zip(_STEPS, heads)) + 18  # what the steps say before any filler
    per_step = max(40, (int(chars * (1 - think_share)) - fixed) // 6)
    steps = "\n".join(f"{i}. {title}: {head} {filler(rng, per_step)}"
                      for i, (title, head) in enumerate(zip(_STEPS, heads), 1))
    visible = f"{steps}\nFinal answer: {letter}"
    if not think_share:
        return visible
    thinking = filler(rng, int(chars * think_share))
    if "deepseek" in name:
        return f"<think>\nOkay, let me work through this. {thinking}\n</think>\n\n{visible}"
    return f"## Thinking\n\n{thinking}\n\n## Final Response\n\n{visible}"


def padded_summary(base: str, chars: int, rng: random.Random) -> str:
    """The summary ``base`` (it states the answer) followed by about ``chars`` characters of rationale."""
    return f"{base} {filler(rng, max(0, chars - len(base)))}".strip()


def judge_text(obj_text: str, rng: random.Random) -> str:
    """A judge's JSON as real models send it: bare, or fenced with a line before it (1 in 3)."""
    if rng.random() < 1 / 3:
        return f"Here is my assessment.\n```json\n{json.dumps(json.loads(obj_text), indent=2)}\n```"
    return obj_text
