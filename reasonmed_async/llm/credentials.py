"""Where a backend's API key comes from, and how it is rotated without a restart.

A ``[backends.NAME]`` table names at most one key source:

- ``api_key_env = "VAR"``: the environment variable holding the key, read once at start;
- ``api_key_file = "/run/secrets/key"``: a file holding the key (surrounding whitespace ignored),
  read at start and re-read on SIGHUP and after a 401 (``KeySource.replaced``).

Rotation: the backend sends each request with ``KeySource.current`` and remembers the key it sent.
On a 401 it asks ``replaced(sent)``: the file is re-read, and if the key now differs from the one
that request carried, the backend sends that request again at once with the new key (the one retry
of a rotated key, owned by the backend; ``RetryingClient`` never sees that 401).  If the key is
unchanged the 401 goes up as before and counts toward the model's circuit (``health.py``).

Every key ever read is registered with the log redactor (``logs.setup.register_secret``) and kept in
``known`` so error texts that echo one (old or new) are masked.  Nothing here logs a key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import structlog

from agents.llm import BadRequest, LLMError

from reasonmed_async.config import ConfigError
from reasonmed_async.logs.setup import register_secret

log = structlog.get_logger("llm")

KEY_OPTIONS = ("api_key_env", "api_key_file")


def check_key_options(options: Mapping[str, Any], *, required: bool) -> None:
    """``ValueError`` unless the table names at most one key source (exactly one when ``required``)."""
    given = [k for k in KEY_OPTIONS if options.get(k) is not None]
    if len(given) > 1:
        raise ValueError("give one of api_key_env (a variable) or api_key_file (a file), not both")
    if required and not given:
        raise ValueError("a key source is required: api_key_env (a variable) or api_key_file (a file)")
    path = options.get("api_key_file")
    if path is not None and (not isinstance(path, str) or not path.strip()):
        raise ValueError("api_key_file must be the path of a file holding the key")


def read_key_file(path: Path) -> str:
    """The key in ``path``; ``OSError`` if unreadable, ``ValueError`` if empty (never the content)."""
    key = path.read_text(encoding="utf-8").strip()
    if not key:
        raise ValueError(f"{path} is empty")
    if any(c.isspace() for c in key):
        raise ValueError(f"{path} holds more than one word (a key is one)")
    return key


class KeySource:
    """The current key of one backend, from a variable (fixed) or a file (re-read on demand)."""

    def __init__(self, where: str, key: str, *, file: Path | None = None) -> None:
        self.where = where  # "[backends.NAME]", for messages
        self.file = file
        self.current = key
        self.known: tuple[str, ...] = ()
        self.reloads = 0  # how many times a re-read found a new key
        self._remember(key)

    @classmethod
    def from_options(cls, name: str, options: Mapping[str, Any],
                     env: Mapping[str, str] | None = None) -> KeySource | None:
        """The source a table names, read now; None where it names none; ``ConfigError`` in one line."""
        where = f"[backends.{name}]"
        if options.get("api_key_file") is not None:
            path = Path(str(options["api_key_file"])).expanduser()
            try:
                return cls(where, read_key_file(path), file=path)
            except OSError as exc:
                raise ConfigError(f"{where} api_key_file: cannot read {path}: {exc.strerror}") from None
            except (ValueError, UnicodeDecodeError) as exc:
                raise ConfigError(f"{where} api_key_file: {exc}; it must hold the API key") from None
        var = options.get("api_key_env")
        if var is None:
            return None
        key = (os.environ if env is None else env).get(str(var), "")
        if not key:
            raise ConfigError(f"{where}: environment variable {var} (api_key_env) is not set or empty;"
                              " it must hold the API key")
        return cls(where, key)

    def _remember(self, key: str) -> None:
        if key not in self.known:
            self.known = (*self.known, key)
        register_secret(key)

    def reload(self, reason: str) -> bool:
        """Re-read the key file; True when it now holds another key.  A file that cannot be read (being
        replaced, gone) keeps the current key and logs why (not the content)."""
        if self.file is None:
            return False
        try:
            key = read_key_file(self.file)
        except (OSError, ValueError, UnicodeDecodeError) as exc:
            log.warning("credentials.reload_failed", backend=self.where, file=str(self.file), reason=reason,
                        error=getattr(exc, "strerror", None) or str(exc))
            return False
        if key == self.current:
            return False
        self._remember(key)
        self.current = key
        self.reloads += 1
        log.info("credentials.reloaded", backend=self.where, file=str(self.file), reason=reason)
        return True

    def replaced(self, error: LLMError, sent: str | None) -> bool:
        """After ``error`` answered a request sent with key ``sent``: is it a 401 that a newer key may
        fix?  Re-reads the file once; True when the key now differs from ``sent`` (send it again)."""
        if self.file is None or not isinstance(error, BadRequest) or error.status != 401:
            return False
        self.reload("401")
        return self.current != sent

    async def provider(self) -> str:
        """The current key, for an SDK client that asks per request (``AsyncAzureOpenAI(api_key=...)``)."""
        return self.current


def reload_all(backends: Mapping[str, object], reason: str = "sighup") -> bool:
    """Re-read every backend's key file; True when at least one backend has a key file."""
    found = False
    for backend in backends.values():
        source = getattr(backend, "credentials", None)
        if isinstance(source, KeySource) and source.file is not None:
            found = True
            source.reload(reason)
    return found
