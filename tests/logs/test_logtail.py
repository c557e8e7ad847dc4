"""``reasonmed logs``: the filter, the compact lines, and following a real rotating log from another process."""

from __future__ import annotations

import argparse
import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import structlog

from reasonmed_async.logs import tail as logtail
from reasonmed_async.logs.setup import configure
from reasonmed_async.logs.tail import Follower
from reasonmed_async.logs.filter import Filter, parse_level, parse_line, pretty

ROOT = Path(__file__).resolve().parents[2]

CALL = {"timestamp": "2025-05-01T10:20:30.123456Z", "level": "info", "event": "llm.call", "logger": "llm",
        "run": "r1", "question": "q7", "agent": "verifier", "stage": "verify", "model": "m", "latency_s": 0.25,
        "prompt_tokens": 10, "completion_tokens": 3, "cached": False}
RETRY = {"level": "info", "event": "llm.retry", "agent": "generator", "question": "q8", "attempt": 1,
         "error": "ServerError: 503"}
DONE = {"level": "debug", "event": "handler.done", "agent": "verifier", "question": "q8"}
FAIL = {"level": "error", "event": "handler.error", "agent": "ranker", "question": "q7"}
BARE = {"event": "run.started"}  # no level: counts as info
SAMPLE = {"call": CALL, "retry": RETRY, "done": DONE, "fail": FAIL, "bare": BARE}


@pytest.mark.parametrize(("keep", "expected"), [
    (Filter(), {"call", "retry", "done", "fail", "bare"}),
    (Filter(agent="verifier"), {"call", "done"}),
    (Filter(agent="verif"), set()),  # exact, not a prefix
    (Filter(question="q7"), {"call", "fail"}),
    (Filter(min_level=parse_level("info")), {"call", "retry", "fail", "bare"}),
    (Filter(min_level=parse_level("WARNING")), {"fail"}),
    (Filter(min_level=parse_level("debug")), {"call", "retry", "done", "fail", "bare"}),
    (Filter(event="llm.call"), {"call"}),
    (Filter(event="llm"), set()),
    (Filter(event="llm.*"), {"call", "retry"}),
    (Filter(event="handler*"), {"done", "fail"}),
    (Filter(event="*"), {"call", "retry", "done", "fail", "bare"}),
    (Filter(agent="verifier", question="q8"), {"done"}),
    (Filter(agent="verifier", min_level=20, event="llm.*"), {"call"}),
])
def test_filter(keep, expected):
    assert {name for name, event in SAMPLE.items() if keep(event)} == expected


@pytest.mark.parametrize(("name", "level"), [("debug", 10), ("Info", 20), ("warn", 30), ("warning", 30),
                                             ("error", 40), ("critical", 50)])
def test_parse_level(name, level):
    assert parse_level(name) == level


def test_parse_level_refuses_unknown():
    with pytest.raises(ValueError, match="unknown level"):
        parse_level("loud")


@pytest.mark.parametrize("line", ['{"event": "x"', "not json", "[1, 2]", '"str"', ""])
def test_parse_line_refuses_what_is_not_an_object(line):
    assert parse_line(line) is None


def test_pretty_is_one_compact_line_context_first():
    line = pretty({**CALL, "note": "two words", "extra": {"a": 1}})
    assert line == ("2025-05-01 10:20:30.123 info    llm.call           run=r1 question=q7 agent=verifier stage=verify "
                    "model=m latency_s=0.25 prompt_tokens=10 completion_tokens=3 cached=false "
                    'extra={"a":1} note="two words"')
    crashed = pretty({"event": "boom", "level": "error", "exception": [{"exc_type": "KeyError", "exc_value": "'k'"}]})
    assert crashed.endswith("""exception="KeyError: 'k'\"""") and "\n" not in crashed


def write(path: Path, *events: dict, end: str = "\n") -> None:
    with path.open("a", encoding="utf-8") as fh:
        fh.write("".join(json.dumps(e) + end for e in events))


def polled(follower: Follower) -> list[str]:
    return [json.loads(line)["n"] for line in follower.poll()]


def test_follower_buffers_a_partial_line_until_it_is_complete(tmp_path):
    log = tmp_path / "x.log"
    log.write_text('{"n": 1}\n{"n": ', encoding="utf-8")
    follower = Follower(log)
    assert follower.open()
    assert polled(follower) == [1]
    assert follower.poll() == []
    with log.open("a") as fh:
        fh.write('2}\n')
    assert polled(follower) == [2]
    follower.close()


def test_follower_reads_old_file_then_missed_backups_then_new_one(tmp_path):
    log = tmp_path / "x.log"
    write(log, {"n": 1})
    follower = Follower(log)
    follower.open()
    assert polled(follower) == [1]
    write(log, {"n": 2})  # lands in the old file just before it is rotated
    for n in (3, 4):  # two more rotations before the follower looks again
        for k in (2, 1):
            if Path(f"{log}.{k}").exists():
                os.replace(f"{log}.{k}", f"{log}.{k + 1}")
        os.replace(log, f"{log}.1")
        write(log, {"n": n})
    os.replace(f"{log}.2", f"{log}.3")
    os.replace(f"{log}.1", f"{log}.2")
    os.replace(log, f"{log}.1")
    write(log, {"n": 5})
    seen = []
    while batch := polled(follower):
        seen += batch
    assert seen == [2, 3, 4, 5]
    log.write_text("", encoding="utf-8")  # truncated in place
    assert polled(follower) == []
    write(log, {"n": 6})
    assert polled(follower) == [6]
    follower.close()


