"""A database written before issue 12's fields existed still decodes, resumes and exports.

The new fields (judge provenance, the generator of each judged path, rewrite inputs, gates, record
warnings) all have defaults, so the message schema stays v1: an old payload decodes with them empty, and
the export reads the model, temperature and stated answer of each of the nine paths from the first-pass
verdicts (the judge it never recorded stays null).  The test writes a real run, strips the new fields from every stored payload (the
shape the previous build wrote), and exports again.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import Counter
from pathlib import Path
from typing import Any

from bus import SCHEMA_VERSION
from e2e_support import read_jsonl, sim_config
from reasonmed_async.config import parse_config
from reasonmed_async.loaders.dispatch import load_questions
from reasonmed_async.pipeline import Pipeline, file_digest
from reasonmed_async.reports.export import export
from reasonmed_async.store.checkpoint import CheckpointStore
from reasonmed_async.store.reading import MESSAGE_COLUMNS, stored_skeleton
from reasonmed_async.store.integrity import row_checksum
from reasonmed_async.store.splitting import split_envelope
from reasonmed_async.store.texts import Memo, Rehydrator, store_pieces

NEW_JUDGEMENT_KEYS = ("model", "temperature", "stated_answer", "judge")
NEW_MESSAGE_KEYS = ("judge", "gate", "steps", "warnings")


def old_shape(value: Any, *, in_message: bool = False) -> Any:
    """The payload as the previous build wrote it: none of the new keys."""
    if isinstance(value, list):
        return [old_shape(v) for v in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, v in value.items():
        if key == "rewrites" or (in_message and key in NEW_MESSAGE_KEYS):
            continue
        if in_message and key == "provenance" and value.get("type") == "Ranked":
            continue
        if key in ("judgements", "error_reasons"):
            v = [{k: x for k, x in j.items() if k not in NEW_JUDGEMENT_KEYS} for j in v]
        out[key] = old_shape(v, in_message=key == "m")
    return out


def test_an_old_database_exports_the_nine_paths(pubmedqa, tmp_path: Path) -> None:
    questions = load_questions(pubmedqa, limit=8)
    config = parse_config(sim_config(), source="compat.toml")
    db = tmp_path / "run.db"

    async def run() -> None:
        async with Pipeline.open(config, db) as pipeline:
            await pipeline.start_run(questions, str(pubmedqa), file_digest(pubmedqa), 8)
            assert await pipeline.drive()

    asyncio.run(run())
    con = sqlite3.connect(db)
    stripped = 0
    texts = Rehydrator(con, Memo(), db)
    for seq, *row in con.execute(f"SELECT seq, {MESSAGE_COLUMNS} FROM messages").fetchall():
        mid = row[0]
        (full,) = texts.json_of([stored_skeleton(row)], [mid])
        envelope = json.loads(full)
        old = {"v": envelope["v"], "m": old_shape(envelope["m"], in_message=True)}
        assert old["v"] == SCHEMA_VERSION
        stripped += old != envelope
        pieces: dict = {}  # stored as this build stores any payload: its skeleton and its texts
        data = split_envelope(old, pieces)
        store_pieces(con, pieces)
        con.execute("UPDATE message_rows SET payload=?, checksum=? WHERE seq=?", (data, row_checksum(mid, data), seq))
    con.commit()
    con.close()
    assert stripped > 0

    async def export_old() -> None:
        async with await CheckpointStore.open(db) as store:
            rows = await store.load(f"SELECT {MESSAGE_COLUMNS} FROM messages"
                                    " WHERE type='TierAssigned' LIMIT 1")
            judged = rows[0][1].judgements  # type: ignore[attr-defined]
            assert judged and all(j.model == "" and j.judge is None for j in judged)
            await export(store, tmp_path / "export", parquet=False)

    asyncio.run(export_old())
    records = read_jsonl(tmp_path / "export" / "records.jsonl")
    assert records
    for r in records:
        assert len(r["verdicts"]) == 9
        with_verdict = [p for p in r["verdicts"] if p["verdict"]]
        assert Counter(p["temperature"] for p in with_verdict) <= Counter({0.7: 3, 0.9: 3, 1.0: 3})
        assert all(p["model"] in {g.model for g in config.flow.generators} for p in with_verdict)
        assert all(p["judge"] is None for p in with_verdict)  # the previous build never recorded the judge
        assert r["rewrites"] == [] and r["warnings"] == [] and r["steps"] == 0
