"""A ``msgspec.ValidationError`` of a configuration, as one line naming section, key and what is allowed.

msgspec says ``Invalid enum value 'SOMETIMES' - at `$.store.synchronous```; a
user reads ``[store] synchronous: 'SOMETIMES' is not allowed (allowed: "OFF",
"NORMAL", "FULL", "EXTRA")``.  The allowed values come from the schema's types.
"""

from __future__ import annotations

import re
import types
import typing
from typing import Any

import msgspec

class ConfigError(ValueError):
    """The configuration is unusable; the message names the file and the key."""


_AT = re.compile(r"^(?P<what>.*?)(?: - at `\$(?P<path>[^`]*)`)?$", re.S)
_SEGMENT = re.compile(r"\.([^.\[]+)|\[(\d+)\]")
_WORDS = {"int": "an integer", "float": "a number", "str": "a string", "bool": "true or false",
          "array": "a list", "object": "a table", "null": "absent"}


def _word(match: re.Match[str]) -> str:
    return _WORDS.get(match.group(1), match.group(1))


def _plain(text: str) -> str:
    text = re.sub(r"`(\w+)`", _word, text)
    text = re.sub(r"^Expected (a list) of length >= 1$", r"must not be empty", text)
    text = re.sub(r"^Expected ", "must be ", text)
    return text


def _unwrap(tp: Any) -> Any:
    """The type inside ``Annotated`` and ``X | None``."""
    while True:
        if typing.get_origin(tp) is typing.Annotated:
            tp = typing.get_args(tp)[0]
            continue
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            rest = [a for a in typing.get_args(tp) if a is not type(None)]
            if len(rest) == 1:
                tp = rest[0]
                continue
        return tp


def _walk(root: type, path: list[str | int]) -> Any:
    """The schema type at ``path`` (None where the schema does not say)."""
    tp: Any = root
    for seg in path:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
            tp = typing.get_type_hints(tp, include_extras=True).get(str(seg))
        elif typing.get_origin(tp) is dict:
            tp = typing.get_args(tp)[1]
        elif typing.get_origin(tp) in (list, tuple):
            tp = typing.get_args(tp)[0]
        else:
            return None
        if tp is None:
            return None
    return tp


def _allowed(tp: Any) -> str | None:
    tp = _unwrap(tp)
    if typing.get_origin(tp) is typing.Literal:
        return ", ".join(f'"{v}"' for v in typing.get_args(tp))
    if tp is bool:
        return "true, false"
    return None


def _known(tp: Any) -> str:
    tp = _unwrap(tp)
    if isinstance(tp, type) and issubclass(tp, msgspec.Struct):
        return ", ".join(sorted(tp.__struct_fields__))
    return ""


def _where(path: list[str | int]) -> tuple[str, str]:
    """(``[section.sub]``, ``key[1]``) of a path; the section is empty for a top-level key."""
    names = [i for i, s in enumerate(path) if isinstance(s, str)]
    if not names:
        return "", ""
    last = names[-1]
    section = ".".join(str(s) for s in path[:last])
    key = str(path[last]) + "".join(f"[{s}]" for s in path[last + 1:])
    return (f"[{section}]" if section else ""), key


def describe(exc: msgspec.ValidationError, root: type, source: str, prefix: tuple[str, ...] = ()) -> str:
    """``prefix``: where in ``root`` the converted value sits (msgspec names no dict keys: ``$[...]``)."""
    match = _AT.match(str(exc))
    assert match is not None
    what = match.group("what")
    path: list[str | int] = [*prefix, *(m.group(1) if m.group(1) is not None else int(m.group(2))
                                        for m in _SEGMENT.finditer(match.group("path") or ""))]
    unknown = re.match(r"Object contains unknown field `(.+)`", what)
    if unknown:
        name, known = unknown.group(1), _known(_walk(root, path))
        if not path:
            return f"{source}: unknown section [{name}] (known: {known})"
        section = ".".join(str(s) for s in path)
        return f"{source}: [{section}] unknown key {name} (known: {known})"
    missing = re.match(r"Object missing required field `(.+)`", what)
    if missing:
        section = ".".join(str(s) for s in path)
        return f"{source}: [{section}] {missing.group(1)} is required"
    section, key = _where(path)
    if _unwrap(_walk(root, path)) is not None and what.startswith("Expected `object`"):
        return f"{source}: [{'.'.join(str(s) for s in path)}] {_plain(what)}"
    allowed = _allowed(_walk(root, path))
    enum = re.match(r"Invalid enum value (.+)", what)
    text = f"{enum.group(1)} is not allowed" if enum else _plain(what)
    where = f"{section} {key}".strip()
    return f"{source}: {where}: {text}" + (f" (allowed: {allowed})" if allowed else "")
