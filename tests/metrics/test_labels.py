"""Label values stay bounded and carry no secret: tables of the endpoints and errors backends really produce."""

from __future__ import annotations

import pytest

from agents.llm import BadRequest, BadResponse, ConnectionLost, LLMError, LLMTimeout, RateLimited, ServerError
from reasonmed_async.metrics.labels import OUTCOMES, endpoint_label, outcome_label, stage_label


@pytest.mark.parametrize("endpoint, label", [
    ("http://127.0.0.1:8000/v1", "127.0.0.1:8000/v1"),                       # vllm serve
    ("http://gpu-node-07:8080/v1/", "gpu-node-07:8080/v1"),                  # trailing slash
    ("https://api.openai.com/v1", "api.openai.com/v1"),
    ("https://user:sk-live-9f8e7d6c5b@gpu.example:8443/v1", "gpu.example:8443/v1"),  # credentials dropped
    ("https://gw.example/v1?api-key=sk-live-9f8e7d6c5b#x", "gw.example/v1"),  # a key in the query dropped
    ("http://[::1]:8000/v1", "[::1]:8000/v1"),
    ("http://router.svc.cluster.local", "router.svc.cluster.local"),
    ("sim://local", "sim://local"),
    ("azure:gpt-4o-mini", "azure:gpt-4o-mini"),                                # Azure: the deployment
    ("vllm:Qwen/Qwen2.5-72B-Instruct", "vllm:Qwen/Qwen2.5-72B-Instruct"),      # in-process engine
    ("", "none"),                                                            # failed before an endpoint
    ("http://host:notaport/v1", "none"),
])
def test_endpoint_label(endpoint: str, label: str) -> None:
    assert endpoint_label(endpoint) == label
    assert "sk-live" not in endpoint_label(endpoint)


@pytest.mark.parametrize("error, outcome", [
    (RateLimited("HTTP 429: Rate limit exceeded", retry_after_s=2.0), "rate_limited"),
    (ServerError("HTTP 503: The server is overloaded", status=503), "server_error"),
    (ServerError("HTTP 500: internal error", status=500), "server_error"),
    (LLMTimeout("no answer within 600 s"), "timeout"),
    (ConnectionLost("connection failed (ClientConnectorError)"), "connection_lost"),
    (BadRequest("HTTP 400: maximum context length is 8192 tokens", status=400), "bad_request"),
    (BadRequest("HTTP 401: Incorrect API key provided", status=401), "auth_error"),
    (BadRequest("HTTP 403: forbidden", status=403), "auth_error"),
    (BadRequest("HTTP 404: The model `x` does not exist", status=404), "not_found"),
    (BadResponse("the response has no choices"), "bad_response"),
    (LLMError("something else"), "other_error"),
])
def test_outcome_label(error: LLMError, outcome: str) -> None:
    assert outcome_label(error) == outcome
    assert outcome in OUTCOMES


@pytest.mark.parametrize("task, stage", [
    ("generate", "generate"), ("verify", "verify"), ("rank", "rank"), ("refine", "refine"),
    ("regenerate", "regenerate"), ("summarize", "summarize"), ("score", "score"), ("answer", "answer"),
    ("", "other"), ("demo-001", "other"),  # never a question id or free text
])
def test_stage_label(task: str, stage: str) -> None:
    assert stage_label(task) == stage
