"""Key sources (``api_key_env`` / ``api_key_file``) and rotation on a 401, against the fake server on 127.0.0.1.

Both HTTP backends: the request refused with the old key is sent once more, at once, with the key the
file now holds (the same client: the aiohttp backend swaps its Authorization header, the Azure one
hands the SDK an async key provider); an unchanged file lets the 401 through exactly once.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest
import structlog

from agents.llm import BadRequest, ChatMessage, ChatRequest
from fake_llm_server import FakeLLMServer
from reasonmed_async.config import BackendConfig, ConfigError, parse_config
from reasonmed_async.llm.azure_openai import open_azure_backend
from reasonmed_async.llm.credentials import KeySource, reload_all
from reasonmed_async.llm.openai_http import open_openai_backend
from reasonmed_async.logs.setup import configure, flush

OLD, NEW = "sk-file-old-0123456789abcdef", "sk-file-new-fedcba9876543210"


def chat(model: str = "gpt-4o") -> ChatRequest:
    return ChatRequest(model=model, messages=(ChatMessage("user", "Question: which? A) x B) y"),), max_tokens=32)


@pytest.fixture
def key_file(tmp_path: Path) -> Path:
    path = tmp_path / "key"
    path.write_text(f"{OLD}\n", encoding="utf-8")
    return path


def azure(server: FakeLLMServer, key_file: Path) -> BackendConfig:
    return BackendConfig("az", "azure", {"endpoint": server.azure_endpoint, "api_version": "2024-10-21",
                                         "api_key_file": str(key_file),
                                         "deployments": {"gpt-4o": {"rpm": 6000, "tpm": 1_000_000}}})


def openai(server: FakeLLMServer, key_file: Path) -> BackendConfig:
    return BackendConfig("local", "openai", {"base_url": server.openai_url, "api_key_file": str(key_file)})


@pytest.mark.parametrize("content, words", [
    ("", ["[backends.b] api_key_file", "is empty"]),
    ("  \n\n", ["is empty"]),
    ("sk-one sk-two\n", ["more than one word"]),
])
def test_an_unusable_key_file_is_one_line_naming_the_backend_and_never_the_content(tmp_path, content, words):
    path = tmp_path / "key"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        KeySource.from_options("b", {"api_key_file": str(path)})
    assert all(w in str(info.value) for w in words) and "\n" not in str(info.value)
    assert "sk-one" not in str(info.value)


def test_a_missing_key_file_and_two_key_sources_are_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"\[backends.b\] api_key_file: cannot read .*nope: No such file"):
        KeySource.from_options("b", {"api_key_file": str(tmp_path / "nope")})
    text = ('[backends.local]\ntype = "openai"\nbase_url = "http://127.0.0.1:1/v1"\napi_key_env = "K"\n'
            f'api_key_file = "{tmp_path / "key"}"\n[models.m]\nbackend = "local"\n[generation]\nmodels = ["m"]\n')
    with pytest.raises(ConfigError, match="not both"):
        parse_config(text)
    with pytest.raises(ConfigError, match="key source is required"):
        parse_config(text.replace('type = "openai"\nbase_url = "http://127.0.0.1:1/v1"',
                                  'type = "azure"\nendpoint = "http://127.0.0.1:1"\napi_version = "v"\n'
                                  'deployments = { m = { rpm = 1, tpm = 1 } }')
                     .replace('api_key_env = "K"\n', "").replace(f'api_key_file = "{tmp_path / "key"}"\n', ""))


@pytest.mark.parametrize("open_backend, build", [(open_azure_backend, azure), (open_openai_backend, openai)])
async def test_a_401_after_the_file_changed_is_resent_once_with_the_new_key(key_file, open_backend, build):
    async with FakeLLMServer(api_key=OLD) as server:
        backend = await open_backend(build(server, key_file))
        try:
            client = getattr(backend, "_client", getattr(backend, "_session", None))
            assert (await backend.complete(chat())).text
            key_file.write_text(f"{NEW}\n", encoding="utf-8")
            server.api_key = NEW
            mark = len(server.requests)
            assert (await backend.complete(chat())).text
            sent = [(r.status, r.headers.get("api-key") or r.headers.get("Authorization")) for r in server.requests[mark:]]
            assert [s for s, _ in sent] == [401, 200] and OLD in sent[0][1] and NEW in sent[1][1]
            assert backend.credentials.reloads == 1
            assert getattr(backend, "_client", getattr(backend, "_session", None)) is client  # no new client
        finally:
            await backend.aclose()


@pytest.mark.parametrize("open_backend, build", [(open_azure_backend, azure), (open_openai_backend, openai)])
async def test_a_401_with_the_file_unchanged_goes_up_once_with_every_key_masked(key_file, open_backend, build):
    async with FakeLLMServer(api_key=NEW) as server:  # the server echoes the key it refused
        backend = await open_backend(build(server, key_file))
        try:
            with pytest.raises(BadRequest) as info:
                await backend.complete(chat())
            assert info.value.status == 401 and len(server.requests) == 1
            assert OLD not in str(info.value) and OLD not in repr(info.value.args)
        finally:
            await backend.aclose()


async def test_sighup_reload_reads_the_file_for_every_backend_with_one(tmp_path, key_file):
    async with FakeLLMServer(api_key=OLD) as server:
        backends = {"local": await open_openai_backend(openai(server, key_file)),
                    "plain": await open_openai_backend(BackendConfig("plain", "openai", {"base_url": server.openai_url}))}
        try:
            assert reload_all(backends) is True and backends["local"].credentials.reloads == 0  # unchanged
            key_file.write_text(NEW, encoding="utf-8")
            assert reload_all(backends) and backends["local"].credentials.current == NEW
            key_file.write_text("", encoding="utf-8")  # caught mid-write: the key in use stays
            assert reload_all(backends) and backends["local"].credentials.current == NEW
            assert reload_all({"plain": backends["plain"]}) is False  # no key file: SIGHUP keeps its meaning
        finally:
            for b in backends.values():
                await b.aclose()


def test_a_key_read_from_a_file_is_masked_in_the_log_even_after_logging_was_set_up(tmp_path, key_file):
    log = tmp_path / "run.log"
    configure(log_file=log, console_level=logging.CRITICAL + 1)
    source = KeySource.from_options("b", {"api_key_file": str(key_file)})
    key_file.write_text(NEW, encoding="utf-8")
    source.reload("sighup")
    structlog.get_logger("llm").error("llm.failed", error=f"HTTP 401: Incorrect API key provided: {OLD} / {NEW}")
    flush()
    lines = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    text = log.read_text(encoding="utf-8")
    assert OLD not in text and NEW not in text and "[REDACTED]" in text
    assert any(e["event"] == "credentials.reloaded" and e["reason"] == "sighup" for e in lines)
