"""The option a CoT finally commits to, in the forms real models write it.

``Final answer: C``, ``**C**``, ``(C)``, ``\\boxed{C}``, a ``### Final Answer`` heading with the
letter below it, ``Answer: C. <text>``, ``The answer to this question is A)``, the option's
text instead of its letter, and PubMedQA's ``Yes, ...``.  An echoed option list is not an
answer, nor is a template's ``<letter>``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from bus.messages import LETTERS

from .answer_heads import answer_heads

_BOXED = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_LEADING_NOISE = re.compile(r"^(?:[\s*_`(\[$:]|\\text\s*\{|\\textbf\s*\{|\boption\b|\bchoice\b|\bletter\b)+", re.I)
_TRAILING_NOISE = re.compile(r"[\s*_`.!;,)\]}$]+$")
_LIST_MARK = re.compile(r"(?:^|\s)\(?([A-J])[).:]\s", re.M)
_BOLD_LINE = re.compile(r"^\s*\*\*\s*\(?([A-J])(?:[).:]|\*\*|\s|$)", re.M)
_LEAD_WORD = re.compile(r"^\W*([A-Za-z]+)\b(?=\s*[,.;:!\n]|\s*$)")
_LETTER_FIRST = re.compile(r"([A-Ja-j])(?![A-Za-z0-9])(.*)")
_MARKUP = re.compile(r"[\s*_`.!)\]}$]")
_ONE_LETTER = re.compile(r"\s*\(?([A-J])[).]?\s*")
_PARAGRAPH_BREAK = re.compile(r"\n\s*\n")


def _is_option_list(text: str) -> bool:
    """Two or more distinct ``A)`` / ``B.`` markers: the options echoed, not one chosen."""
    return len({m.group(1) for m in _LIST_MARK.finditer(text)}) >= 2


def _by_text(said: str, options: Sequence[str]) -> str | None:
    """The letter of the option whose text ``said`` is, or starts with (the longest such option)."""
    said = said.casefold()
    best: tuple[int, str] | None = None
    for i, opt in enumerate(options):
        text = opt.strip().rstrip(".").casefold()
        if not text:
            continue
        if said == text or (said.startswith(text) and not said[len(text) : len(text) + 1].isalnum()):
            if best is None or len(text) > best[0]:
                best = (len(text), LETTERS[i])
    return best[1] if best else None


def _answer_token(rest: str, options: Sequence[str]) -> str | None:
    """The letter ``rest`` names: by the option's text, else by a letter (A-J, not yet checked against the count)."""
    body = _LEADING_NOISE.sub("", rest)
    if _is_option_list(body):
        return None
    said = _TRAILING_NOISE.sub("", body).strip()
    if said and (letter := _by_text(said, options)):
        return letter
    m = _LETTER_FIRST.match(body)
    if m:
        letter, after = m.group(1), m.group(2)
        # A bare lower-case letter is only a letter if nothing but markup follows ("answer is a rare...").
        if letter.isupper() or after.startswith(")") or not _MARKUP.sub("", after):
            return letter.upper()
    return None


def _statement_rest(text: str, end: int) -> str:
    """What follows an answer head: the rest of its line, or (a heading) the next non-empty line."""
    line_end = text.find("\n", end)
    rest = text[end : line_end if line_end >= 0 else len(text)]
    if rest.strip(" \t*_`:") or line_end < 0:
        return rest
    following = [ln for ln in text[line_end:].split("\n") if ln.strip()][:2]
    if not following or _is_option_list("\n".join(following)):
        return ""
    return following[0]


def _statements(text: str, options: Sequence[str]) -> dict[bool, str]:
    """The last letter stated by a ``Final answer`` head (key True) and by any other answer head (False)."""
    found: dict[bool, str] = {}
    for m in answer_heads(text):
        token = _answer_token(_statement_rest(text, m.end()), options)
        if token is not None:
            found[m.group("final") is not None] = token
    return found


def _boxed(text: str, options: Sequence[str]) -> str | None:
    answers = [_answer_token(m.group(1), options) for m in _BOXED.finditer(text)]
    return next((a for a in reversed(answers) if a is not None), None)


def _bold_last(text: str) -> str | None:
    """A bold letter opening the last line (``**C**``, ``**C) text**``), or a reply that is one letter only."""
    if m := _ONE_LETTER.fullmatch(text):
        return m.group(1)
    lines = [ln for ln in text.strip().split("\n") if ln.strip()]
    if lines and (m := _BOLD_LINE.match(lines[-1])):
        return m.group(1)
    return None


def _lead_word(text: str, options: Sequence[str]) -> str | None:
    """PubMedQA-style one-word options (yes / no / maybe): the word a paragraph opens with."""
    if not options or any(len(o.split()) != 1 for o in options):
        return None
    paragraphs = [p for p in _PARAGRAPH_BREAK.split(text.strip()) if p.strip()]
    for para in (paragraphs[-1:] + paragraphs[:1]) if paragraphs else []:
        if (m := _LEAD_WORD.match(para)) and (letter := _by_text(m.group(1), options)):
            return letter
    return None


def stated_answer(text: str, options: Sequence[str]) -> str | None:
    """The letter the CoT finally commits to, or None.

    In order: the last ``Final answer ...`` statement; the last ``\\boxed{}``; the last
    ``Answer: ...`` / ``the answer is ...``; a bold letter on the last line; for one-word
    options (PubMedQA), the word the conclusion opens with.  A letter beyond the options gives None.
    """
    found = _statements(text, options)
    letter = (found.get(True) or _boxed(text, options) or found.get(False) or _bold_last(text)
              or _lead_word(text, options))
    if letter is None or LETTERS.index(letter) >= len(options):
        return None
    return letter
