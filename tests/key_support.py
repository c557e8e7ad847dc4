"""Helpers of the key-rotation tests: a config whose backend reads its key from a file, rotating that file,
and checking that no key reached any file the run wrote."""

from __future__ import annotations

import json
from pathlib import Path

OLD, NEW, WRONG = "sk-rotate-old-0123456789", "sk-rotate-new-9876543210", "sk-rotate-wrong-55555555"
ENV_LINE = 'api_key_env = "REASONMED_OPENAI_API_KEY"'


def use_key_file(cfg: Path, key: str = OLD) -> Path:
    """Rewrite ``cfg`` (examples/openai.toml's shape) to read its key from a new file holding ``key``."""
    key_file = cfg.parent / "secrets" / "openai.key"
    key_file.parent.mkdir(exist_ok=True)
    key_file.write_text(key + "\n", encoding="utf-8")
    text = cfg.read_text(encoding="utf-8")
    assert ENV_LINE in text
    cfg.write_text(text.replace(ENV_LINE, f'api_key_file = "{key_file}"'), encoding="utf-8")
    return key_file


def rotate(key_file: Path, key: str) -> None:
    """As a secrets manager does it: a new file renamed over the old one."""
    fresh = key_file.with_suffix(".tmp")
    fresh.write_text(key + "\n", encoding="utf-8")
    fresh.replace(key_file)


def events(db: Path, name: str) -> list[dict]:
    """The ``name`` events of the log beside ``db`` (JSON lines)."""
    log = Path(f"{db}.log")
    if not log.exists():
        return []
    return [e for e in map(json.loads, log.read_text(encoding="utf-8").splitlines()) if e.get("event") == name]


def bearer(record) -> str:
    return record.headers.get("Authorization", "")[len("Bearer "):]


def assert_no_key(root: Path, *texts: str) -> None:
    """No key, old, new or wrong, in any file under ``root`` (the key file aside) nor in ``texts``."""
    for path in root.rglob("*"):
        if path.is_file() and "secrets" not in path.parts:
            data = path.read_bytes()
            for key in (OLD, NEW, WRONG):
                assert key.encode() not in data, f"a key in {path}"
    for text in texts:
        for key in (OLD, NEW, WRONG):
            assert key not in text
