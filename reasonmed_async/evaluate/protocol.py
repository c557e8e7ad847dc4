"""The zero-shot multiple-choice protocol of ``reasonmed eval``: prompt and answer extraction (pure).

The default is the simple-evals convention (openai/simple-evals, its multiple-choice query
template and ``ANSWER_PATTERN_MULTICHOICE``): the model is asked to think step by step and to end
with a line ``Answer: $LETTER``; the first match of that one pattern in the visible text (a
``<think>`` block set aside) is the answer.  Nothing else is read as a letter: an answer not in
that form is an extraction failure, counted, never scored as a guess.

A lenient extractor is reported beside it, labelled: the project's own answer parser (``Final
answer: B``, ``the answer is (B)``, an option's text), then ``\\boxed{B}``, then a bold or
bracketed letter on the last line.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from agents.llm import ChatMessage
from agents.parsing import split_thinking, stated_answer
from bus import LETTERS, Question

PROTOCOL = "simple-evals"
TEMPLATE = (
    "Answer the following multiple choice question. The last line of your response should be of the "
    "following format: 'Answer: $LETTER' (without quotes) where LETTER is one of {letters}. "
    "Think step by step before answering.\n\n{context}{stem}\n\n{options}"
)
_BOXED = re.compile(r"\\boxed\{\s*\\?(?:text\{)?\(?([A-J])\)?")
_MARKED = re.compile(r"(?:\*\*|\()\s*\(?([A-J])\)?\s*(?:\*\*|\))")


def prompt(q: Question) -> str:
    letters = LETTERS[: len(q.options)]
    context = f"Context: {q.context.strip()}\n\n" if q.context.strip() else ""
    options = "\n".join(f"{LETTERS[i]}) {o}" for i, o in enumerate(q.options))
    return TEMPLATE.format(letters="".join(letters), context=context, stem=q.stem.strip(), options=options)


def messages(q: Question) -> tuple[ChatMessage, ...]:
    return (ChatMessage("user", prompt(q)),)


def _pattern(n_options: int) -> re.Pattern[str]:
    last = LETTERS[n_options - 1]
    return re.compile(rf"(?i)Answer[ \t]*:[ \t]*\$?([A-{last}])\$?")


def strict(text: str, n_options: int) -> str | None:
    """simple-evals: the first ``Answer: X`` of the visible text, X a letter of the options."""
    _, visible = split_thinking(text)
    m = _pattern(n_options).search(visible)
    return m.group(1).upper() if m else None


def lenient(text: str, options: Sequence[str]) -> str | None:
    """The lenient reading (reported beside the strict one, labelled)."""
    _, visible = split_thinking(text)
    allowed = LETTERS[: len(options)]
    if (letter := stated_answer(visible, options)) is not None:
        return letter
    if boxed := _BOXED.findall(visible):
        return boxed[-1] if boxed[-1] in allowed else None
    lines = [line for line in visible.strip().splitlines() if line.strip()]
    if lines:
        marked = [x for x in _MARKED.findall(lines[-1]) if x in allowed]
        if marked:
            return marked[-1]
    return None
