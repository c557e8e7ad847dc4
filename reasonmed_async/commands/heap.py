"""The cycle collector's settings for a ``reasonmed`` process.

A run allocates millions of short-lived containers (messages, requests, answers, rows) and frees
nearly all of them by reference count at once.  CPython's default thresholds ``(700, 10, 10)`` still
start a young collection whenever 700 more containers are alive than were: ~390 young, ~35 middle
and 3 full collections in a 300-question run over HTTP, together about 1 s of its ~5 s of CPU
(measured with ``gc.callbacks``; BENCHMARKS.md, "Issue 13, fifth pass: the HTTP path").  At
``YOUNG = 20_000`` the same run makes a handful of young collections and no older one, and its peak
RSS does not move (1,000 questions on the simulator: 62,336 vs 62,712 KiB): what is left for the
collector to find, cycles, is rare in this code and still found, only later.

At exit the interpreter collects its whole heap once more while it tears the modules down (0.2-0.3 s
here after a 300-question run).  ``before_exit`` freezes the heap instead, once every resource has
been closed by its owner (the store, the HTTP sessions, the log file: ``main``'s one shutdown path),
so the collector has nothing left to look at; memory goes back to the system with the process.
"""

from __future__ import annotations

import gc

YOUNG, MIDDLE, OLD = 20_000, 10, 10


def tune_collector() -> None:
    """Collect young objects once ``YOUNG`` more containers are alive, instead of 700 (``gc.set_threshold``)."""
    gc.set_threshold(YOUNG, MIDDLE, OLD)


def before_exit() -> None:
    """The command is over and has closed what it opened: no collection of the heap at interpreter exit."""
    gc.freeze()
