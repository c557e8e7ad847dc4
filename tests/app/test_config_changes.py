"""The table of keys that may change under a run (``config_changes``), on realistic configurations."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from reasonmed_async.config import parse_config
from reasonmed_async.config_changes import Kind, changes, data_changes, identity, kind_of
from reasonmed_async.corrected_config import ConfigRefused, check_correction

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("key, kind", [
    ("backends.local.base_urls", Kind.SAFE),
    ("backends.local.base_url", Kind.SAFE),
    ("backends.azure.endpoint", Kind.SAFE),
    ("backends.azure.api_version", Kind.SAFE),
    ("backends.local.api_key_env", Kind.SAFE),
    ("backends.local.api_key_file", Kind.SAFE),
    ("backends.azure.auth", Kind.SAFE),
    ("backends.azure.entra_scope", Kind.SAFE),
    ("backends.local.max_concurrency", Kind.SAFE),
    ("backends.local.max_num_seqs", Kind.SAFE),
    ("backends.local.timeout_s", Kind.SAFE),
    ("backends.local.cooloff_s", Kind.SAFE),
    ("backends.azure.deployments.gpt-4o.rpm", Kind.SAFE),
    ("backends.azure.deployments.gpt-4o.tpm", Kind.SAFE),
    ("backends.azure.deployments.gpt-4o.burst_s", Kind.SAFE),
    ("backends.sim.latency_ms", Kind.SAFE),
    ("concurrency.generator", Kind.SAFE),
    ("retry.outage_budget_s", Kind.SAFE),
    ("retry.max_wait_s", Kind.SAFE),
    ("retry.attempts", Kind.SAFE),
    ("store.grace_s", Kind.SAFE),
    ("store.synchronous", Kind.SAFE),
    ("logging.level", Kind.SAFE),
    ("budget.max_cost_usd", Kind.SAFE),
    ("models.gpt-4o.price_in", Kind.SAFE),
    # what the data is
    ("backends.local.type", Kind.DATA),
    ("backends.local.structured_output", Kind.DATA),
    ("backends.local.structured_output_models.qwen", Kind.DATA),
    ("backends.azure.deployments.o1-mini.o1", Kind.DATA),
    ("backends.sim.seed", Kind.DATA),
    ("backends.sim.accuracy.qwen", Kind.DATA),
    ("backends.vllm.model", Kind.DATA),
    ("models.qwen.model", Kind.DATA),
    ("models.qwen.backend", Kind.DATA),
    ("generation.models", Kind.DATA),
    ("generation.temperatures", Kind.DATA),
    ("generation.max_tokens", Kind.DATA),
    ("stages.verifier.temperature", Kind.DATA),
    ("stages.regenerator.model", Kind.DATA),
    ("stages.scorer.rate", Kind.DATA),
    ("tiers.easy_max", Kind.DATA),
    ("flow.thinking", Kind.DATA),
    ("gates.min_cot_words", Kind.DATA),
    ("templates_dir", Kind.DATA),
    ("input.max_question_chars", Kind.DATA),
    ("retrying.attempts", Kind.DATA),  # a section no rule names is data until decided here
])
def test_each_key_has_its_kind(key, kind):
    assert kind_of(key) is kind


OPENAI = (ROOT / "examples" / "openai.toml").read_text(encoding="utf-8")
ENV = {"REASONMED_OPENAI_BASE_URL": "http://127.0.0.1:8000/v1", "REASONMED_OPENAI_API_KEY": "x"}


def _edit(text: str, old: str, new: str) -> str:
    assert old in text, old
    return text.replace(old, new, 1)


@pytest.mark.parametrize("old, new, refused", [
    ('base_urls = ["${REASONMED_OPENAI_BASE_URL:-http://127.0.0.1:8000/v1}"]',
     'base_urls = ["http://gpu-node-7:8000/v1", "http://gpu-node-8:8000/v1"]', None),
    ('api_key_env = "REASONMED_OPENAI_API_KEY"', 'api_key_env = "VLLM_API_KEY"', None),
    ("max_concurrency = 64", "max_concurrency = 16", None),
    ("timeout_s = 600\n", "timeout_s = 1200\n", None),
    ("outage_budget_s = 1800", "outage_budget_s = 7200", None),
    ("grace_s = 30", "grace_s = 5", None),
    ("temperatures = [0.7, 0.9, 1.0]", "temperatures = [0.7, 0.9]", "generation.temperatures"),
    ('[models.qwen]\nbackend = "local"\nmodel = "${REASONMED_OPENAI_MODEL:-Qwen/Qwen2.5-72B-Instruct}"',
     '[models.qwen]\nbackend = "local"\nmodel = "Qwen/Qwen2.5-7B-Instruct"', "models.qwen.model"),
    ("easy_max = 4", "easy_max = 3", "tiers.easy_max"),
    ('structured_output = "auto"', 'structured_output = "none"', "backends.local.structured_output"),
])
def test_a_correction_is_accepted_or_refused_by_the_table(old, new, refused):
    original = parse_config(OPENAI, source="run.toml", env=ENV)
    corrected = parse_config(_edit(OPENAI, old, new), source="fixed.toml", env=ENV)
    if refused is None:
        check_correction(original, corrected, "run-1")
        assert corrected.digest == original.digest, "the run's identity stays"
        return
    with pytest.raises(ConfigRefused) as info:
        check_correction(original, corrected, "run-1")
    line = str(info.value)
    assert "\n" not in line and line.startswith(f"fixed.toml: {refused} (") and "run-1" in line
    assert corrected.digest != original.digest


def test_an_explicit_default_is_no_change():
    original = parse_config(OPENAI, env=ENV)
    assert "[input]" not in OPENAI
    corrected = parse_config(OPENAI + "\n[input]\nmax_depth = 32\n", env=ENV)
    check_correction(original, corrected, "run-1")  # the typed file with defaults filled in is the same


def test_changes_names_added_removed_and_changed_leaves():
    before = tomllib.loads('[retry]\nattempts = 3\n[generation]\nmodels = ["a", "b"]\n[concurrency]\n')
    after = tomllib.loads('[retry]\nattempts = 5\nmax_wait_s = 60\n[generation]\nmodels = ["b", "a"]\n')
    found = {c.key: c.kind for c in changes(before, after)}
    assert found == {"retry.attempts": Kind.SAFE, "retry.max_wait_s": Kind.SAFE, "generation.models": Kind.DATA}
    assert [c.describe() for c in data_changes(before, after)] == ["generation.models (['a', 'b'] -> ['b', 'a'])"]


def test_identity_keeps_only_the_data_changing_keys():
    raw = tomllib.loads((ROOT / "examples" / "sim.toml").read_text(encoding="utf-8"))
    kept = identity(raw)
    assert "retry" not in kept and "concurrency" not in kept and "store" not in kept
    assert kept["generation"] == raw["generation"] and kept["stages"] == raw["stages"]
    assert all(kind_of(key) is Kind.DATA for key, _ in _leaves(kept))


def _leaves(table, prefix=""):
    for name, value in table.items():
        if isinstance(value, dict):
            yield from _leaves(value, f"{prefix}{name}.")
        else:
            yield f"{prefix}{name}", value


async def test_a_run_an_earlier_build_started_is_still_the_same_run(tmp_path):
    """Earlier builds hashed every key into the run id: `run` again finds that run (compatibility), not a new one."""
    from bus.messages import Question

    from reasonmed_async.pipeline import Pipeline, RunConflict, run_id_for
    from reasonmed_async.store.checkpoint import CheckpointStore

    config = parse_config((ROOT / "examples" / "sim.toml").read_text(encoding="utf-8"), source="sim.toml")
    assert config.digest != config.legacy_digest
    legacy = run_id_for("input-digest", config.legacy_digest, None)
    db = tmp_path / "old.db"
    async with await CheckpointStore.open(db) as store:  # the run as the earlier build recorded it
        await store.create_run({"id": legacy, "input_path": "q.jsonl", "input_digest": "input-digest",
                                "config_digest": config.legacy_digest, "config_json": config.text, "questions": 1,
                                "status": "finished"}, [], [])
    question = Question(id="q1", stem="Does aspirin reduce the risk of a second stroke?", options=("yes", "no"),
                        answer=0, ordinal=0)
    async with Pipeline.open(config, db, agents=False) as pipeline:
        with pytest.raises(RunConflict, match=f"already holds the finished run {legacy}"):
            await pipeline.start_run([question], "q.jsonl", "input-digest", None)
