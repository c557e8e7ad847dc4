"""The deployment examples stay usable: every config under deploy/ loads (typed config, backend options),
sizes its concurrency from max_num_seqs x replicas, and the sbatch script is valid bash."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from e2e_support import ROOT
from reasonmed_async.config import load_config
from reasonmed_async.llm.openai_http import OpenAISettings

CONFIGS = sorted((ROOT / "deploy").rglob("*.toml"))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: str(p.relative_to(ROOT)))
def test_deploy_config_loads_and_sizes_concurrency(path: Path) -> None:
    config = load_config(path)
    for backend in config.backends.values():
        settings = OpenAISettings.from_options(backend.options)
        opts = backend.options
        assert settings.policy.max_concurrency == opts["max_num_seqs"] * opts.get("replicas", 1)


def test_there_are_deploy_examples_and_the_sbatch_script_parses() -> None:
    assert len(CONFIGS) >= 3
    for script in (ROOT / "deploy").rglob("*.sbatch"):
        subprocess.run(["bash", "-n", str(script)], check=True)
