"""The exit codes of every ``reasonmed`` command: one table, documented in the README and ``--help``."""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    OK = 0            # done: every question is settled (final records, or a final rejection by the method)
    INTERNAL = 1      # an internal error (its traceback goes to the log, one line to the terminal)
    USAGE = 2         # bad usage, input or configuration, or a failed preflight
    FAILURES = 3      # completed, but some questions failed: `reasonmed retry` re-issues them
    RESUMABLE = 4     # stopped but resumable (outage budget spent, circuit open, disk full, spend cap)
    DAMAGED = 5       # `check` (or resume / export) found damage in the database
    SIGINT = 130      # interrupted by SIGINT with work left
    SIGTERM = 143     # interrupted by SIGTERM with work left


MEANING = {
    ExitCode.OK: "done: every question settled (final records, or a final rejection by the method)",
    ExitCode.INTERNAL: "internal error",
    ExitCode.USAGE: "bad usage, input or configuration, or a failed preflight",
    ExitCode.FAILURES: "completed, but some questions failed (`reasonmed retry` re-issues them)",
    ExitCode.RESUMABLE: "stopped but resumable (outage, open circuit, disk full, spend cap: `reasonmed resume`)",
    ExitCode.DAMAGED: "damage found in the database",
    ExitCode.SIGINT: "interrupted by SIGINT with work left",
    ExitCode.SIGTERM: "interrupted by SIGTERM with work left",
}

HELP = "exit codes: " + "; ".join(f"{int(c)} {MEANING[c]}" for c in ExitCode)
