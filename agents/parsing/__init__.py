"""Output parsing: pure functions from a model's text to what a stage needs.

Every failure is a ``ParseError`` whose message says precisely what is wrong,
in words fit to be sent back to the model in a correction retry.

- ``thinking``: reasoning models' ``<think>`` blocks and ``## Thinking`` sections, and the CoT kept from them
- ``json_out``: the judge's JSON object, read from the visible part only, tolerant of real models' habits
- ``judges``: verdicts, rankings and scores from that object
- ``answers``: the option a CoT finally commits to
"""

from .answers import stated_answer
from .errors import ParseError
from .json_out import extract_json, visible_json
from .judges import is_placeholder, parse_ranking, parse_score, parse_verdict
from .thinking import compose_cot, split_thinking, strip_think_tags

__all__ = [
    "ParseError",
    "compose_cot",
    "extract_json",
    "is_placeholder",
    "parse_ranking",
    "parse_score",
    "parse_verdict",
    "split_thinking",
    "stated_answer",
    "strip_think_tags",
    "visible_json",
]
