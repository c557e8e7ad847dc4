"""What a checkpoint database holds against what it must hold: its bytes, the bytes of its unique texts, page fill,
and what zstd would make of the stored LLM text.  Read-only; run on a closed database.

- **unique text bytes**: every distinct question text (stem, options, context) and every distinct LLM
  completion text (CoTs, verdict JSON with its reason, rankings, rewrites, summaries / responses), UTF-8.
- **page fill**: bytes used ÷ bytes of pages, over every b-tree page (SQLite's ``dbstat``).
- **stored texts**: the ``texts`` table (schema v3: each text and each repeated part of a message stored once),
  its rows and stored bytes by kind (v4: zstd frames where smaller, v6: structs as frames against the dictionary of
  shapes; both counted also under ``compressed_texts``).
- **zstd**: each stored text compressed on its own (level 3), on a sample: the ratio and the CPU per text to
  compress and to decompress (``zstandard`` if installed; the figures are then ``None``).
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import msgspec

from agents.llm import Completion
from reasonmed_async.store.integrity import CACHE_KEY
from reasonmed_async.store.reading import MESSAGE_COLUMNS, cached_payloads, load_messages
from reasonmed_async.store.packing import LEXICON, ZSTD, unpack
from reasonmed_async.store.texts import TREE, TEXT, Memo

ZSTD_SAMPLE = 2000


def _db_bytes(db: Path) -> int:
    """The database file and its write-ahead log (not ``<db>.log`` nor its rotated ``<db>.log.1``: until issue 13's
    sixth pass a glob counted the rotated log, 50 MB, as database bytes once a run had logged that much)."""
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


def storage_figures(db: str | Path) -> dict:
    db = Path(db)
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        questions: set[str] = set()
        memo = Memo()
        for _, m in load_messages(con, memo, db, f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE type='QuestionIngested'"):
            q = m.question  # type: ignore[attr-defined]
            questions.add("\x1f".join((q.stem, *q.options, q.context)))
        completion = msgspec.json.Decoder(Completion).decode
        texts: set[str] = set()
        rows = con.execute(f"SELECT {CACHE_KEY}, payload, checksum FROM llm_cache").fetchall()
        for start in range(0, len(rows), 1000):
            for _, payload in cached_payloads(con, memo, db, rows[start : start + 1000]):
                texts.update(ch.text for ch in completion(payload).choices)
        stored = {kind: (n, size) for kind, n, size in
                  con.execute("SELECT kind, COUNT(*), SUM(LENGTH(body)) FROM texts GROUP BY kind")}
        payloads = [unpack(kind, b, con)[1] for kind, b in  # the JSON of a sample of strings, as zstd would get it
                    con.execute("SELECT kind, body FROM texts WHERE kind & ? = 1 LIMIT ?", (~ZSTD, ZSTD_SAMPLE))]
        used, total = con.execute("SELECT SUM(pgsize - unused), SUM(pgsize) FROM dbstat").fetchone()
        by_table = dict(con.execute("SELECT name, SUM(pgsize) FROM dbstat GROUP BY name ORDER BY 2 DESC LIMIT 6"))
    finally:
        con.close()
    n = max(1, len(questions))
    unique = sum(len(t.encode()) for t in questions) + sum(len(t.encode()) for t in texts)
    size = _db_bytes(db)
    return {"db_bytes": size, "db_bytes_per_question": size / n, "unique_text_bytes": unique,
            "unique_text_bytes_per_question": unique / n, "db_over_unique_text": size / unique if unique else None,
            "page_fill": used / total if total else None, "bytes_by_table": by_table,
            "stored_texts": {name: [sum(stored.get(k, (0, 0))[i] for k in (kind, kind | ZSTD, kind | LEXICON))
                                    for i in (0, 1)] for name, kind in (("strings", TEXT), ("parts", TREE))},
            "compressed_texts": [sum(stored.get(k, (0, 0))[i] for k in (TEXT | ZSTD, TREE | ZSTD, TREE | LEXICON))
                                 for i in (0, 1)],
            "zstd": _zstd(payloads)}


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
            "raw_bytes": raw, "zstd_bytes": small,
            "compress_us_per_payload": (t1 - t0) * 1e6 / len(payloads),
            "decompress_us_per_payload": (t2 - t1) * 1e6 / len(payloads)}
