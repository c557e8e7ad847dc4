"""Serialisation of messages: tagged JSON, stamped with the schema version."""

from __future__ import annotations

from typing import Union

import msgspec

from .messages import ALL_MESSAGES, SCHEMA_VERSION, Message


class SchemaMismatch(ValueError):
    """A stored message was written by another schema version."""


class _Envelope(msgspec.Struct, frozen=True):
    v: int
    m: Union[ALL_MESSAGES]  # type: ignore[valid-type]


_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(_Envelope)


def encode(message: Message) -> bytes:
    return _encoder.encode(_Envelope(SCHEMA_VERSION, message))


def decode(data: bytes | str) -> Message:
    envelope = _decoder.decode(data)
    if envelope.v != SCHEMA_VERSION:
        raise SchemaMismatch(f"message schema v{envelope.v}, this build reads v{SCHEMA_VERSION}")
    return envelope.m