def test_follower_reads_backups_newer_than_its_file_when_that_one_was_rotated_out(tmp_path):
    log = tmp_path / "x.log"
    write(log, {"n": 1})
    follower = Follower(log)
    follower.open()
    assert polled(follower) == [1]
    os.utime(log, ns=(1_000, 1_000))
    os.replace(log, f"{log}.1")  # ours, then gone past the last backup
    os.remove(f"{log}.1")
    write(Path(f"{log}.2"), {"n": 0})  # an older backup: not read again
    os.utime(f"{log}.2", ns=(500, 500))
    write(Path(f"{log}.1"), {"n": 2})  # rotated after ours
    os.utime(f"{log}.1", ns=(2_000, 2_000))
    write(log, {"n": 3})
    seen = []
    while batch := polled(follower):
        seen += batch
    assert seen == [2, 3]
    follower.close()


async def test_tail_without_follow_filters_and_keeps_the_last_n(tmp_path, capsys):
    log = tmp_path / "x.db.log"
    write(log, CALL, RETRY, DONE, FAIL)
    with log.open("a") as fh:
        fh.write("garbage line\n")
    write(log, {**CALL, "question": "q9"}, end="")  # no newline at the end: still shown
    args = argparse.Namespace(db=str(tmp_path / "x.db"), file=None, follow=False, lines=2, agent="verifier",
                              question=None, level=0, event=None, json=True)
    assert await logtail.run_logs(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert [json.loads(line)["question"] for line in out] == ["q8", "q9"]


def test_main_prints_pretty_lines_and_refuses_a_missing_file(tmp_path, capsys):
    log = tmp_path / "x.db.log"
    write(log, CALL, FAIL)
    assert logtail.main(["--db", str(tmp_path / "x.db"), "--level", "error"]) == 0
    assert capsys.readouterr().out == "error   handler.error      question=q7 agent=ranker\n"
    assert logtail.main(["--file", str(tmp_path / "missing.log")]) == 2
    assert "no such log file" in capsys.readouterr().err


def test_register_adds_the_logs_command():
    parser = argparse.ArgumentParser()
    logtail.register(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["logs", "--db", "r.db", "-f", "--level", "warning", "--event", "llm.*"])
    assert (args.handler, args.db, args.follow, args.level, args.event) == (logtail.run_logs, "r.db", True, 30, "llm.*")
    with pytest.raises(SystemExit):
        parser.parse_args(["logs", "--db", "r.db", "--file", "x.log"])


def test_follow_a_rotating_log_from_another_process(tmp_path, restore_logging):
    """The real path: ``python -m reasonmed_async.logs.tail -f`` while this process logs through
    ``configure``'s RotatingFileHandler, rotated every few lines."""
    log_file = tmp_path / "x.db.log"
    configure(log_file=log_file, max_bytes=1500, console_level=logging.CRITICAL)
    log = structlog.get_logger("test")

    def emit(agent: str, seq: int) -> None:
        with structlog.contextvars.bound_contextvars(run="r", question=f"q{seq}", agent=agent):
            log.info("tick", seq=seq, padding="x" * 60)

    emit("verifier", -1)  # already there when the follower starts
    proc = subprocess.Popen([sys.executable, "-m", "reasonmed_async.logs.tail", "--file", str(log_file), "-f",
                             "--agent", "verifier", "--json"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[tuple[float, str]] = queue.Queue()
    reader = threading.Thread(target=lambda: [lines.put((time.monotonic(), ln)) for ln in proc.stdout], daemon=True)
    reader.start()
    try:
        assert json.loads(lines.get(timeout=10)[1])["seq"] == -1  # it is up

        def seen_within(seconds: float) -> list[dict]:
            got, deadline = [], time.monotonic() + seconds
            while (left := deadline - time.monotonic()) > 0:
                try:
                    got.append(json.loads(lines.get(timeout=left)[1]))
                except queue.Empty:
                    break
            return got

        inodes, expected, received = {os.stat(log_file).st_ino}, [], []
        for seq in range(30):  # one verifier event in three, each awaited: at most 1 s after it is written
            agent = ("generator", "verifier", "ranker")[seq % 3]
            emit(agent, seq)
            inodes.add(os.stat(log_file).st_ino)
            if agent == "verifier":
                expected.append(seq)
                written = time.monotonic()
                arrived, line = lines.get(timeout=1.0)
                assert arrived - written < 1.0
                received.append(json.loads(line))
            time.sleep(0.01)
        for seq in range(30, 46):  # a burst: a few rotations (fewer than the 5 backups) between two looks
            agent = ("generator", "verifier")[seq % 2]
            emit(agent, seq)
            inodes.add(os.stat(log_file).st_ino)
            expected += [seq] if agent == "verifier" else []
        received += seen_within(1.0)
        assert len(inodes) >= 3, "the log was not rotated"
        assert [e["seq"] for e in received] == expected
        assert {e["agent"] for e in received} == {"verifier"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=5) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        reader.join(timeout=5)
        proc.stdout.close()
        proc.stderr.close()
