"""Per-call events written straight into the file (``logs/direct.py``) read exactly as structlog's chain writes them:
the same keys in the same order, the context bound around the call, secrets redacted, tracebacks rendered."""

from __future__ import annotations

import datetime
import json
import logging
import re
from pathlib import Path
from unittest import mock

import pytest
import structlog

from reasonmed_async.logs import direct, setup
from reasonmed_async.logs.direct import DirectLines, iso_utc_now
from reasonmed_async.logs.setup import REDACTED, configure, flush

SECRET = "sk-live-0123456789abcdef"
ISO_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z$")
CALL = dict(model="qwen2.5-72b-instruct", stage="verify", endpoint="http://10.0.0.7:8000/v1", backend="openai",
            latency_s=0.8123, prompt_tokens=1834, completion_tokens=212, cached=False, finish_reason="stop")


def lines(path: Path) -> list[dict]:
    flush()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture
def log_file(tmp_path, restore_logging, monkeypatch):
    monkeypatch.setenv("REASONMED_TEST_KEY", SECRET)
    path = tmp_path / "run.db.log"
    configure(log_file=path, secret_envs=["REASONMED_TEST_KEY"])
    return path


def test_an_llm_call_line_is_the_line_structlogs_chain_writes(log_file):
    direct_log = setup.per_call_logger()
    assert isinstance(direct_log, DirectLines)
    with structlog.contextvars.bound_contextvars(run="run-1", question="pubmedqa-21645374", agent="verifier"):
        direct_log.info("llm.call", **CALL)
        direct_log.fallback.info("llm.call", **CALL)  # the same event through the whole structlog chain
    fast, chain = lines(log_file)
    assert list(fast) == list(chain)  # keys and their order
    assert {**fast, "timestamp": None} == {**chain, "timestamp": None}
    assert fast["run"] == "run-1" and fast["level"] == "info" and fast["logger"] == "llm"
    assert ISO_UTC.match(fast["timestamp"]), fast["timestamp"]


def test_a_secret_in_a_per_call_event_is_redacted(log_file):
    setup.per_call_logger().info("llm.call", **{**CALL, "endpoint": f"https://user:{SECRET}@gpu.example/v1"})
    flush()
    text = log_file.read_text(encoding="utf-8")
    assert SECRET not in text and REDACTED in text


def test_a_per_call_event_with_an_exception_has_its_traceback_rendered(log_file):
    try:
        raise ValueError(f"bad answer from {SECRET}")
    except ValueError:
        setup.per_call_logger().info("llm.call", exc_info=True, **CALL)
    (line,) = lines(log_file)
    assert line["exception"][0]["exc_type"] == "ValueError"
    assert SECRET not in json.dumps(line)


def test_below_the_file_level_nothing_is_written(tmp_path, restore_logging):
    path = tmp_path / "quiet.db.log"
    configure(log_file=path, file_level=logging.WARNING)
    assert setup.per_call_logger() is None  # the caller does not even build the event
    log = setup._call_logger
    log.info("llm.call", **CALL)
    log.debug("llm.call", **CALL)
    log.warning("llm.slow", **CALL)
    assert [e["event"] for e in lines(path)] == ["llm.slow"]


@pytest.mark.parametrize("ns", [1_764_659_665_000_000_000, 1_764_659_665_586_329_123, 1_764_659_665_000_001_999,
                                1_764_659_665_999_999_999, 951_782_400_123_456_000])
def test_the_timestamp_reads_as_datetime_isoformat_writes_it(ns):
    with mock.patch.object(direct.time, "time_ns", return_value=ns):
        stamp = iso_utc_now()
    expected = datetime.datetime.fromtimestamp(ns // 1000 / 1e6, tz=datetime.timezone.utc)
    assert stamp == expected.isoformat().replace("+00:00", "Z")
