"""The ``reasonmed`` parser's table, imported lazily: a command's module is imported when that command runs.

Start-up is a user's wait too (a 300-question run spends a tenth of its CPU importing): `reasonmed run`
has no use for the report, scoring, decontamination or evaluation code, nor for rapidfuzz or the
importlib.metadata scan behind ``--version``.  ``LazyHandler`` and ``LazyCommands`` stand for a handler
and a registrar by their module's name; ``command_named`` tells which command a command line runs, so
that the parser registers that one whole and the others by name and one-line summary only (all that the
usage line, an "invalid choice" error and ``reasonmed --help`` show of them): with no command
(``--help``, ``--version``) no command's module is imported at all.
"""

from __future__ import annotations

import argparse
import importlib
from collections.abc import Callable, Sequence
from typing import Any


class LazyHandler:
    """``handler(args)`` of a module not imported until the command runs."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name

    def __call__(self, args: argparse.Namespace) -> Any:
        return getattr(importlib.import_module(self.module), self.name)(args)

    def __repr__(self) -> str:
        return f"LazyHandler({self.module}:{self.name})"


class LazyCommands:
    """A registrar (``module.register(subparsers)``) that adds the commands ``names``."""

    def __init__(self, names: tuple[str, ...], module: str, attr: str = "register") -> None:
        self.names, self.module, self.attr = names, module, attr

    def __call__(self, sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
        getattr(importlib.import_module(self.module), self.attr)(sub)

    def stand_in(self, sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
        """The commands by name and summary only (``summaries.py``), for a command line that runs another one
        or none: what the usage line, an "invalid choice" error and ``reasonmed --help`` show of them."""
        from reasonmed_async.commands.summaries import SUMMARIES

        for name in self.names:
            sub.add_parser(name, help=SUMMARIES[name])

    def __repr__(self) -> str:
        return f"LazyCommands({'/'.join(self.names)}: {self.module}.{self.attr})"


def command_named(argv: Sequence[str]) -> str | None:
    """The command ``argv`` runs, or None when the parser must be whole: the top-level options (``-h``,
    ``--version``) take no value and end the parsing, so a command line runs its first word, if any."""
    return argv[0] if argv and not argv[0].startswith("-") else None


class VersionAction(argparse._VersionAction):
    """``--version``, the version looked up (an importlib.metadata scan) only when it is asked for."""

    def __init__(self, option_strings: list[str], version: Callable[[], str], **kwargs: Any) -> None:
        super().__init__(option_strings, **kwargs)
        self._lookup = version

    def __call__(self, parser: argparse.ArgumentParser, namespace: argparse.Namespace, values: Any,
                 option_string: str | None = None) -> None:
        self.version = f"%(prog)s {self._lookup()}"
        super().__call__(parser, namespace, values, option_string)
