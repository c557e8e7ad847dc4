"""A message row's payload without what its own columns say (schema v5).

The skeleton of every message (``texts.Splitter.message``) starts with its
envelope — ``{"v":<schema version>,"m":{"type":<type>,"run_id":…,"question_id":…,"parent_id":…,`` —
and ends with ``}}``; all five are columns of the row already (``schema_version``,
``type``, ``run_id``, ``question_id``, ``parent_id``), so the row stores only what
lies between (``compact``), and a reader puts the envelope back from the columns
(``whole``) before anything else: the checksum covers the whole skeleton, so a
damaged column is found like a damaged payload.  A payload that does not have
that shape is stored whole; a stored payload is whole exactly when it starts
with ``{`` (a compact one starts with the next field's name, ``"``).
"""

from __future__ import annotations

from typing import Any

import msgspec

_encode = msgspec.json.encode

#: the columns ``whole`` needs, in its order
ENVELOPE_COLUMNS = ("schema_version", "type", "run_id", "question_id", "parent_id")


def head(version: Any, type_: Any, run_id: Any, question_id: Any, parent_id: Any) -> bytes:
    """The skeleton's envelope up to its first field of the message's own."""
    return (b'{"v":' + _encode(version) + b',"m":{"type":' + _encode(type_) + b',"run_id":' + _encode(run_id)
            + b',"question_id":' + _encode(question_id) + b',"parent_id":' + _encode(parent_id) + b",")


def compact(skeleton: bytes, envelope: bytes) -> bytes:
    """What a row stores of ``skeleton`` given its ``envelope`` (``head`` of its columns)."""
    if skeleton.startswith(envelope) and skeleton.endswith(b"}}") and len(skeleton) > len(envelope) + 2:
        return skeleton[len(envelope) : -2]
    return skeleton


def whole(stored: bytes, version: Any, type_: Any, run_id: Any, question_id: Any, parent_id: Any) -> bytes:
    """The skeleton a row's ``stored`` payload stands for (a damaged column gives one its checksum rejects)."""
    if stored[:1] == b"{":
        return stored
    try:
        return head(version, type_, run_id, question_id, parent_id) + stored + b"}}"
    except (TypeError, msgspec.EncodeError):  # a column of the wrong type (a damaged row): nothing to match
        return stored
