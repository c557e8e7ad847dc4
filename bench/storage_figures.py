"""What a checkpoint database holds against what it must hold: its bytes, the bytes of its unique texts, page fill,
and what zstd would make of the stored LLM text.  Read-only; run on a closed database.

- **unique text bytes**: every distinct question text (stem, options, context) and every distinct LLM
  completion text (CoTs, verdict JSON with its reason, rankings, rewrites, summaries / responses), UTF-8.
- **page fill**: bytes used ÷ bytes of pages, over every b-tree page (SQLite's ``dbstat``).
- **zstd**: each stored completion payload compressed on its own (level 3), on a sample: the ratio and the CPU
  per payload to compress and to decompress (``zstandard`` if installed; the figures are then ``None``).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import msgspec

from agents.llm import Completion
from bus import decode

ZSTD_SAMPLE = 2000


def _db_bytes(db: Path) -> int:
    return sum(p.stat().st_size for p in db.parent.glob(db.name + "*") if not p.name.endswith((".log", ".lock")))


def storage_figures(db: str | Path) -> dict:
    db = Path(db)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        questions: set[str] = set()
        for (payload,) in con.execute("SELECT payload FROM messages WHERE type='QuestionIngested'"):
            q = decode(payload).question
            questions.add("\x1f".join((q.stem, *q.options, q.context)))
        completion = msgspec.json.Decoder(Completion).decode
        texts: set[str] = set()
        payloads: list[bytes] = []
        for (payload,) in con.execute("SELECT payload FROM llm_cache"):
            c = completion(payload)
            texts.update(ch.text for ch in c.choices)
            if len(payloads) < ZSTD_SAMPLE:
                payloads.append(payload)
        used, total = con.execute("SELECT SUM(pgsize - unused), SUM(pgsize) FROM dbstat").fetchone()
        by_table = dict(con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 6"))
    finally:
        con.close()
    n = max(1, len(questions))
    unique = sum(len(t.encode()) for t in questions) + sum(len(t.encode()) for t in texts)
    size = _db_bytes(db)
    return {"db_bytes": size, "db_bytes_per_question": size / n, "unique_text_bytes": unique,
            "unique_text_bytes_per_question": unique / n, "db_over_unique_text": size / unique if unique else None,
            "page_fill": used / total if total else None, "bytes_by_table": by_table, "zstd": _zstd(payloads)}


def _zstd(payloads: list[bytes]) -> dict | None:
    try:
        import zstandard
    except ImportError:
        return None
    if not payloads:
        return None
    cctx, dctx = zstandard.ZstdCompressor(level=3), zstandard.ZstdDecompressor()
    t0 = time.process_time()
    packed = [cctx.compress(p) for p in payloads]
    t1 = time.process_time()
    for p in packed:
        dctx.decompress(p)
    t2 = time.process_time()
    raw, small = sum(map(len, payloads)), sum(map(len, packed))
    return {"version": zstandard.__version__, "level": 3, "sample": len(payloads), "ratio": raw / small,
            "compress_us_per_payload": (t1 - t0) * 1e6 / len(payloads),
            "decompress_us_per_payload": (t2 - t1) * 1e6 / len(payloads)}
