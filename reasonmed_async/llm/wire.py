"""The chat-completions wire format, shared by every HTTP backend (OpenAI, vLLM, Azure).

Pure helpers: a ``ChatRequest`` to a JSON body, a response body to a
``Completion``, an HTTP status / transport failure to an ``LLMError``.  One I/O
helper, ``post_chat``, does one POST over a caller's ``aiohttp.ClientSession``
and applies them; it never retries (``RetryingClient`` owns retries).

Secrets never reach an error: a server's message is scrubbed of every string in
``secrets`` (servers do echo keys: "Incorrect API key provided: sk-...").
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from typing import Any

import aiohttp
import msgspec

from agents.llm import (
    BadRequest,
    BadResponse,
    ChatRequest,
    Choice,
    Completion,
    ConnectionLost,
    LLMError,
    LLMTimeout,
    RateLimited,
    ServerError,
)

from reasonmed_async.llm.deadlines import Deadlines
from reasonmed_async.llm.openai_settings import STRUCTURED_OUTPUT
from reasonmed_async.llm.ratelimit import parse_retry_after
from reasonmed_async.llm.schema_targets import SchemaTarget, for_target
from reasonmed_async.llm.usual_answer import usual_completion

TOKEN_FIELDS = ("max_tokens", "max_completion_tokens")
_MAX_MESSAGE = 300


# --------------------------------------------------------------------------- request


def build_body(request: ChatRequest, *, model: str | None, structured_output: str = "json_schema",
               token_field: str = "max_tokens", schema_target: SchemaTarget = "grammar") -> dict[str, Any]:
    """The JSON body of a chat completion.  ``model=None`` leaves it out (Azure names the deployment in the URL).

    ``token_field``: ``max_tokens``, which every OpenAI-compatible server reads, or ``max_completion_tokens``,
    which OpenAI's and Azure's o-series require.  ``schema_target``: the form of the schema (``strict`` for
    OpenAI and Azure).  Unset sampling parameters are omitted, so the server's defaults apply; ``meta`` is
    never sent."""
    if structured_output not in STRUCTURED_OUTPUT[1:]:
        raise ValueError(f"structured_output must be one of {', '.join(STRUCTURED_OUTPUT[1:])}, got {structured_output!r}")
    if token_field not in TOKEN_FIELDS:
        raise ValueError(f"token_field must be one of {', '.join(TOKEN_FIELDS)}, got {token_field!r}")
    body: dict[str, Any] = {}
    if model is not None:
        body["model"] = model
    body["messages"] = [{"role": m.role, "content": m.content} for m in request.messages]
    body[token_field] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.seed is not None:
        body["seed"] = request.seed
    n = getattr(request, "n", 1)
    if n > 1:
        body["n"] = n
    if request.json_schema is not None and structured_output == "json_schema":
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": "answer", "schema": _schema_for(request.json_schema, schema_target), "strict": True},
        }
    elif request.json_schema is not None and structured_output == "json_object":
        body["response_format"] = {"type": "json_object", "schema": _schema_for(request.json_schema, schema_target)}
    return body


_SCHEMAS: dict[tuple[int, str], tuple[Mapping[str, Any], Any, dict[str, Any]]] = {}  # -> (schema, as it was, form)
_SCHEMAS_MAX = 256


def _schema_for(schema: Mapping[str, Any], target: SchemaTarget) -> dict[str, Any]:
    """``for_target(schema, target)``, made once per schema: an agent sends the same few schema objects on
    every judge request (a copy each time cost ~5 µs; the equality test, in C, a fraction of it).  The entry
    holds the schema, so its id is not reused while it is there, and a copy of it, so a schema changed in
    place is made again; the form is only ever encoded, never changed."""
    entry = _SCHEMAS.get((id(schema), target))
    if entry is not None and entry[0] is schema and entry[1] == schema:
        return entry[2]
    if len(_SCHEMAS) >= _SCHEMAS_MAX:  # schemas made per request (a ranking's names): start again
        _SCHEMAS.clear()
    as_was = for_target(schema, "grammar")  # the grammar form is a deep copy of the schema as it is
    form = as_was if target == "grammar" else for_target(schema, target)
    _SCHEMAS[(id(schema), target)] = (schema, as_was, form)
    return form


_FORMAT_WORDS = ("response_format", "json_schema", "json schema", "structured output", "guided_json")


def refuses_format(status: int, message: str) -> bool:
    """True where an error answer says the request's ``response_format`` is what the server cannot take
    (400 / 422 / 500 naming it): the cue to fall back to a simpler structured-output mode."""
    return status in (400, 422, 500, 501) and any(w in message.lower() for w in _FORMAT_WORDS)


# --------------------------------------------------------------------------- response


def parse_completion(data: Any, *, latency_s: float, endpoint: str, backend: str) -> Completion:
    """A decoded 200 body as a ``Completion`` (choice 0 first, the rest in ``more``); ``BadResponse`` if unusable."""
    if not isinstance(data, dict):
        raise BadResponse(f"{endpoint}: the response is not a JSON object")
    raw_choices = data.get("choices")
    if not isinstance(raw_choices, list) or not raw_choices:
        raise BadResponse(f"{endpoint}: the response has no choices")
    if len(raw_choices) == 1:  # every request but n > 1
        choices = [_choice(raw_choices[0], endpoint)]
    else:
        choices = [_choice(c, endpoint) for c in sorted(raw_choices, key=_choice_index)]
    usage = data.get("usage") if isinstance(data.get("usage"), dict) else {}
    details = usage.get("completion_tokens_details")
    reasoning = details.get("reasoning_tokens") if isinstance(details, dict) else 0
    return Completion(
        text=choices[0].text,
        finish_reason=choices[0].finish_reason,
        prompt_tokens=_int(usage.get("prompt_tokens")),
        completion_tokens=_int(usage.get("completion_tokens")),
        reasoning_tokens=_int(reasoning),
        latency_s=latency_s,
        endpoint=endpoint,
        backend=backend,
        more=tuple(choices[1:]),
    )


def _choice_index(choice: Any) -> int:
    return _int(choice.get("index")) if isinstance(choice, dict) else 0


def _choice(choice: Any, endpoint: str) -> Choice:
    message = choice.get("message") if isinstance(choice, dict) else None
    if not isinstance(message, dict):
        raise BadResponse(f"{endpoint}: a choice has no message")
    content = message.get("content")
    finish = choice.get("finish_reason") or "stop"
    if not isinstance(content, str):
        refusal = message.get("refusal")
        said = f"; refusal: {_clip(str(refusal))}" if refusal else ""
        raise BadResponse(f"{endpoint}: a choice has no text content (finish_reason {finish!r}{said})")
    return Choice(content, str(finish))


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


# --------------------------------------------------------------------------- errors


def retry_after_s(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from ``retry-after-ms``, else ``Retry-After`` (seconds or an HTTP date); None if absent."""
    return parse_retry_after(headers, time.time() if now is None else now)


