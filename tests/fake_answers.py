"""What the fake server answers (pure): ``answer`` reads the prompt; a sampler's wording (``--sampling``).

``answer(prompt)``: judge JSON, a summary, or a six-step CoT ending ``Final answer: X``.

A sampling server: a model sampled at a temperature above 0, unseeded, words every answer anew, even to a body it was sent
before; greedy (temperature 0) or seeded, it answers the same body the same way.  ``draw_of`` draws one
choice on those rules, deterministically from (body, the times it was seen, choice index); ``phrase``
picks one of a slot's wordings by it, and ``sampled_letter`` lets a hot CoT now and then conclude an
option other than the model's own answer (a verdict still judges the letter it is shown).  Without a
draw (the fake's default) every slot keeps its first wording and every CoT the model's answer, so the
fake's plain answers are unchanged.  Each of the nine CoTs of a question is a different text, so their
verify requests differ too, as with a real model (the plain fake's identical texts let the response cache and single-flight answer ~40% of a run's
requests: BENCHMARKS.md, issue 13, sixth pass).
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any, NamedTuple

_WORDINGS: dict[str, tuple[str, ...]] = {  # six CoT slots of six wordings: two of nine CoTs alike ~1 in 1,300
    "restate": ("Restate the question: it asks {stem}",
                "What is asked: {stem}",
                "Restating it: the question is {stem}",
                "The question, in short: {stem}",
                "First, what the question wants to know: {stem}",
                "Restate: {stem}"),
    "details": ("the findings point to one mechanism.",
                "the history and the examination findings point to a single underlying process.",
                "taken together, the reported findings suggest one mechanism rather than several.",
                "the study design and its outcome measures narrow this to one explanation.",
                "the population, the exposure and the measured outcome all bear on one mechanism.",
                "what was measured, and in whom, points towards one process."),
    "evaluate": ("Evaluate every option: {weighed}",
                 "Weigh each option against the findings: {weighed}",
                 "Option by option: {weighed}",
                 "Checking every option in turn: {weighed}",
                 "Each option against the evidence: {weighed}",
                 "Going through the options: {weighed}"),
    "rule_out": ("every option but {letter} conflicts with the findings.",
                 "the options other than {letter} each contradict at least one finding.",
                 "none of the alternatives to {letter} accounts for the reported outcome.",
                 "each remaining option fails against the data; {letter} does not.",
                 "the evidence leaves no room for any option except {letter}.",
                 "options besides {letter} would predict results the study did not see."),
    "compare": ("{letter} explains all the findings.",
                "{letter} is the only option consistent with every finding.",
                "{letter} accounts for the outcome and for the population studied.",
                "on balance {letter} fits the evidence best.",
                "{letter} is supported by the main result and by its secondary measures.",
                "only {letter} survives a comparison against the study's conclusions."),
    "conclude": ("Conclude: the answer is {letter}) {option}.",
                 "Conclusion: {letter}) {option}.",
                 "Therefore the answer is {letter}) {option}.",
                 "So the best answer is {letter}) {option}.",
                 "Concluding, {letter}) {option} is the answer.",
                 "Hence {letter}) {option}."),
    "correct": ("The reasoning soundly reaches {gold}, the correct answer.",
                "Each step follows from the question, and the conclusion {gold} is the correct answer.",
                "The argument is sound and arrives at {gold}, which is correct.",
                "The path weighs the options properly and concludes {gold}, the right answer.",
                "Sound reasoning; the final answer {gold} matches the correct one.",
                "The conclusion {gold} is correct and the steps leading to it hold."),
    "error": ("The reasoning concludes {stated}, but the correct answer is {gold}.",
              "The path ends on {stated}; the correct answer is {gold}.",
              "It misreads the findings and picks {stated} instead of {gold}.",
              "The conclusion {stated} is wrong: the evidence supports {gold}.",
              "The steps go astray and reach {stated}, not the correct {gold}.",
              "Answer {stated} does not follow from the findings, which support {gold}."),
    "summary": (" It fits the key findings best, and the other options are ruled out.",
                " It is the only option consistent with the study's main result.",
                " The evidence supports it directly; the alternatives conflict with the findings.",
                " The study's outcome points to it, and each other option is contradicted.",
                " It explains the reported findings, which the other options cannot.",
                " The findings favour it over every alternative."),
}


#: how often a sampled CoT at temperature 1 strays from the model's own answer (a lower temperature, less often)
STRAY_AT_1 = 0.25


class Draw(NamedTuple):
    """One choice's draw: which wording, and the temperature it was sampled at."""

    variant: int
    temperature: float


def pick(*parts: object, size: int = 8) -> int:
    return int.from_bytes(hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=size).digest(), "big")


def draw_of(body: dict[str, Any], body_key: str, seen: int, index: int) -> Draw:
    """The draw of choice ``index`` of a request whose body (``body_key``) was seen ``seen`` times before."""
    temperature = float(body.get("temperature", 1.0) or 0.0)
    greedy = temperature == 0 or body.get("seed") is not None
    return Draw(pick(body_key, index, size=16) if greedy else pick(body_key, seen, index, size=16), temperature)


