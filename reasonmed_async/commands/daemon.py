"""``reasonmed daemon``: its flags and its handler (the service itself is ``daemon/service.py``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from reasonmed_async.commands.common import UsageError
from reasonmed_async.commands.summaries import SUMMARIES
from reasonmed_async.config import load_config
from reasonmed_async.logs.setup import configure_for
from reasonmed_async.run_guards import preflight_for
from reasonmed_async.scale.flags import add_network_fs_flag
from reasonmed_async.scale.fsguard import guard_database_location


async def daemon(args: argparse.Namespace) -> int:
    from reasonmed_async.daemon.service import Daemon, DaemonOptions, parse_listen
    from reasonmed_async.daemon.token import announce_token, daemon_token

    try:
        listen = parse_listen(args.listen) if args.listen else None
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    db = Path(args.db)
    guard_database_location(db, allow_network_fs=args.allow_network_fs)
    config = load_config(args.config)
    token, written = daemon_token(args, listen, db)
    configure_for(config, db, secrets=[token] if token else [])
    announce_token(args, listen, written)
    options = DaemonOptions(Path(args.config), db, Path(args.inbox) if args.inbox else None, listen, token)
    await preflight_for(args, config)
    return await Daemon(options).run()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    d = sub.add_parser("daemon", help=SUMMARIES["daemon"])
    d.add_argument("--config", required=True)
    d.add_argument("--db", required=True)
    d.add_argument("--inbox", help="directory watched for question files")
    d.add_argument("--listen", help="HOST:PORT of the control API (127.0.0.1 unless you mean otherwise)")
    d.add_argument("--token-env", help="environment variable holding the API's bearer token"
                                       " (default: REASONMED_DAEMON_TOKEN if set)")
    d.add_argument("--token-file", help="file holding the API's bearer token"
                                        " (none given: one is generated into <db>.token, mode 0600)")
    d.add_argument("--no-auth", action="store_true", help="an API without a token (loopback only; logged)")
    add_network_fs_flag(d)
    d.set_defaults(handler=daemon)
