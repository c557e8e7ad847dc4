"""What only the driving process knows: LLM attempts handed to a backend now, and those waiting to be sent again.

``RetryingClient`` counts each attempt while the backend has it (``sending``: on the wire, or queued in
the backend for a replica slot or a rate-limit token) and each wait before a resend (``waiting``);
``changed`` is set on every change for the one publisher that writes a snapshot for ``status``
(``reports/live.py``, which asks backends that count their own requests on the wire).  Every attempt
passes through ``sending``: its context manager is one object per (counter, model), made once."""

from __future__ import annotations

import asyncio
from collections import Counter
from types import TracebackType


class _Counted:
    """``with``: one more in ``counter[model]`` while inside (re-entrant: it holds no state of its own)."""

    __slots__ = ("_counter", "_model", "_changed")

    def __init__(self, counter: Counter[str], model: str, changed: asyncio.Event) -> None:
        self._counter, self._model, self._changed = counter, model, changed

    def __enter__(self) -> None:
        self._counter[self._model] += 1
        self._changed.set()

    def __exit__(self, _type: type[BaseException] | None, _exc: BaseException | None,
                 _tb: TracebackType | None) -> None:
        self._counter[self._model] -= 1
        self._changed.set()


class CallGauge:
    def __init__(self) -> None:
        self.on_wire: Counter[str] = Counter()
        self.backing_off: Counter[str] = Counter()
        self.changed = asyncio.Event()
        self._sending: dict[str, _Counted] = {}
        self._waiting: dict[str, _Counted] = {}

    def sending(self, model: str) -> _Counted:
        counted = self._sending.get(model)
        if counted is None:
            counted = self._sending[model] = _Counted(self.on_wire, model, self.changed)
        return counted

    def waiting(self, model: str) -> _Counted:
        counted = self._waiting.get(model)
        if counted is None:
            counted = self._waiting[model] = _Counted(self.backing_off, model, self.changed)
        return counted
