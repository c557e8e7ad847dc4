"""--quota-share: each shard's Azure rpm/tpm is its share of the quota (default 1/N), recorded with the shard
and applied again on resume; the stored config, and so the run's identity, is unchanged."""

from __future__ import annotations

import argparse
from fractions import Fraction

import pytest

from bus import Question
from e2e_support import ROOT
from reasonmed_async.config import load_config
from reasonmed_async.pipeline import RunConflict, run_id_for, stored_config
from reasonmed_async.scale.shard import with_quota_share
from reasonmed_async.scale.shard_run import prepare_shard, resumed_config
from reasonmed_async.store.checkpoint import CheckpointStore

AZURE = ROOT / "examples" / "azure.toml"


def test_every_deployment_gets_its_share_and_the_identity_stays() -> None:
    config = load_config(AZURE)
    quarter = with_quota_share(config, Fraction(1, 4))
    deployments = quarter.backends["azure"].options["deployments"]
    assert (deployments["gpt-4o"]["rpm"], deployments["gpt-4o"]["tpm"]) == (125.0, 37500.0)
    assert (deployments["o1-mini"]["rpm"], deployments["o1-mini"]["tpm"]) == (25.0, 50000.0)
    assert config.backends["azure"].options["deployments"]["gpt-4o"]["rpm"] == 500  # the original is untouched
    assert quarter.backends["qwen"] == config.backends["qwen"]  # vLLM servers have no quota to split
    assert quarter.digest == config.digest and quarter.text == config.text
    assert with_quota_share(config, Fraction(1)) is config


def _args(shard: str | None, share: str | None = None) -> argparse.Namespace:
    return argparse.Namespace(shard=shard, quota_share=share, limit=None)


QUESTIONS = [Question(id=f"q{i}", stem=f"Does statin therapy {i} reduce stroke risk?", options=("yes", "no"),
                      answer=0, ordinal=i) for i in range(12)]


async def test_the_share_is_recorded_and_applied_again_on_resume(tmp_path) -> None:
    config, db = load_config(AZURE), tmp_path / "shard.db"
    shard_config, mine = await prepare_shard(_args("2/4"), config, QUESTIONS, "input-digest", db)
    assert shard_config.backends["azure"].options["deployments"]["gpt-4o"]["rpm"] == 125.0  # default: 1/N
    assert 0 < len(mine) < len(QUESTIONS)
    async with await CheckpointStore.open(db) as store:  # the run as `run` would record it
        await store.create_run({"id": run_id_for("input-digest", config.digest, None), "input_path": "q.jsonl",
                                "input_digest": "input-digest", "config_digest": config.digest,
                                "config_json": config.text, "questions": len(mine)}, [], [])
        resumed = await resumed_config(store, await stored_config(store))
    assert resumed.backends["azure"].options["deployments"]["gpt-4o"]["rpm"] == 125.0
    with pytest.raises(RunConflict, match="holds shard 2/4"):
        await prepare_shard(_args("1/4"), config, QUESTIONS, "input-digest", db)


async def test_an_explicit_share_and_its_misuse(tmp_path) -> None:
    config = load_config(AZURE)
    half, _ = await prepare_shard(_args("0/4", "1/2"), config, QUESTIONS, "d", tmp_path / "a.db")
    assert half.backends["azure"].options["deployments"]["gpt-4o"]["tpm"] == 75000.0
    with pytest.raises(ValueError, match="--quota-share goes with --shard"):
        await prepare_shard(_args(None, "1/2"), config, QUESTIONS, "d", tmp_path / "b.db")
