"""Helpers of the retry / outage / circuit tests: the CLI as a subprocess against the fake server."""

from __future__ import annotations

import asyncio
import json
import os
import sqlite3
import sys
from collections import Counter
from pathlib import Path

from fake_llm_server import FakeLLMServer

ROOT = Path(__file__).resolve().parents[2]
QUESTIONS = ROOT / "examples" / "questions.jsonl"
KEY = "sk-retry-test-0123456789abcdef"


def retry_section(attempts: int = 3, **extra: float) -> str:
    values = {"attempts": attempts, "base_s": 0.02, "cap_s": 0.2, "timeout_s": 30, "max_wait_s": 1.0,
              "outage_budget_s": 120, "circuit_after": 5, **extra}
    return "[retry]\n" + "\n".join(f"{k} = {v}" for k, v in values.items()) + "\n"


def config(tmp_path: Path, *, attempts: int = 3, grace_s: float = 5.0, **retry: float) -> Path:
    """examples/openai.toml with a fast ``[retry]`` and a short grace period."""
    text = (ROOT / "examples" / "openai.toml").read_text(encoding="utf-8")
    start, end = text.index("[retry]"), text.index("[store]")
    text = text[:start] + retry_section(attempts, **retry) + "\n" + text[end:]
    text = distinct_models(text.replace("grace_s = 30", f"grace_s = {grace_s}"))
    path = tmp_path / "openai.toml"
    path.write_text(text, encoding="utf-8")
    return path


def distinct_models(text: str) -> str:
    """examples/openai.toml with one served name per model alias (``fake-qwen``, ...), so that request
    bodies tell the paths apart (with one name for all, two paths at one temperature send the same body)."""
    for alias in ("qwen", "deepseek", "huatuo", "gpt-4o-mini", "o1-mini", "gpt-4o"):
        head = f"[models.{alias}]\nbackend = \"local\"\nmodel = "
        at = text.index(head) + len(head)
        text = text[:at] + f'"fake-{alias}"' + text[text.index("\n", at):]
    return text


def resent_early(server: FakeLLMServer) -> list[tuple[str, float]]:
    """Requests sent again before the Retry-After of the 429 they got had run out, by the server's clock.

    Only the same body counts: a client can only resend after it has read the 429, so load can only
    make a resend later, never earlier, and this holds however loaded the machine is."""
    early, limited = [], {}
    for r in server.requests:
        if not r.body:
            continue
        key = body_key(r.body)
        until = limited.get(key)
        if until is not None and r.t_monotonic < until:
            early.append((r.model_or_deployment, until - r.t_monotonic))
        if r.status == 429:
            limited[key] = r.t_monotonic + float(r.retry_after_s)
    return early


def env(server: FakeLLMServer, key: str = KEY) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("REASONMED_", "AZURE_OPENAI"))}
    return {**base, "REASONMED_OPENAI_BASE_URL": server.openai_url, "REASONMED_OPENAI_API_KEY": key,
            }


async def start_cli(*args: str, environ: dict[str, str]) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(sys.executable, "-m", "reasonmed_async.cli", *args, cwd=ROOT,
                                                env=environ, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.PIPE)


async def cli(*args: str, environ: dict[str, str], guard_s: float = 120) -> tuple[int, str, str]:
    """Run the CLI to its end (bounded by ``guard_s``, a hang guard, not a timing assertion)."""
    proc = await start_cli(*args, environ=environ)
    out, err = await asyncio.wait_for(proc.communicate(), guard_s)
    return proc.returncode if proc.returncode is not None else -1, out.decode(), err.decode()


def body_key(body: dict) -> str:
    return json.dumps(body, sort_keys=True)


def sent(server: FakeLLMServer, key: str) -> int:
    """How many times the server received exactly this request body (its own log)."""
    return sum(1 for r in server.requests if r.body and body_key(r.body) == key)


def repeats(server: FakeLLMServer) -> Counter[str]:
    return Counter(body_key(r.body) for r in server.requests if r.body)


def user_text(body: dict) -> str:
    return "\n".join(str(m.get("content", "")) for m in body["messages"] if m.get("role") == "user")


def is_generation(body: dict) -> bool:
    return user_text(body).startswith("You are a medical expert. Answer the multiple-choice question")


def is_ranking(body: dict) -> bool:
    return user_text(body).startswith("You are a medical expert comparing several reasoning paths")


def db_rows(db: Path, sql: str, params: tuple = ()) -> list[tuple]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute(sql, params).fetchall()


def export_files(out: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.jsonl"))}


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
