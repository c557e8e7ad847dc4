"""``reasonmed report --db PATH --out DIR``: report.html, report.json and one PNG + SVG per figure."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

from reasonmed_async.commands.summaries import SUMMARIES
from reasonmed_async.exit_codes import ExitCode
from reasonmed_async.reports.report.figures import MissingPlotting, draw_all
from reasonmed_async.reports.report.numbers import Source, collect
from reasonmed_async.reports.report.page import render
from reasonmed_async.reports.report.readonly import open_readonly

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = ExitCode.OK, ExitCode.INTERNAL, ExitCode.USAGE


async def build(db: Source) -> tuple[dict[str, Any], str, list[Any]]:
    """The numbers, the page and the figures of one database."""
    data = await collect(db)
    figures = await asyncio.to_thread(draw_all, data)  # CPU-bound: the daemon's loop keeps serving
    return data, render(data, figures), figures


def _write(path: Path, content: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(content)
    os.replace(tmp, path)


def write_report(out: Path, data: dict[str, Any], page: str, figures: list[Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    for f in figures:
        _write(out / f"{f.name}.png", f.png)
        _write(out / f"{f.name}.svg", f.svg.encode("utf-8"))
    _write(out / "report.json", (json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode())
    _write(out / "report.html", page.encode("utf-8"))
    return out / "report.html"


async def report_command(args: argparse.Namespace) -> int:
    out = Path(args.out)
    async with open_readonly(args.db) as db:
        try:
            data, page, figures = await build(db)
        except MissingPlotting as exc:
            print(f"reasonmed: error: {exc}", file=sys.stderr)
            return EXIT_USAGE
    try:
        path = write_report(out, data, page, figures)
    except OSError as exc:
        print(f"reasonmed: error: {out}: cannot write the report: {exc.strerror}", file=sys.stderr)
        return EXIT_FAILURE
    print(f"report: {path} ({len(figures)} figures; numbers in {out / 'report.json'})")
    return EXIT_OK


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("report", help=SUMMARIES["report"])
    p.add_argument("--db", required=True, help="checkpoint database (opened read-only)")
    p.add_argument("--out", required=True, help="directory for report.html, report.json and the figures")
    p.set_defaults(handler=report_command)