_SLOT_BITS = {slot: 6 * k for k, slot in enumerate(_WORDINGS)}  # each slot reads its own 6 bits of the variant
_STRAY_BITS = 6 * len(_WORDINGS)  # then 14 bits for whether a CoT strays, the rest for where to


def phrase(draw: Draw | None, slot: str, **fields: str) -> str:
    """Slot ``slot``'s wording for ``draw`` (its first wording without one), with ``fields`` filled in."""
    wordings = _WORDINGS[slot]
    chosen = wordings[0] if draw is None else wordings[(draw.variant >> _SLOT_BITS[slot] & 63) % len(wordings)]
    return chosen.format(**fields)


def order_key(draw: Draw | None, default: object) -> object:
    """What a judge's choices (ranker's order, scorer's point) are drawn by: ``default`` (the plain fake's) or the draw."""
    return default if draw is None else draw.variant


def sampled_letter(draw: Draw | None, belief: str, letters: list[str]) -> str:
    """The letter a CoT concludes: the model's own answer to the question (``belief``), or now and then, the
    more often the hotter it is sampled, another option (``STRAY_AT_1`` of CoTs at temperature 1)."""
    others = [k for k in letters if k != belief]
    stray = min(draw.temperature, 1.0) * STRAY_AT_1 if draw is not None else 0.0
    if draw is None or not others or (draw.variant >> _STRAY_BITS & 0x3FFF) % 10_000 >= stray * 10_000:
        return belief
    return others[(draw.variant >> (_STRAY_BITS + 14)) % len(others)]


def tokens(text: str) -> int:
    return len(text) // 4 + 1


_BLOCK = re.compile(r"--- BEGIN (\w+) ---\n?(.*?)--- END \1 ---", re.S)
_FINAL = re.compile(r"Final answer:\s*\**\s*\(?([A-J])\b")
_GOLD = re.compile(r"^Correct answer:\s*([A-J])\)", re.M)
_OPTION = re.compile(r"^([A-J])\) (.*)$", re.M)
_STATED = re.compile(r"answer is ([A-J])\b")


def answer(prompt: str, *, index: int = 0, seed: object = None, draw: Draw | None = None) -> tuple[str, str]:
    """(kind, text) answering the user message ``prompt``; kind is "judge", "summary" or "cot".  ``draw``:
    a sampler's wording and stray letter (``fake_sampler``; None: the fake's one wording, the model's answer)."""
    blocks = {m.group(1): m.group(2) for m in _BLOCK.finditer(prompt)}
    said = _BLOCK.sub("", prompt)  # the instructions, without the text under review
    gold = m.group(1) if (m := _GOLD.search(said)) else None
    options = dict(_OPTION.findall(said))
    stated = _FINAL.findall(blocks.get("REASONING", "")) or _STATED.findall(blocks.get("RESPONSE", ""))
    right = bool(gold and stated and stated[-1] == gold)
    if '"verdict"' in said:
        reason = (phrase(draw, "correct", gold=str(gold)) if right else
                  phrase(draw, "error", stated=stated[-1] if stated else "nothing", gold=str(gold)))
        return "judge", json.dumps({"verdict": "Correct" if right else "Error", "reason": reason})
    if '"top2"' in said:
        names = sorted(re.findall(r"^\[([^\]\n]+)\]\s*$", said, re.M),
                       key=lambda n: pick(order_key(draw, seed), prompt, n))
        reasons = {n: "Less clear than the two chosen." for n in names[2:]}
        return "judge", json.dumps({"top2": names[:2], "reasons": reasons})
    if '"score"' in said and '"justification"' in said:
        score = (8 if right else 2) + pick(order_key(draw, seed), prompt) % 3
        return "judge", json.dumps({"score": score, "justification": "Accurate." if right else "Wrong answer."})
    if re.search(r"\bcondense\b|\bsummari[sz]e\b", said, re.I):
        letter = stated[-1] if stated else "A"
        return "summary", f"The answer is {letter}) {options.get(letter, '')}.{phrase(draw, 'summary')}"
    letters = sorted(options) or ["A", "B"]
    letter = gold or sampled_letter(draw, letters[pick(seed, prompt, index) % len(letters)], letters)
    stem = m.group(1)[:80] if (m := re.search(r"Question: (.*)", said)) else "which option is right"
    weighed = "; ".join(f"{k}) {'fits' if k == letter else 'does not fit'}" for k in letters)
    option = options.get(letter, "")
    return "cot", (f"1. {phrase(draw, 'restate', stem=stem)}\n2. Key clinical details and background:"
                   f" {phrase(draw, 'details')}\n3. {phrase(draw, 'evaluate', weighed=weighed)}\n4. Rule out:"
                   f" {phrase(draw, 'rule_out', letter=letter)}\n5. Compare what remains:"
                   f" {phrase(draw, 'compare', letter=letter)}\n6. {phrase(draw, 'conclude', letter=letter, option=option)}"
                   f"\nFinal answer: {letter}")
