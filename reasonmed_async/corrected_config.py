"""``resume --config FILE``: a corrected configuration for what may change under a run (``config_changes``).

The corrected file is checked against the configuration the run was started with:
a change to a data-changing key is refused in one line naming it (``ConfigRefused``,
exit 2); otherwise the file is the one the resumed run uses, and its resolved text
is stored with each unfinished run (``meta`` key ``config_override:<run id>``) so a
later ``resume`` (or ``retry``) without ``--config`` keeps using it.  The run's own
config text and digest — its identity, which ``export``, ``status`` and ``merge``
read — are never rewritten.
"""

from __future__ import annotations

import sys

import msgspec

from reasonmed_async.config import AppConfig, ConfigError, load_config, parse_config
from reasonmed_async.config_changes import SAFE_SUMMARY, data_changes
from reasonmed_async.store import queries
from reasonmed_async.store.checkpoint import CheckpointStore

OVERRIDE_PREFIX = "config_override:"


class ConfigRefused(ConfigError):
    """The corrected configuration would change the run's data."""


def first_data_change(original: AppConfig, corrected: AppConfig) -> str | None:
    """The first data-changing key that differs, described (``generation.temperatures ([0.7] -> [0.5])``)."""
    found = data_changes(msgspec.to_builtins(original.file), msgspec.to_builtins(corrected.file))
    return found[0].describe() if found else None


def check_correction(original: AppConfig, corrected: AppConfig, run_id: str) -> None:
    """``ConfigRefused`` naming the first data-changing key that differs (the whole file, defaults filled in)."""
    found = data_changes(msgspec.to_builtins(original.file), msgspec.to_builtins(corrected.file))
    if not found:
        return
    more = f"; {len(found) - 1} more data-changing key(s) differ" if len(found) > 1 else ""
    raise ConfigRefused(f"{corrected.source}: {found[0].describe()} would change the data of run {run_id}{more};"
                        f" `resume --config` may change only {SAFE_SUMMARY} (start a new database for the rest)")


async def config_to_resume(store: CheckpointStore, original: AppConfig, path: str | None) -> AppConfig:
    """The configuration ``resume`` drives with: ``path`` checked and stored, else the stored correction, else
    ``original`` (the unfinished run's own)."""
    if path is None:
        stored = await queries.config_override(store, OVERRIDE_PREFIX)
        if stored is None:
            return original
        print(f"reasonmed: using the corrected config stored by `resume --config` for run {stored[0]}",
              file=sys.stderr)
        return parse_config(stored[1], source=f"{store.path} (corrected config of {stored[0]})")
    corrected = load_config(path)
    runs = [run_id for run_id, _ in await queries.unfinished_run_digests(store)]
    for run_id in runs:
        check_correction(original, corrected, run_id)
    for run_id in runs:
        await store.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)",
                            (OVERRIDE_PREFIX + run_id, corrected.text))
    return corrected
