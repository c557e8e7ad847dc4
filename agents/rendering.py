"""A ``string.Template`` section compiled once into literal pieces and variable names.

``string.Template.substitute`` scans its text with a regular expression on
every call; the pipeline renders the same handful of template texts on every
LLM call, so each is scanned once and then filled in by a join.  Same result as
``substitute`` (``$$`` a dollar sign, ``$name`` and ``${name}`` variables, a
missing variable a ``KeyError``).
"""

from __future__ import annotations

import string
from collections.abc import Mapping

Pieces = tuple[tuple[str, ...], tuple[str, ...]]  # literal texts, and the variable after each (one fewer)


def compile_section(section: str) -> Pieces:
    literals: list[str] = []
    names: list[str] = []
    start, buf = 0, ""
    for m in string.Template.pattern.finditer(section):
        buf += section[start : m.start()]
        start = m.end()
        if m.group("escaped") is not None:
            buf += string.Template.delimiter
        elif (name := m.group("named") or m.group("braced")) is not None:
            literals.append(buf)
            names.append(name)
            buf = ""
        else:  # templates are checked when loaded (``string.Template.is_valid``)
            raise ValueError(f"invalid '$' placeholder at character {m.start()} of a template")
    literals.append(buf + section[start:])
    return tuple(literals), tuple(names)


def substitute(pieces: Pieces, fields: Mapping[str, str]) -> str:
    """What ``string.Template(section).substitute(fields)`` gives."""
    literals, names = pieces
    out = [literals[0]]
    for name, literal in zip(names, literals[1:]):
        out.append(str(fields[name]))
        out.append(literal)
    return "".join(out)
