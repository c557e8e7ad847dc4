#!/usr/bin/env bash
# The router tier (tests/router): the real vllm-router (a Rust load balancer from PyPI, no GPU) in front
# of three fake OpenAI-compatible replicas on 127.0.0.1, with the pipeline going through it.
#
#   bash mk/test-router.sh [pytest args]      (the Makefile's `make test-router`)
#
# vllm-router lives in its own venv (.venv-router, ~60 MB): its dependencies (fastapi, uvicorn, ...)
# are not the project's. It is built once from requirements-router.txt (the exact versions these
# tests passed with, installed with --no-deps) and again when that file changes; the tests run in
# the project's .venv and start the router's binary (REASONMED_VLLM_ROUTER).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

PYTHON=${PYTHON:-python3.11}
VENV=${ROUTER_VENV:-.venv-router}
PINS=requirements-router.txt
STAMP="$VENV/.installed"

command -v "$PYTHON" >/dev/null 2>&1 || { echo "need $PYTHON on PATH (or PYTHON=/path/to/python3.11)" >&2; exit 2; }
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
if [ ! -f "$STAMP" ] || [ "$PINS" -nt "$STAMP" ]; then
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps -r "$PINS" 2>&1 \
        | { grep -v "is ignored: it is neither a file nor a directory" || true; }
    touch "$STAMP"
fi
"$VENV/bin/vllm-router" --help >/dev/null   # installed and runnable on this platform

export REASONMED_VLLM_ROUTER="$PWD/$VENV/bin/vllm-router" REASONMED_REQUIRE_ROUTER=1
exec .venv/bin/python -m pytest -q -s tests/router "$@"
