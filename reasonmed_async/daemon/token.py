"""The control API's bearer token: always one, unless ``--no-auth`` (loopback only) says otherwise.

Given (``--token-file``, ``--token-env`` or ``$REASONMED_DAEMON_TOKEN``), it is
used.  Otherwise one is generated and written to ``<db>.token`` with mode 0600
(kept across restarts, so clients keep working); the daemon says where.  A
non-loopback address needs a token given explicitly, and ``--no-auth`` is
refused there.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import stat
from pathlib import Path
from typing import Any

import structlog

log = structlog.get_logger("daemon")


class TokenError(ValueError):
    """The token setup is refused (exit 2)."""


def is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def token_path(db: Path) -> Path:
    return Path(f"{db}.token")


def generated_token(db: Path) -> tuple[str, Path]:
    """The token of ``<db>.token`` (created with mode 0600 if absent or empty)."""
    path = token_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        existing = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        existing = ""
    if existing:
        if stat.S_IMODE(path.stat().st_mode) & 0o077:
            os.chmod(path, 0o600)
        return existing, path
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, f"{token}\n".encode("ascii"))
    finally:
        os.close(fd)
    return token, path


def log_no_auth(host: str) -> None:
    log.warning("daemon.no_auth", host=host, message="--no-auth: the control API takes requests without a token")


def resolve_token(given: str | None, *, host: str, db: Path, no_auth: bool) -> tuple[str | None, Path | None]:
    """(token or None with ``no_auth``, the file it was written to when generated)."""
    if no_auth:
        if given:
            raise TokenError("--no-auth and a token: choose one")
        if not is_loopback(host):
            raise TokenError(f"--no-auth is for loopback only: refusing to listen on {host} without a token")
        return None, None
    if given:
        return given, None
    if not is_loopback(host):
        raise TokenError(f"refusing to listen on {host} without a token given explicitly (--token-env or --token-file)")
    token, path = generated_token(db)
    return token, path


def given_token(token_file: str | None, token_env: str | None) -> str | None:
    """The token the user gave: ``--token-file``, ``--token-env`` or ``$REASONMED_DAEMON_TOKEN``."""
    if token_file:
        try:
            return Path(token_file).read_text(encoding="utf-8").strip() or None
        except OSError as exc:
            raise TokenError(f"--token-file {token_file}: {exc.strerror}") from None
    if token_env:
        token = os.environ.get(token_env) or None
        if token is None:
            raise TokenError(f"--token-env {token_env}: that environment variable is not set")
        return token
    return os.environ.get("REASONMED_DAEMON_TOKEN") or None


def daemon_token(args: Any, listen: tuple[str, int] | None, db: Path) -> tuple[str | None, Path | None]:
    """The daemon's token from its arguments (generated when none is given and it listens)."""
    token = given_token(args.token_file, args.token_env)
    if listen is None:
        return token, None
    return resolve_token(token, host=listen[0], db=db, no_auth=args.no_auth)


def announce_token(args: Any, listen: tuple[str, int] | None, written: Path | None) -> None:
    """After logging is set up: ``--no-auth`` logged, a generated token's file said."""
    if listen is not None and args.no_auth:
        log_no_auth(listen[0])
    if written is not None:
        print(f"reasonmed daemon: API token generated in {written} (mode 0600): send Authorization: Bearer <it>",
              flush=True)
