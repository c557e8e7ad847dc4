"""Reads of the checkpoint schema live in the ``store/queries/`` package (and the journal), nowhere else."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_READ = re.compile(r"\bSELECT\b[^\"']*\bFROM\b")
_JOURNAL_AND_QUERIES = {"checkpoint.py", "sql.py", "writer.py", "merge.py", "opening.py", "integrity.py",
                        "reissue.py",  # merge: shard DBs; reissue: `reasonmed retry`'s journal surgery
                        "texts.py", "reading.py", "migration.py",  # the texts a row references; the v3 migration
                        "trained.py",  # the dictionaries a row is coded against (v7)
                        "names.py", "compacting.py",  # the codes of interned strings; the v8 migration
                        "join_writes.py"}  # the writer's side of the join


def test_schema_reads_only_in_the_store_room() -> None:
    offenders = []
    for package in ("bus", "agents", "reasonmed_async"):
        for path in sorted((ROOT / package).rglob("*.py")):
            if path.parent.name == "store" and path.name in _JOURNAL_AND_QUERIES:
                continue
            if path.parent.name == "queries" and path.parent.parent.name == "store":  # the queries package
                continue
            for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
                if _READ.search(line):
                    offenders.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not offenders, "read the schema through the reasonmed_async/store/queries package:\n" + "\n".join(offenders)
