"""What only the driving process knows: LLM attempts handed to a backend now, and those waiting to be sent again.

``RetryingClient`` counts each attempt while the backend has it (``sending``: on the wire, or queued in
the backend for a replica slot or a rate-limit token) and each wait before a resend (``waiting``);
``changed`` is set on every change for the one publisher that writes a snapshot for ``status``
(``reports/live.py``, which asks backends that count their own requests on the wire)."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager


class CallGauge:
    def __init__(self) -> None:
        self.on_wire: Counter[str] = Counter()
        self.backing_off: Counter[str] = Counter()
        self.changed = asyncio.Event()

    @contextmanager
    def sending(self, model: str) -> Iterator[None]:
        with self._counted(self.on_wire, model):
            yield

    @contextmanager
    def waiting(self, model: str) -> Iterator[None]:
        with self._counted(self.backing_off, model):
            yield

    @contextmanager
    def _counted(self, counter: Counter[str], model: str) -> Iterator[None]:
        counter[model] += 1
        self.changed.set()
        try:
            yield
        finally:
            counter[model] -= 1
            self.changed.set()
