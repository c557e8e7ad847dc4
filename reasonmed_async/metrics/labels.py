"""The label values of the metrics: pure functions that keep them bounded and free of secrets.

Every label value comes from the configuration or from a fixed vocabulary, never
from a question: a stage is a ``Stage`` (else ``other``), a model is a configured
model name, an endpoint is a configured URL reduced to ``host:port/path`` (no
scheme, no user or password, no query string, so a key passed as ``?api-key=``
cannot reach a scrape), and an outcome is one word per error class (``OUTCOMES``).
"""

from __future__ import annotations

from urllib.parse import urlsplit

from agents.llm import BadRequest, BadResponse, ConnectionLost, LLMError, LLMTimeout, RateLimited, ServerError
from bus.vocabulary import Stage

_STAGES = frozenset(Stage) | {"answer"}  # ``answer``: the benchmark task of ``reasonmed eval``
NO_ENDPOINT = "none"
OK = "ok"

#: an error class -> the ``outcome`` label; subclasses map to their nearest listed base
_OUTCOMES: tuple[tuple[type[LLMError], str], ...] = (
    (RateLimited, "rate_limited"),
    (ServerError, "server_error"),
    (LLMTimeout, "timeout"),
    (ConnectionLost, "connection_lost"),
    (BadRequest, "bad_request"),
    (BadResponse, "bad_response"),
)
_BY_STATUS = {401: "auth_error", 403: "auth_error", 404: "not_found"}  # a 4xx that says the endpoint is wrong
OUTCOMES = (OK, *(name for _, name in _OUTCOMES), *sorted(set(_BY_STATUS.values())), "other_error")


def stage_label(task: str) -> str:
    """The ``stage`` label of a request's ``meta["task"]``: a known stage, else ``other``."""
    return task if task in _STAGES else "other"


def endpoint_label(endpoint: str) -> str:
    """Where a call went, as a label: ``host:port/path`` for a URL, without credentials or a query.

    >>> endpoint_label("https://user:sk-1@gpu.example:8443/v1?api-key=sk-2")
    'gpu.example:8443/v1'

    Other schemes keep theirs (``sim://local``); non-URL endpoints (``azure:DEPLOYMENT``, ``vllm:MODEL``)
    keep their form, query cut off; an empty one
    (a failure before any endpoint was chosen) is ``none``."""
    if not endpoint:
        return NO_ENDPOINT
    if "://" not in endpoint:
        return endpoint.split("?", 1)[0].split("#", 1)[0] or NO_ENDPOINT
    try:
        parts = urlsplit(endpoint)
        host, port = parts.hostname or "", parts.port
    except ValueError:  # an unparseable port: keep only what cannot hold a secret
        return NO_ENDPOINT
    if ":" in host:
        host = f"[{host}]"  # IPv6
    where = f"{host}:{port}" if port is not None else host
    if parts.scheme not in ("http", "https"):
        where = f"{parts.scheme}://{where}"  # sim://local: the scheme says what it is
    return (where + parts.path.rstrip("/")) or NO_ENDPOINT


def outcome_label(error: LLMError) -> str:
    """The ``outcome`` label of a failed attempt: its error class as one word."""
    if isinstance(error, BadRequest) and error.status in _BY_STATUS:
        return _BY_STATUS[error.status]
    for kind, name in _OUTCOMES:
        if isinstance(error, kind):
            return name
    return "other_error"
