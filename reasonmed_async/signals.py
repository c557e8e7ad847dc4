"""The one place that installs the process's signal handlers, for ``run``, ``resume`` and the daemon.

SIGINT and SIGTERM set ``stop`` (intake stops, calls in flight get the grace
period, everything is checkpointed); a second one exits at once with the code
of the first.  SIGHUP calls ``on_hup`` where there is one (the daemon reloads
its configuration and re-reads key files); elsewhere it calls ``reload_keys``,
which re-reads the backends' key files (``api_key_file``) and says whether there
were any; where there are none a hang-up stops the run like SIGINT, cleanly,
instead of killing it mid-commit.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable

from reasonmed_async.reports.outcome import interrupted_code


def install(stop: asyncio.Event, *, who: str = "reasonmed", on_hup: Callable[[], None] | None = None,
            on_signal: Callable[[int], None] | None = None,
            reload_keys: Callable[[], bool] | None = None) -> list[int]:
    """Install the handlers on the running loop; the list returned receives the first stopping signal
    (``on_signal`` is told of it too, before ``stop`` is set)."""
    loop = asyncio.get_running_loop()
    received: list[int] = []

    def on_stop(signum: int) -> None:
        name = signal.Signals(signum).name
        if stop.is_set():
            print(f"{who}: second {name}: exiting now", file=sys.stderr, flush=True)
            os._exit(interrupted_code(received[0] if received else signum))
        print(f"{who}: {name}: stopping intake, finishing calls in flight", file=sys.stderr, flush=True)
        received.append(signum)
        if on_signal is not None:
            on_signal(signum)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_stop, sig)
    def on_hang_up() -> None:
        if reload_keys is None or not reload_keys():
            on_stop(signal.SIGHUP)

    loop.add_signal_handler(signal.SIGHUP, on_hup if on_hup is not None else on_hang_up)
    return received
