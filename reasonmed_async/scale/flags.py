"""The scale flags of ``run`` / ``resume`` / ``retry``, apart from the code behind them.

The ``reasonmed`` parser adds them at every start (``--help`` too), so this module imports nothing
but argparse: the sharding, batch and file-system code stays unimported until a command uses it.
"""

from __future__ import annotations

import argparse


def add_network_fs_flag(parser: argparse.ArgumentParser) -> None:
    """``--allow-network-fs`` on a command that opens a database for writing."""
    parser.add_argument("--allow-network-fs", action="store_true",
                        help="only warn (instead of refusing) when --db is on a network file system"
                             " (NFS, SMB, Lustre, GPFS, CephFS, FUSE): SQLite's WAL mode needs a node-local disk")


def add_shard_flags(run: argparse.ArgumentParser) -> None:
    run.add_argument("--shard", metavar="i/N", default=None,
                     help="take only shard i of N (0 <= i < N) of the questions, by a stable hash of each"
                          " question's de-duplication key; merge the shards' databases with `reasonmed merge`")
    run.add_argument("--quota-share", metavar="F", default=None,
                     help="with --shard: the share of every Azure deployment's rpm/tpm this shard may use"
                          " (default 1/N, so N shards together never exceed the quota)")


def add_ingest_flag(run: argparse.ArgumentParser) -> None:
    run.add_argument("--ingest-only", action="store_true",
                     help="record the run and its questions, make no call: then `reasonmed batch export"
                          " --stage generate` (or `reasonmed resume` to run it live)")


def add_scale_flags(run: argparse.ArgumentParser, *writers: argparse.ArgumentParser) -> None:
    """``run``'s --shard, --quota-share and --ingest-only; --allow-network-fs on ``run`` and ``writers``."""
    for parser in (run, *writers):
        add_network_fs_flag(parser)
    add_shard_flags(run)
    add_ingest_flag(run)
