"""The shape of the code: imports point one way, rooms stay small, the façade stays lazy."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: package -> the project packages it must never import
FORBIDDEN = {"bus": {"agents", "reasonmed_async"}, "agents": {"reasonmed_async"}}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found


@pytest.mark.parametrize("package", sorted(FORBIDDEN))
def test_dependencies_point_one_way(package: str) -> None:
    offenders = [
        f"{path.relative_to(ROOT)} imports {sorted(_imports(path) & FORBIDDEN[package])}"
        for path in sorted((ROOT / package).rglob("*.py"))
        if _imports(path) & FORBIDDEN[package]
    ]
    assert not offenders, "\n".join(offenders)


def test_no_module_is_a_warehouse() -> None:
    big = [f"{p.relative_to(ROOT)}: {n} lines"
           for pkg in ("bus", "agents", "reasonmed_async")
           for p in sorted((ROOT / pkg).rglob("*.py"))
           if (n := len(p.read_text().splitlines())) > 400]
    assert not big, "\n".join(big)


@pytest.mark.parametrize("module, heavy", [
    ("reasonmed_async", {"sqlite3", "aiosqlite", "aiohttp", "openai", "vllm"}),
    ("reasonmed_async.llm.retry", {"sqlite3", "aiosqlite", "openai", "vllm"}),
    ("reasonmed_async.config", {"sqlite3", "aiosqlite", "aiohttp", "openai", "vllm"}),
    # the CLI starts for every command (`logs -f` must be reading within a moment): no HTTP client until needed
    ("reasonmed_async.cli", {"aiohttp", "openai", "vllm"}),
])
def test_importing_a_room_loads_only_what_it_needs(module: str, heavy: set[str]) -> None:
    code = f"import sys, {module}; print(' '.join(sorted(m for m in {sorted(heavy)!r} if m in sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", f"importing {module} loaded {out.stdout.strip()}"
