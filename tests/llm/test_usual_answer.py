"""The usual answer decoded straight into a Completion is what the general reading makes of it; any other
body is left to the general reading (which reads or refuses it as before)."""

from __future__ import annotations

import json

import pytest

from agents.llm import BadResponse
from reasonmed_async.llm.usual_answer import usual_completion
from reasonmed_async.llm.wire import decode_json, parse_completion

COT = "1. Restate the question: ...\n6. Conclude: the answer is B) no.\nFinal answer: B"

# What real servers answer (trimmed to one choice's text): each must take the fast path.
USUAL = {
    "vllm": {"id": "chatcmpl-9f2c", "object": "chat.completion", "created": 1733140000,
             "model": "Qwen/Qwen2.5-72B-Instruct",
             "choices": [{"index": 0, "message": {"role": "assistant", "reasoning_content": None, "content": COT,
                                                  "tool_calls": []},
                          "logprobs": None, "finish_reason": "stop", "stop_reason": None}],
             "usage": {"prompt_tokens": 712, "total_tokens": 871, "completion_tokens": 159,
                       "prompt_tokens_details": None},
             "prompt_logprobs": None, "kv_transfer_params": None},
    "vllm reasoning parser": {"id": "chatcmpl-1", "object": "chat.completion", "created": 1, "model": "r1",
                              "choices": [{"index": 0, "message": {"role": "assistant", "content": COT,
                                                                   "reasoning_content": "Let me think."},
                                           "finish_reason": "length", "stop_reason": None}],
                              "usage": {"prompt_tokens": 30, "completion_tokens": 4096, "total_tokens": 4126}},
    "openai o-series": {"id": "chatcmpl-AB", "object": "chat.completion", "created": 1733140000,
                        "model": "o1-mini-2024-09-12",
                        "choices": [{"index": 0, "message": {"role": "assistant", "content": COT, "refusal": None,
                                                             "annotations": []},
                                     "logprobs": None, "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 512, "completion_tokens": 1409, "total_tokens": 1921,
                                  "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                                  "completion_tokens_details": {"reasoning_tokens": 1152, "audio_tokens": 0,
                                                                "accepted_prediction_tokens": 0,
                                                                "rejected_prediction_tokens": 0}},
                        "service_tier": "default", "system_fingerprint": "fp_f56e40de61"},
    "llama.cpp server": {"choices": [{"finish_reason": "stop", "index": 0,
                                      "message": {"role": "assistant", "content": '{"verdict": "Correct"}'}}],
                         "created": 1733140000, "model": "gpt-3.5-turbo", "system_fingerprint": "b4240-0ac4c8e7",
                         "object": "chat.completion", "usage": {"completion_tokens": 12, "prompt_tokens": 901,
                                                                "total_tokens": 913},
                         "id": "chatcmpl-x", "timings": {"prompt_n": 901, "prompt_ms": 312.5, "predicted_n": 12}},
    "azure": {"choices": [{"content_filter_results": {"hate": {"filtered": False, "severity": "safe"}},
                           "finish_reason": "stop", "index": 0, "logprobs": None,
                           "message": {"content": COT, "role": "assistant"}}],
              "created": 1733140000, "id": "chatcmpl-az", "model": "gpt-4o-mini", "object": "chat.completion",
              "prompt_filter_results": [{"prompt_index": 0, "content_filter_results": {}}],
              "usage": {"completion_tokens": 160, "prompt_tokens": 700, "total_tokens": 860}},
    "no usage, null finish reason": {"choices": [{"message": {"content": COT}, "finish_reason": None}]},
    "null usage and details": {"choices": [{"message": {"content": ""}, "finish_reason": ""}],
                               "usage": None},
    "null details": {"choices": [{"message": {"content": COT}, "finish_reason": "stop"}],
                     "usage": {"prompt_tokens": 3, "completion_tokens": 4, "completion_tokens_details": None}},
}

# Bodies the fast path must leave to the general reading: refused, or read another way (defaults for odd counts).
OTHER = {
    "refusal": {"choices": [{"message": {"content": None, "refusal": "I can't help with that."},
                             "finish_reason": "content_filter"}]},
    "no message": {"choices": [{"message": None}]},
    "no choices": {"choices": []},
    "two choices, index order": {"choices": [{"index": 1, "message": {"content": "b"}, "finish_reason": "length"},
                                             {"index": 0, "message": {"content": "a"}}]},
    "boolean count": {"choices": [{"message": {"content": COT}}], "usage": {"prompt_tokens": True}},
    "float count": {"choices": [{"message": {"content": COT}}], "usage": {"completion_tokens": 159.0}},
    "null count": {"choices": [{"message": {"content": COT}}], "usage": {"prompt_tokens": None}},
    "string count": {"choices": [{"message": {"content": COT}}],
                     "usage": {"completion_tokens_details": {"reasoning_tokens": "12"}}},
    "usage a list": {"choices": [{"message": {"content": COT}}], "usage": []},
    "numeric finish reason": {"choices": [{"message": {"content": COT}, "finish_reason": 1}]},
    "a list": [{"message": {"content": COT}}],
}

RAW = {  # bodies that are not plain UTF-8 JSON objects of that shape
    "NaN count": b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": NaN}}',
    "huge count": b'{"choices": [{"message": {"content": "x"}}], "usage": {"prompt_tokens": 123456789012345678901234}}',
    "lone surrogate": b'{"choices": [{"message": {"content": "x \\ud800 y"}, "finish_reason": "stop"}]}',
    "latin-1": '{"choices": [{"message": {"content": "caf\u00e9"}}]}'.encode("latin-1"),
    "duplicate key": b'{"choices": [{"message": {"content": "first", "content": "second"}}]}',
}


def _general(payload: bytes):
    try:
        return parse_completion(decode_json(payload), latency_s=0.25, endpoint="http://h/v1", backend="openai")
    except (BadResponse, ValueError, UnicodeDecodeError) as exc:
        return type(exc)


def _usual(payload: bytes):
    return usual_completion(payload, latency_s=0.25, endpoint="http://h/v1", backend="openai")


@pytest.mark.parametrize("name", list(USUAL))
def test_the_usual_answers_take_the_fast_path_and_read_as_before(name: str) -> None:
    payload = json.dumps(USUAL[name]).encode()
    fast = _usual(payload)
    assert fast is not None
    assert fast == _general(payload)


def test_the_counts_and_finish_reason_come_through() -> None:
    fast = _usual(json.dumps(USUAL["openai o-series"]).encode())
    assert (fast.text, fast.finish_reason, fast.prompt_tokens, fast.completion_tokens, fast.reasoning_tokens) == (
        COT, "stop", 512, 1409, 1152)
    assert (fast.latency_s, fast.endpoint, fast.backend, fast.cached, fast.more) == (0.25, "http://h/v1", "openai",
                                                                                     False, ())
    assert _usual(json.dumps(USUAL["vllm reasoning parser"]).encode()).truncated


@pytest.mark.parametrize("name", list(OTHER))
def test_other_bodies_are_left_to_the_general_reading(name: str) -> None:
    assert _usual(json.dumps(OTHER[name]).encode()) is None


@pytest.mark.parametrize("name", list(RAW))
def test_other_encodings_read_the_same_either_way(name: str) -> None:
    payload = RAW[name]
    fast = _usual(payload)
    assert fast is None or fast == _general(payload)
