"""Where a ``reasonmed run`` process spends its time: CPU per thread, and its phases from its own log.

``ThreadCPU(pid)`` samples ``/proc/<pid>/task/*/stat`` every ``every_s`` from a thread of the
benchmark while the process runs and keeps each thread's last utime + stime (a thread's figure
is lost only for what it spent in its last ``every_s``).  The main thread is the event loop; of the
others the busiest is the SQLite writer, then the reader, then the log file's flush thread (Python
does not name OS threads, so they are told apart by CPU, not by name).

``phases(log, spawned, exited)`` reads the JSON-lines log of the run (``<db>.log``): start-up is
spawn → the first ``llm.call`` line (imports, validation, preflight, intake, the first answer),
shutdown the last ``llm.call`` line → exit; ``cache_hits`` counts the lines of requests answered
without a call (``cached``: from the response cache, or shared with an identical request in flight):
agent requests that cost the pipeline CPU but are not calls.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import threading
from pathlib import Path


class ThreadCPU:
    def __init__(self, pid: int, every_s: float = 0.05) -> None:
        self.pid, self.every_s = pid, every_s
        self.last: dict[int, float] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._sample, name="thread-cpu", daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        tick = os.sysconf("SC_CLK_TCK")
        while not self._done.is_set():
            try:
                tids = os.listdir(f"/proc/{self.pid}/task")
            except OSError:
                return
            for tid in tids:
                try:
                    fields = Path(f"/proc/{self.pid}/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                self.last[int(tid)] = (int(fields[11]) + int(fields[12])) / tick
            self._done.wait(self.every_s)

    def stop(self) -> dict:
        """``{"main_s": ..., "others_s": [busiest first]}``."""
        self._done.set()
        self._thread.join()
        others = sorted((s for tid, s in self.last.items() if tid != self.pid), reverse=True)
        return {"main_s": self.last.get(self.pid, 0.0), "others_s": others}


def phases(log: Path, spawned: float, exited: float) -> dict:
    """Start-up, run and shutdown seconds (wall) from the ``llm.call`` lines of ``log``, and the cache hits."""
    first = last = None
    hits = 0
    try:
        lines = log.read_text(encoding="utf-8").splitlines()
    except OSError:
        return {}
    for line in lines:
        if '"llm.call"' not in line:
            continue
        event = json.loads(line)
        at = dt.datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00")).timestamp()
        first = at if first is None else first
        last = at
        hits += bool(event.get("cached"))
    if first is None:
        return {}
    return {"startup_s": first - spawned, "run_s": last - first, "shutdown_s": exited - last, "cache_hits": hits}
