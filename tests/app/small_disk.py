"""``python tests/app/small_disk.py PAGES reasonmed ARGS...``: the CLI with a database that cannot grow
by more than PAGES pages (``PRAGMA max_page_count`` on the writer): SQLite itself then fails commits with
SQLITE_FULL, as on a full disk, without needing one."""

from __future__ import annotations

import sys

from reasonmed_async.store import checkpoint

_open = checkpoint.CheckpointStore.open.__func__  # type: ignore[attr-defined]


async def _small_open(cls, path, **kw):
    store = await _open(cls, path, **kw)
    async with store._db.execute("PRAGMA page_count") as cur:
        (pages,) = await cur.fetchone()
    await store._db.execute(f"PRAGMA max_page_count={pages + int(sys.argv[1])}")
    return store


checkpoint.CheckpointStore.open = classmethod(_small_open)  # type: ignore[method-assign]

if __name__ == "__main__":
    from reasonmed_async.cli import main

    sys.exit(main(sys.argv[2:]))
