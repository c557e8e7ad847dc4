"""``reasonmed eval``: the sim's configured accuracy measured within its interval, resume after SIGKILL
without paying again, the Table 4 layout with the paper's MMLU subjects, the lm-eval export."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from e2e_support import call_log_keys, cache_keys, cli_command, cli_env, run_cli, sim_config

from agents.llm import ChatRequest
from reasonmed_async.evaluate import protocol

ACCURACY = 0.6


def eval_config(tmp: Path, **sim: str) -> Path:
    """examples/sim.toml plus a fine-tuned model with a configured benchmark accuracy."""
    text = sim_config(**sim)
    text = text.replace("# [backends.sim.answer_accuracy]", f'[backends.sim.answer_accuracy]\n"reasonmed-7b" = {ACCURACY}\n#', 1)
    text = text.replace("[models.qwen]", '[models.reasonmed-7b]\nbackend = "sim"\nmodel = "reasonmed-7b"\n\n[models.qwen]', 1)
    path = tmp / "eval.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _eval(tmp: Path, config: Path, data: Path, db: Path, *extra: object) -> dict[str, Any]:
    out = tmp / f"{db.stem}.json"
    done = run_cli("eval", "--config", config, "--model", "reasonmed-7b", "--data", data, "--db", db,
                   "--json", out, *extra, timeout=120)
    assert done.returncode == 0, done.stderr
    return {"summary": json.loads(out.read_text()), "stdout": done.stdout, "stderr": done.stderr}


@pytest.mark.parametrize("malformed", ["0.0", "0.1"])
def test_the_sims_accuracy_lies_in_the_measured_interval(tmp_path: Path, pubmedqa: Path, malformed: str) -> None:
    config = eval_config(tmp_path, malformed_rate=malformed, latency_ms="0")
    got = _eval(tmp_path, config, pubmedqa, tmp_path / "e.db")
    total = got["summary"]["total"]
    assert total["scored"] == 1000 and total["call_failures"] == 0
    lenient = total["lenient"]
    assert lenient["ci95_low"] <= ACCURACY <= lenient["ci95_high"], lenient
    failures = total["strict_extraction_failures"]
    if malformed == "0.0":
        assert failures == 0 and total["strict"] == lenient
    else:  # answers not in the 'Answer: X' form are counted, and never scored as a letter by the strict reader
        assert 60 <= failures <= 140
        assert total["strict"]["successes"] <= lenient["successes"] - failures * ACCURACY * 0.5
    assert "PubMedQA" in got["stdout"] and "82.0 +- 5.5" in got["stdout"] and "paper" in got["stdout"]


def test_eval_resumes_after_sigkill_without_paying_again(tmp_path: Path, pubmedqa: Path) -> None:
    log = tmp_path / "calls.tsv"
    config = eval_config(tmp_path, malformed_rate="0.02", latency_ms="30", call_log=json.dumps(str(log)))
    db = tmp_path / "killed.db"
    args = ("eval", "--config", config, "--model", "reasonmed-7b", "--data", pubmedqa, "--db", db,
            "--limit", 400, "--concurrency", 4, "--json", tmp_path / "killed.json")
    with subprocess.Popen(cli_command(*args), env=cli_env(), stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL) as proc:
        deadline = time.monotonic() + 60  # a bound, not a timing assertion: it waits for 80 logged calls
        while len(call_log_keys(log)) < 80 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    paid_before = cache_keys(db)
    called_before = len(call_log_keys(log))
    assert 0 < len(paid_before) < 400
    done = run_cli(*args, timeout=120)
    assert done.returncode == 0, done.stderr
    called_after = call_log_keys(log)[called_before:]
    assert not set(called_after) & paid_before  # nothing answered before the kill was asked again
    assert len(called_after) == len(set(called_after)) == 400 - len(paid_before)
    whole = _eval(tmp_path, config, pubmedqa, tmp_path / "whole.db", "--limit", 400, "--concurrency", 4)
    assert json.loads((tmp_path / "killed.json").read_text()) == whole["summary"]


def test_table4_layout_mmlu_subjects_and_lm_eval_export(tmp_path: Path) -> None:
    data = tmp_path / "bench" / "test"
    data.mkdir(parents=True)
    rows = {"anatomy_test.csv": [("Which bone forms the heel?", "Talus", "Calcaneus", "Navicular", "Cuboid", "B")],
            "medical_genetics_test.csv": [("Down syndrome is most often caused by?", "Translocation",
                                           "Mosaicism", "Nondisjunction", "Deletion", "C")],
            "astronomy_test.csv": [("Which planet is largest?", "Mars", "Jupiter", "Venus", "Earth", "B")]}
    for name, lines in rows.items():
        (data / name).write_text("".join(",".join(f'"{c}"' for c in row) + "\n" for row in lines))
    config = eval_config(tmp_path, malformed_rate="0.0", latency_ms="0")
    got = _eval(tmp_path, config, tmp_path / "bench", tmp_path / "m.db", "--export-lm-eval", tmp_path / "lm")
    labels = [r["label"] for r in got["summary"]["rows"]]
    assert labels == ["MMLU Anatomy", "MMLU Medical Genetics"]  # astronomy is not one of the six
    assert "1 outside --benchmarks skipped" in got["stderr"]
    task = yaml.safe_load((tmp_path / "lm" / "mmlu_anatomy.yaml").read_text())
    docs = [json.loads(line) for line in (tmp_path / "lm" / "mmlu_anatomy.jsonl").read_text().splitlines()]
    assert task["dataset_kwargs"]["data_files"]["test"] == "mmlu_anatomy.jsonl"
    pattern = re.compile(task["filter_list"][0]["filter"][0]["regex_pattern"])
    for d in docs:
        assert d["gold_letter"] == "B" and d["prompt"].endswith("D) Cuboid")
        m = pattern.search(d["response"])
        assert (m.group(1) if m else None) == d["strict"]


def test_bad_usage_is_one_line(tmp_path: Path, pubmedqa: Path) -> None:
    config = eval_config(tmp_path, malformed_rate="0.0", latency_ms="0")
    for args, expect in ((("--model", "nope", "--data", pubmedqa), "--model nope: not a model"),
                         (("--model", "reasonmed-7b", "--data", pubmedqa, "--benchmarks", "usmle"), "unknown usmle"),
                         (("--model", "reasonmed-7b", "--data", tmp_path / "none"), "no such file")):
        done = run_cli("eval", "--config", config, "--db", tmp_path / "x.db", *args)
        assert done.returncode == 2 and expect in done.stderr and "Traceback" not in done.stderr, done.stderr


@pytest.mark.parametrize("text,strict,lenient", [
    ("The findings fit a thyroid storm.\nAnswer: C", "C", "C"),
    ("<think>Maybe Answer: A? No.</think>Weighing both, B fits.\nAnswer: B", "B", "B"),
    ("answer: d", "D", "D"),
    ("Step by step ... so the final answer is \\boxed{B}", None, "B"),
    ("Reasoning...\nFinal answer: (A) Graves disease", None, "A"),
    ("Both options are plausible; I cannot decide.", None, None),
    ("So the best choice is **(C)**.", None, "C"),
    ("Answer: E", None, None),  # not one of the four options
])
def test_extraction_table(text: str, strict: str | None, lenient: str | None) -> None:
    options = ("Hashimoto thyroiditis", "Toxic multinodular goiter", "Thyroid storm", "Graves disease")
    if "(A) Graves" in text:
        options = ("Graves disease", "Hashimoto thyroiditis", "Thyroid storm", "Goiter")
    assert protocol.strict(text, len(options)) == strict
    assert protocol.lenient(text, options) == lenient


def test_the_prompt_is_the_simple_evals_template() -> None:
    from bus import Question

    q = Question(id="q1", stem="Which is first-line?", options=("A drug", "B drug", "C drug"), answer=0,
                 context="An abstract.")
    p = protocol.prompt(q)
    assert p.startswith("Answer the following multiple choice question. The last line of your response should be"
                        " of the following format: 'Answer: $LETTER' (without quotes) where LETTER is one of ABC.")
    assert p.endswith("Context: An abstract.\n\nWhich is first-line?\n\nA) A drug\nB) B drug\nC) C drug")
    assert ChatRequest(model="m", messages=protocol.messages(q)).messages[0].role == "user"
