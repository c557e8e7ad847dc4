"""Azure OpenAI with Microsoft Entra ID tokens (``auth = "entra"``): a real ``reasonmed run`` subprocess whose
tokens come from azure-identity's own ``DefaultAzureCredential`` (its managed-identity path, pointed at a
fake token endpoint on 127.0.0.1), sent as ``Authorization: Bearer`` to the fake Azure endpoint, which
refuses anything but a live token it issued.  A token that expires mid-run is replaced, nothing fails,
the export equals a clean run's, and no token reaches stderr, the log, the database or the export.
Without azure-identity the same config is one line naming the extra, exit 2.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from fake_entra import FakeEntra
from fake_llm_server import FakeLLMServer
from retry_support import QUESTIONS, ROOT, cli, config, db_rows, env, export_files, start_cli

pytestmark = pytest.mark.slow

LIMIT = 4
ALIASES = ("qwen", "deepseek", "huatuo", "gpt-4o-mini", "o1-mini", "gpt-4o")


def entra_config(tmp_path: Path, endpoint: str) -> Path:
    """examples/openai.toml's roles (one deployment per model) on an Azure backend with Entra ID auth."""
    cfg = config(tmp_path)
    text = cfg.read_text(encoding="utf-8")
    start, end = text.index("[backends.local]"), text.index("[models.qwen]")
    deployments = ", ".join(f'"fake-{a}" = {{ rpm = 600000, tpm = 1000000000, o1 = false }}' for a in ALIASES)
    table = (f'[backends.local]\ntype = "azure"\nendpoint = "{endpoint}"\napi_version = "2024-10-21"\n'
             f'auth = "entra"\ntimeout_s = 30\ndeployments = {{ {deployments} }}\n\n')
    cfg.write_text(text[:start] + table + text[end:], encoding="utf-8")
    return cfg


def _env(server: FakeLLMServer, entra: FakeEntra) -> dict[str, str]:
    base = {k: v for k, v in env(server).items() if not k.startswith(("AZURE_", "IDENTITY_", "MSI_"))}
    return {**base, **entra.env()}


async def _until(predicate, guard_s: float = 60.0) -> None:
    async with asyncio.timeout(guard_s):
        while not predicate():
            await asyncio.sleep(0.02)


def _bearer(record) -> str:
    return record.headers.get("Authorization", "")[len("Bearer "):]


async def test_entra_tokens_from_default_azure_credential_are_renewed_when_one_expires_mid_run(tmp_path):
    async with FakeEntra(lifetime_s=2) as entra, FakeLLMServer(api_key=None) as server:
        server.bearer_check = entra.check
        cfg = entra_config(tmp_path, server.azure_endpoint)
        environ = _env(server, entra)
        clean_db, clean_out = tmp_path / "clean.db", tmp_path / "clean"
        rc, _, err = await cli("run", "--config", str(cfg), "--input", str(QUESTIONS), "--db", str(clean_db),
                               "--limit", str(LIMIT), environ=environ, guard_s=300)
        assert rc == 0, err
        assert (await cli("export", "--db", str(clean_db), "--out", str(clean_out), environ=environ))[0] == 0

        db, out = tmp_path / "entra.db", tmp_path / "entra"
        server.hold_from, server.held = len(server.requests) + 20, 0
        proc = await start_cli("run", "--config", str(cfg), "--input", str(QUESTIONS), "--db", str(db),
                               "--limit", str(LIMIT), environ=environ)
        await _until(lambda: server.held > 0)  # mid-run, every request held at the server
        before = {i.token for i in entra.issued}
        await _until(lambda: time.time() > max(i.expires_on for i in entra.issued) + 0.1)  # the token expires
        mark = len(server.requests)
        server.released.set()
        _, stderr = await asyncio.wait_for(proc.communicate(), 300)
        assert proc.returncode == 0, stderr.decode()

    chat = [r for r in server.requests if "/chat/completions" in r.path]
    assert chat and all(r.status == 200 for r in chat), "no request was refused"
    later = {_bearer(r) for r in server.requests[mark:]}
    assert later - before, "requests after the expiry carried a token issued after it"
    assert all(i.resource == "https://cognitiveservices.azure.com" for i in entra.issued)
    assert all(not r.headers.get("api-key") for r in chat)
    assert db_rows(db, "SELECT COUNT(*) FROM deliveries WHERE state='failed'") == [(0,)]
    assert db_rows(db, "SELECT status FROM runs") == [("finished",)]
    rc, _, err = await cli("export", "--db", str(db), "--out", str(out), environ=environ)
    assert rc == 0, err
    assert export_files(out) == export_files(clean_out)
    tokens = [i.token for i in entra.issued]
    for path in tmp_path.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            assert not any(t.encode() in data for t in tokens), f"a token in {path}"
    assert not any(t in stderr.decode() for t in tokens)


async def test_entra_without_azure_identity_installed_is_one_line_naming_the_extra(tmp_path):
    shadow = tmp_path / "shadow" / "azure"  # an `azure` package without `identity`: azure-identity missing
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("", encoding="utf-8")
    async with FakeEntra() as entra, FakeLLMServer(api_key=None) as server:
        cfg = entra_config(tmp_path, server.azure_endpoint)
        environ = {**_env(server, entra), "PYTHONPATH": f"{shadow.parent}:{ROOT}"}
        rc, _, err = await cli("run", "--config", str(cfg), "--input", str(QUESTIONS), "--db",
                               str(tmp_path / "x.db"), "--limit", "1", environ=environ)
    assert rc == 2, err
    lines = [line for line in err.splitlines() if line.strip()]
    assert "reasonmed-async[azure]" in err and "[backends.local]" in err and "Traceback" not in err, err
    assert len([line for line in lines if "azure" in line]) == 1, err
