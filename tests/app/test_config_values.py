"""Configuration values are checked at load time: types, choices, ranges and cross-field rules.

Each refusal is one line naming the file, the section and the key, with the
allowed values where there is a list of them; the command exits 2 without a
traceback and writes nothing.
"""

from __future__ import annotations

import pytest

from reasonmed_async.config import ConfigError, parse_config
from tests.e2e_support import SIM_TOML, cli_env, run_cli, sim_config

QUESTIONS = SIM_TOML.parent / "questions.jsonl"


def _stage(text: str, stage: str, old: str, new: str) -> str:
    head, sep, tail = text.partition(f"[stages.{stage}]\n")
    assert sep and old in tail
    return head + sep + tail.replace(old, new, 1)


# case -> (config text, words the one line must hold)
BAD_VALUES = {
    "reverify as a string": (sim_config(reverify='"no"'), ["[flow] reverify", "true, false"]),
    "synchronous not a mode": (sim_config(synchronous='"SOMETIMES"'),
                               ["[store] synchronous", "'SOMETIMES'", '"OFF", "NORMAL", "FULL", "EXTRA"']),
    "no temperatures": (sim_config(temperatures="[]"), ["[generation] temperatures", "empty"]),
    "temperature out of range": (sim_config(temperatures="[0.7, 3.5]"), ["[generation] temperatures[1]", "2.0"]),
    "log level unknown": (sim_config(level='"verbose"'),
                          ["[logging] level", "'verbose'", '"debug", "info", "warning", "error", "critical"']),
    "tiers out of order": (sim_config(easy_max="8"), ["[tiers] easy_max", "medium_max"]),
    "min_usable above the paths": (sim_config(min_usable="12"), ["[tiers] min_usable", "9 paths"]),
    "a probability above 1": (sim_config(malformed_rate="1.5"), ["[backends.sim]", "malformed_rate", "[0, 1]"]),
    "scorer rate above 1": (_stage(sim_config(), "scorer", "rate = 0.0", "rate = 2"), ["[stages.scorer] rate", "1.0"]),
    "attempts as a string": (sim_config(attempts='"3"'), ["[retry] attempts", "integer"]),
    "zero workers": (sim_config(verifier="0"), ["[concurrency] verifier", ">= 1"]),
    "negative price": (sim_config(price_in="-1"), ["[models.gpt-4o-mini] price_in", ">= 0"]),
    "stage on an unknown model": (_stage(sim_config(), "ranker", 'model = "qwen"', 'model = "qwn"'),
                                  ["[stages.ranker] model", "'qwn'", "qwen"]),
    "no generator": (sim_config(models="[]"), ["[generation] models"]),
    "a table where a value goes": (sim_config().replace("[store]\n", "[store.synchronous]\n"),
                                   ["[store] synchronous"]),
    "unknown backend type": (sim_config().replace('type = "sim"', 'type = "openia"', 1),
                             ["[backends.sim] type", "openai"]),
    "credentials in a URL": (sim_config().replace('type = "sim"\nseed = 20250611\n',
                             'type = "openai"\nbase_url = "https://user:sk-live-9f8e7d6c5b@gpu.example/v1"\n'),
                             ["[backends.sim] base_url", "credentials"]),
    "a key in api_key_env": (sim_config().replace('type = "sim"\nseed = 20250611\n',
                             'type = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'
                             'api_key_env = "sk-live-9f8e7d6c5b"\n'),
                             ["[backends.sim] api_key_env", "not shown"]),
}


@pytest.mark.parametrize("case", sorted(BAD_VALUES))
def test_a_bad_value_is_refused_naming_section_and_key(case):
    text, words = BAD_VALUES[case]
    with pytest.raises(ConfigError) as caught:
        parse_config(text, source="cfg.toml")
    message = str(caught.value)
    assert message.startswith("cfg.toml: "), message
    assert "\n" not in message, message
    for word in words:
        assert word in message, (word, message)
    assert "9f8e7d6c5b" not in message, "a secret reached the message"


@pytest.mark.parametrize("case", ["reverify as a string", "synchronous not a mode", "no temperatures",
                                  "log level unknown", "credentials in a URL"])
def test_the_command_exits_2_in_one_line_and_writes_nothing(case, tmp_path):
    text, words = BAD_VALUES[case]
    config = tmp_path / "bad.toml"
    config.write_text(text, encoding="utf-8")
    db = tmp_path / "run.db"
    token = "daemon-token-5a4b3c2d1e0f"
    proc = run_cli("run", "--config", config, "--input", QUESTIONS, "--db", db, timeout=60,
                   env=cli_env(REASONMED_DAEMON_TOKEN=token))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert str(config) in lines[0] and words[0] in lines[0], lines
    assert "Traceback" not in proc.stderr and token not in proc.stderr
    assert "9f8e7d6c5b" not in proc.stderr
    assert not db.exists() and not (tmp_path / "run.db.log").exists()


def test_values_are_typed_and_the_interface_keeps_its_shape():
    config = parse_config(sim_config(synchronous='"full"', level='"DEBUG"'))
    assert config.synchronous == "FULL"
    assert config.logging["level"] == "debug"
    assert config.flow.reverify is True and config.flow.generators[0].temperatures == (0.7, 0.9, 1.0)
    assert config.retry["attempts"] == 3.0 and config.concurrency["verifier"] == 16
    assert config.file.store.queue_size == 64  # every section, typed, defaults filled in


def test_omitted_keys_keep_their_defaults():
    text = sim_config()
    head, _, _ = text.partition("[concurrency]")
    config = parse_config(head)
    assert config.concurrency == {} and config.retry == {} and config.logging == {}
    assert config.synchronous == "NORMAL" and config.grace_s == 30.0 and config.queue_size == 64
