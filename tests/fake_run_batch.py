"""A stand-in for ``vllm run-batch``: reads an OpenAI Batch input file, writes the results file.

    python tests/fake_run_batch.py -i requests.jsonl -o results.jsonl [--model M] [--fail-every K] [--cut]

Answers come from ``fake_llm_server.answer`` (the same texts the fake server gives); ``--fail-every K``
makes every K-th request an error line (HTTP 500 in the response, as the Batch API writes them);
``--cut`` leaves the last line half-written (a file still being written, or a copy cut short).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fake_llm_server import answer, tokens  # noqa: E402


def result(n: int, row: dict, fail: bool) -> dict:
    body = row["body"]
    if fail:
        return {"id": f"batch_req_{n}", "custom_id": row["custom_id"],
                "response": {"status_code": 500, "request_id": f"req-{n}",
                             "body": {"error": {"message": "The server had an error", "type": "server_error"}}},
                "error": None}
    users = [m["content"] for m in body["messages"] if m["role"] == "user"]
    choices = []
    for i in range(int(body.get("n") or 1)):
        _kind, text = answer(users[-1], index=i, seed=body.get("seed"))
        choices.append({"index": i, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"})
    prompt = tokens("\n".join(m["content"] for m in body["messages"]))
    completion = sum(tokens(c["message"]["content"]) for c in choices)
    usage = {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}
    return {"id": f"batch_req_{n}", "custom_id": row["custom_id"],
            "response": {"status_code": 200, "request_id": f"req-{n}",
                         "body": {"id": f"chatcmpl-{n}", "object": "chat.completion", "model": body["model"],
                                  "choices": choices, "usage": usage}},
            "error": None}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("-i", "--input-file", required=True)
    p.add_argument("-o", "--output-file", required=True)
    p.add_argument("--model", default=None)
    p.add_argument("--fail-every", type=int, default=0)
    p.add_argument("--cut", action="store_true")
    args = p.parse_args()
    rows = [json.loads(line) for line in Path(args.input_file).read_text(encoding="utf-8").splitlines() if line]
    lines = [json.dumps(result(n, row, bool(args.fail_every) and n % args.fail_every == 0)) + "\n"
             for n, row in enumerate(rows, 1)]
    if args.cut and lines:
        lines[-1] = lines[-1][: len(lines[-1]) // 2]
    Path(args.output_file).write_text("".join(lines), encoding="utf-8")


if __name__ == "__main__":
    main()
