"""What ``run`` / ``resume`` / ``retry`` / ``daemon`` check around driving a run: the preflight before it,
the spend cap during it, a raised cap on resume (the CLI's helpers, kept out of ``cli.py``)."""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import sys
from pathlib import Path

from reasonmed_async.config import AppConfig, ConfigError
from reasonmed_async.llm.budget import SpendCap


async def preflight_for(args: argparse.Namespace, config: AppConfig) -> None:
    """One cheap request per configured model and endpoint (``llm/preflight.py``); exit 2 on a bad one."""
    if getattr(args, "no_preflight", False):
        return
    from reasonmed_async.llm.preflight import preflight

    checked = await preflight(config)
    if checked:
        print(f"reasonmed: preflight: {checked} model endpoint(s) answer", file=sys.stderr)


async def stop_at_cap(cap: SpendCap, stop: asyncio.Event) -> None:
    """Stop intake and drain once the spend cap trips (the messages left stay pending: resumable)."""
    await cap.tripped.wait()
    print(f"reasonmed: {cap.describe()}: stopping", file=sys.stderr)
    stop.set()


def cap_stop_reason(cap: SpendCap | None, done: bool, db: Path) -> str | None:
    """Why the run stopped, when the spend cap stopped it (and how to raise it)."""
    if cap is None or done or not cap.tripped.is_set():
        return None
    return f"{cap.describe()} (raise it with `reasonmed resume --max-cost-usd N --db {db}`)"


def with_budget(args: argparse.Namespace, config: AppConfig) -> AppConfig:
    """``resume --max-cost-usd / --max-tokens``: the stored config with its spend cap changed."""
    import msgspec

    cost, tokens = getattr(args, "max_cost_usd", None), getattr(args, "max_tokens", None)
    if cost is None and tokens is None or getattr(args, "command", "") != "resume":
        return config
    if (cost is not None and cost <= 0) or (tokens is not None and tokens < 1):
        raise ConfigError("--max-cost-usd must be > 0 and --max-tokens >= 1")
    budget = config.file.budget
    budget = msgspec.structs.replace(budget, **({"max_cost_usd": cost} if cost is not None else {}),
                                     **({"max_tokens": tokens} if tokens is not None else {}))
    return dataclasses.replace(config, file=msgspec.structs.replace(config.file, budget=budget))
