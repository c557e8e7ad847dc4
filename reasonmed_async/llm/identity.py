"""Who a request is, told to the servers and routers in front of the models: pure, no I/O.

- ``X-Request-ID``: ``rm-`` and the first 32 hex digits of the request's cache
  key.  The same logical request (a client retry, a redelivered message, a
  resumed run) always carries the same id, so a router's or a server's logs
  show a duplicate as a repeated id, and the id ties a server log line to the
  ``llm_cache`` row that stored its answer.
- ``X-Session-ID``: the question id.  ``vllm-router --policy consistent_hash``
  (and gateways hashing on a header) keep every prompt of one question on one
  replica, where its shared prefix (the question and its options) stays in the
  prefix cache.

Per-endpoint concurrency: a URL that fronts ``replicas`` servers of
``max_num_seqs`` sequences each can usefully hold ``max_num_seqs x replicas``
requests; more only queue in the router.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from agents.llm import ChatRequest

REQUEST_ID_HEADER = "X-Request-ID"
SESSION_ID_HEADER = "X-Session-ID"
_PREFIX = "rm-"
DEFAULT_MAX_CONCURRENCY = 64
_NOT_VISIBLE_ASCII = re.compile(r"[^\x21-\x7e]")


def request_id(cache_key: str) -> str:
    """The idempotency key of a request with this cache key (a sha256 hex digest)."""
    return _PREFIX + cache_key[:32]


def identity_headers(request: ChatRequest) -> dict[str, str]:
    """The headers that name ``request``: its idempotency key and, when known, its question as the session."""
    headers = {REQUEST_ID_HEADER: request_id(request.cache_key())}
    question = request.meta.get("question_id")
    if question:
        headers[SESSION_ID_HEADER] = _header_safe(str(question))
    return headers


def _header_safe(value: str) -> str:
    """A header value: visible ASCII only (question ids come from user files), at most 200 characters."""
    return _NOT_VISIBLE_ASCII.sub("_", value[:200]) or "_"


def default_concurrency(options: Mapping[str, Any]) -> int:
    """``max_concurrency`` for one URL: as given, else ``max_num_seqs x replicas`` when ``max_num_seqs`` is, else 64.

    ``ValueError`` naming the key for a value that is not an integer >= 1."""
    for key in ("max_concurrency", "max_num_seqs", "replicas"):
        value = options.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or value < 1):
            raise ValueError(f"{key} must be an integer >= 1, got {value!r}")
    if "max_concurrency" in options:
        return int(options["max_concurrency"])
    if "max_num_seqs" in options:
        return int(options["max_num_seqs"]) * int(options.get("replicas", 1))
    if "replicas" in options:
        raise ValueError("replicas needs max_num_seqs (the servers' --max-num-seqs) to size the concurrency")
    return DEFAULT_MAX_CONCURRENCY
