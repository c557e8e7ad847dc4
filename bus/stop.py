"""Errors that stop the whole run instead of failing one message.

A handler (or the journal) raises a ``StopRun`` when going on cannot help:
the outage budget is spent, a model's circuit is open, the disk is full.  The
bus never turns it into a ``StageFailed``: the message it arose in stays
pending, intake stops, handlers in flight get the grace period, and
``MessageBus.run`` re-raises the first ``StopRun`` so the application can
say why and exit with the resumable code.
"""

from __future__ import annotations


class StopRun(Exception):
    """The run must stop; nothing is marked failed, so a resume continues where it stopped."""

    resumable = True


def first_stop(exc: BaseException) -> StopRun | None:
    """The first ``StopRun`` in ``exc`` or, for an exception group, in its leaves (depth first)."""
    if isinstance(exc, StopRun):
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = first_stop(inner)
            if found is not None:
                return found
    return None


def root_cause(exc: BaseException) -> BaseException:
    """The first real error inside exception groups (a TaskGroup's ``unhandled errors``): what to store."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