def server_message(body: bytes, secrets: Iterable[str] = ()) -> str:
    """The message of an error body, every secret masked: ``{"error": {"message"}}`` (OpenAI, Azure),
    ``{"message"}`` (vLLM), or the text itself."""
    text = scrub(body.decode("utf-8", "replace"), secrets)  # before clipping: no half a key survives
    try:
        data = json.loads(text)
    except ValueError:
        return _clip(text)
    if isinstance(data, dict):
        inner = data.get("error", data)
        if isinstance(inner, dict):
            message, code = inner.get("message"), inner.get("code")
            if message:
                return _clip(f"{message}" + (f" (code {code})" if code not in (None, "") else ""))
        elif isinstance(inner, str):
            return _clip(inner)
    return _clip(json.dumps(data))


def error_for_status(status: int, headers: Mapping[str, str], body: bytes, *, where: str,
                     secrets: Iterable[str] = ()) -> LLMError:
    """The ``LLMError`` for a non-200 answer: 429 RateLimited, 5xx ServerError, 408 LLMTimeout, other 4xx BadRequest."""
    message = f"{where}: HTTP {status}: {server_message(body, secrets)}"
    request_id = headers.get("x-request-id")
    if request_id:
        message += f" [request {request_id}]"
    if status == 429:
        return RateLimited(message, retry_after_s=retry_after_s(headers))
    if status >= 500:
        return ServerError(message, status=status)
    if status == 408:
        return LLMTimeout(message)
    if 400 <= status < 500:
        return BadRequest(message, status=status)
    return BadResponse(message)


