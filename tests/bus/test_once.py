"""``bus.once``: computed on first use, kept in the instance's ``__dict__``, per instance."""

from __future__ import annotations

from dataclasses import dataclass, replace

import msgspec

from agents.llm import ChatMessage, ChatRequest
from bus.once import once


@dataclass(frozen=True)
class Counted:
    text: str
    calls: list[str]

    @once
    def upper(self) -> str:
        """The text in capitals."""
        self.calls.append(self.text)
        return self.text.upper()


def test_computed_once_per_instance_and_kept_in_its_dict():
    calls: list[str] = []
    a, b = Counted("abc", calls), Counted("xyz", calls)
    assert (a.upper, a.upper, b.upper, a.upper) == ("ABC", "ABC", "XYZ", "ABC")
    assert calls == ["abc", "xyz"]  # each instance computed it once
    assert a.__dict__["upper"] == "ABC"
    assert replace(a, text="def").upper == "DEF"  # a changed copy computes its own
    assert Counted.upper.__doc__ == "The text in capitals."


def test_a_request_cache_key_is_computed_once_and_a_changed_copy_has_its_own():
    req = ChatRequest(model="m", messages=(ChatMessage("user", "Which option?"),), temperature=0.7)
    key = req.cache_key()
    assert req.__dict__["_cache_key"] == key and req.cache_key() == key
    assert msgspec.structs.replace(req, temperature=0.9).cache_key() != key  # no cached key carried over
    assert ChatRequest(model="m", messages=(ChatMessage("user", "Which option?"),), temperature=0.7).cache_key() == key
