"""OpenAI Batch JSONL, both ways: pure.

A request line (``batch export``; read by ``vllm run-batch`` and Azure's / OpenAI's Batch API)::

    {"custom_id": "<cache key>", "method": "POST", "url": "/v1/chat/completions", "body": {...}}

A result line (what they write)::

    {"id": "...", "custom_id": "<cache key>", "response": {"status_code": 200, "request_id": "...",
     "body": {<chat completion>}}, "error": null}

``custom_id`` is the request's cache key, so an imported answer is the stored
answer of exactly that request, and the pipeline finds it as it would a
cached call.  ``parse_results`` reads a results file: a line that is cut off
at the end of the file (``run-batch`` still writing, a copy cut short) is
reported and left out; any other unreadable line is an error naming the line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from agents.llm import BadResponse, ChatRequest, Completion

from reasonmed_async.llm.wire import build_body, parse_completion

BATCH_URL = "/v1/chat/completions"
_KEY = re.compile(r"^[0-9a-f]{64}$")


class BatchFileError(ValueError):
    """A results file that cannot be imported; the message names the file, the line and the field."""


def request_line(request: ChatRequest, *, structured_output: str = "json_schema") -> str:
    """One request of an OpenAI Batch input file; ``custom_id`` is the cache key."""
    body = build_body(request, model=request.model, structured_output=structured_output)
    return json.dumps({"custom_id": request.cache_key(), "method": "POST", "url": BATCH_URL, "body": body},
                      ensure_ascii=False, separators=(",", ":")) + "\n"


@dataclass(frozen=True)
class BatchAnswer:
    key: str
    model: str
    completion: Completion


@dataclass(frozen=True)
class BatchFailure:
    key: str
    line: int
    reason: str


@dataclass(frozen=True)
class ParsedResults:
    answers: list[BatchAnswer]
    failures: list[BatchFailure]
    cut_line: int | None  # the last line, cut off: left out


def parse_results(lines: Iterable[str], *, source: str) -> ParsedResults:
    """The answers and per-request failures of a results file; ``BatchFileError`` for a malformed line."""
    rows = list(lines)
    answers: list[BatchAnswer] = []
    failures: list[BatchFailure] = []
    cut: int | None = None
    for n, text in enumerate(rows, 1):
        if not text.strip():
            continue
        try:
            row = json.loads(text)
        except ValueError:
            if n == len(rows) and not text.endswith("\n"):
                cut = n  # the writer had not finished this line
                continue
            raise BatchFileError(f"{source}:{n}: not a JSON object (invalid JSON)") from None
        if not isinstance(row, dict):
            raise BatchFileError(f"{source}:{n}: not a JSON object")
        key = row.get("custom_id")
        if not isinstance(key, str) or not _KEY.match(key):
            raise BatchFileError(f"{source}:{n}: custom_id: {key!r} is not a request key written by `batch export`")
        outcome = _answer(row, key, n, source)
        (answers if isinstance(outcome, BatchAnswer) else failures).append(outcome)
    return ParsedResults(answers, failures, cut)


def _answer(row: dict[str, Any], key: str, n: int, source: str) -> BatchAnswer | BatchFailure:
    error, response = row.get("error"), row.get("response")
    if error:
        message = error.get("message", error) if isinstance(error, dict) else error
        return BatchFailure(key, n, f"error: {message}")
    if not isinstance(response, dict):
        raise BatchFileError(f"{source}:{n}: response: missing (and no error)")
    status = response.get("status_code")
    body = response.get("body")
    if status != 200:
        message = body.get("error", body) if isinstance(body, dict) else body
        return BatchFailure(key, n, f"HTTP {status}: {json.dumps(message)[:200]}")
    try:
        completion = parse_completion(body, latency_s=0.0, endpoint=f"batch:{source}", backend="batch")
    except BadResponse as exc:
        return BatchFailure(key, n, f"unusable answer: {exc}")
    model = body.get("model") if isinstance(body, dict) else None
    return BatchAnswer(key, str(model or ""), completion)