def transport_error(exc: BaseException, *, where: str) -> LLMError:
    """The ``LLMError`` for a failure with no HTTP answer (never a ``CancelledError``: that propagates)."""
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return ConnectionLost(f"{where}: could not connect in time")
    if isinstance(exc, TimeoutError):
        return LLMTimeout(f"{where}: no answer in time")
    if isinstance(exc, aiohttp.ClientPayloadError):
        return ConnectionLost(f"{where}: the answer was cut off ({type(exc).__name__})")
    if isinstance(exc, aiohttp.ClientError | OSError):
        return ConnectionLost(f"{where}: connection failed ({type(exc).__name__}: {_clip(str(exc))})")
    return BadResponse(f"{where}: {type(exc).__name__}")


def scrub(text: str, secrets: Iterable[str]) -> str:
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= _MAX_MESSAGE else text[: _MAX_MESSAGE - 3] + "..."


# --------------------------------------------------------------------------- one POST

_encode_body = msgspec.json.Encoder().encode  # ~10 x faster than json.dumps on a chat body
_JSON = {"Content-Type": "application/json"}


def decode_json(payload: bytes) -> Any:
    """A response body as ``json.loads`` reads it; msgspec first (several times faster on UTF-8 JSON),
    ``json.loads`` for what msgspec refuses (another encoding, ``NaN``), so its errors and answers stay."""
    try:
        return msgspec.json.decode(payload)
    except msgspec.DecodeError:
        return json.loads(payload)


async def post_chat(session: aiohttp.ClientSession, url: str, body: Mapping[str, Any], *,
                    headers: Mapping[str, str], deadlines: Deadlines, endpoint: str, backend: str,
                    secrets: Iterable[str] = ()) -> Completion:
    """POST ``body`` to ``url`` once and return the parsed completion, or raise the matching ``LLMError``.

    The exchange's timeout is the backend's ``deadlines``' ``timeout_s`` (one timer for all its exchanges)."""
    secrets = tuple(secrets)
    started = time.monotonic()
    try:
        deadline = deadlines.start()
        try:
            async with session.post(url, data=_encode_body(body), headers={**_JSON, **headers}) as response:
                payload = await response.read()
                status, answer_headers = response.status, response.headers
        except BaseException as exc:
            deadlines.end(deadline, exc)  # a TimeoutError where the deadline cancelled the exchange
            raise
        deadlines.end(deadline)
    except (aiohttp.ClientError, OSError, TimeoutError) as exc:
        raise transport_error(exc, where=endpoint) from None
    latency = time.monotonic() - started
    if status != 200:
        raise error_for_status(status, answer_headers, payload, where=endpoint, secrets=secrets)
    usual = usual_completion(payload, latency_s=latency, endpoint=endpoint, backend=backend)
    if usual is not None:  # the usual body; any other is read (or refused) below
        return usual
    try:
        data = decode_json(payload)
    except (ValueError, UnicodeDecodeError):
        raise BadResponse(f"{endpoint}: the response is not JSON: {server_message(payload, secrets)}") from None
    return parse_completion(data, latency_s=latency, endpoint=endpoint, backend=backend)
