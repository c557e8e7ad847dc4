"""The ``reasonmed`` executable sets the cycle collector for its own process; ``main(argv)`` called in a
caller's process leaves it alone (``commands/heap.py``)."""

from __future__ import annotations

import gc
import json
import subprocess
import sys

from e2e_support import SIM_TOML, cli_env
from reasonmed_async.cli import main
from reasonmed_async.commands import heap

_PROBE = """
import gc, json, sys
sys.argv = ["reasonmed", *sys.argv[1:]]
from reasonmed_async.cli import main
before = gc.get_threshold()
try:
    code = main()
except SystemExit as exc:
    code = exc.code
print(json.dumps({"code": code, "before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
"""


def _probe(tmp_path, *args: str) -> dict:
    proc = subprocess.run([sys.executable, "-c", _PROBE, *args], capture_output=True, text=True, env=cli_env(),
                          cwd=tmp_path, timeout=120)
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_the_executable_collects_young_objects_less_often_and_freezes_the_heap_at_exit(tmp_path):
    questions = tmp_path / "qs.jsonl"
    questions.write_text(json.dumps({"id": "q-1", "question": "Which vitamin deficiency causes scurvy?",
                                     "options": ["Vitamin A", "Vitamin C"], "answer": "B"}) + "\n", encoding="utf-8")
    got = _probe(tmp_path, "run", "--config", str(SIM_TOML), "--input", str(questions), "--db", str(tmp_path / "r.db"))
    assert got["code"] == 0 and got["before"] == list(gc.get_threshold())  # the interpreter's defaults before
    assert got["after"] == [heap.YOUNG, heap.MIDDLE, heap.OLD] and got["frozen"] > 0
    usage = _probe(tmp_path, "run", "--config")  # argparse's exit (2) takes the same way out
    assert usage["code"] == 2 and usage["frozen"] > 0


def test_main_called_in_a_callers_process_leaves_its_collector_alone(tmp_path, capsys):
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    assert main(["run", "--config", str(SIM_TOML), "--input", str(tmp_path / "none.jsonl"),
                 "--db", str(tmp_path / "r.db")]) == 2
    assert (gc.get_threshold(), gc.get_freeze_count()) == (thresholds, frozen)
