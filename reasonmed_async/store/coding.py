"""The writer's coding of what it stores, against dictionaries it trains on the database's own rows (schema v7).

Until a role has its dictionary, rows are coded as v6 codes them: a string
piece as one plain zstd frame (``packing.py``), a message payload or a cached
completion against the fixed dictionary of shapes (``lexicon.py``); and each is
kept as a sample — of strings, only the texts of LLM completions (a run's first
strings are its questions' texts, ingested before any answer: a dictionary
trained on them coded the CoTs, verdicts and summaries that make most of the
strings half as well).  Once ``STRING_SAMPLES`` strings (or ``SAMPLE_BYTES`` of them)
are stored, the end of that transaction trains a ``DICT_BYTES`` zstd dictionary
on them (``zstandard.train_dictionary``: deterministic for the same samples),
stores it in ``dictionaries``, codes the samples again against it (each
``UPDATE`` only where the row still holds what was written: a seq a rolled-back
transaction gave can have been given again) and codes every later string
against it; likewise rows (message payloads and cached completions) after
``ROW_SAMPLES`` of the flow's rows (the intake's rows are no samples, for the same
reason).  Struct pieces stay with the shapes: trained on a run's first
rows, which lack its later kinds of struct, a dictionary coded them worse.

Crash safety: every transaction that writes a row coded against a dictionary
not yet known to be committed inserts that dictionary too (``INSERT OR
IGNORE``), so no committed row ever names a dictionary the database lacks,
whatever transaction rolls back or where a crash stops it.  On open, the
database's dictionaries are taken up again (a resumed run does not retrain).
The digests and checksums stay those of the JSON, as before.
"""

from __future__ import annotations

import sqlite3

import zstandard

from reasonmed_async.store import trained
from reasonmed_async.store.join_writes import JoinCounts
from reasonmed_async.store.lexicon import squeeze
from reasonmed_async.store.names import Names, RecentSeqs
from reasonmed_async.store.packing import MIN_BODY, MIN_SAVING, ZSTD, pack

STRING_SAMPLES = 1000  # strings stored before their dictionary is trained
ROW_SAMPLES = 2000  # message payloads and cached completions stored before theirs is
SAMPLE_BYTES = 4 << 20  # or once a role's samples reach this many bytes (long CoTs)
DICT_BYTES = 32 << 10
LEVEL = 3
ROW_SAVING = 4  # bytes a row's frame must save to be stored instead of the JSON (as ``lexicon.MIN_SAVING``)
_TEXT = 1  # texts.TEXT (not imported: texts imports the packing this module builds on)

_RECODE = {  # a sample coded again, where its row still holds what was first written
    "texts": "UPDATE texts SET kind=?, body=? WHERE digest=? AND body=?",
    "messages": "UPDATE message_rows SET payload=? WHERE seq=? AND payload=?",
    "llm_cache": "UPDATE llm_cache SET payload=? WHERE key=? AND payload=?",
}

Sample = tuple[str, object, bytes, bytes]  # (table, key, the bytes first stored, the JSON)


class Coder:
    """One writer connection's coder (used on its thread only).  ``*_samples``: when each role trains."""

    def __init__(self, string_samples: int | None = None, row_samples: int | None = None,
                 sample_bytes: int | None = None) -> None:
        self._wanted = {trained.STRINGS: string_samples or STRING_SAMPLES, trained.ROWS: row_samples or ROW_SAMPLES}
        self._sample_bytes = sample_bytes or SAMPLE_BYTES
        self._ctx: dict[int, zstandard.ZstdCompressor] = {}  # role -> compressor against its dictionary
        self._samples: dict[int, list[Sample]] = {trained.STRINGS: [], trained.ROWS: []}
        self._sampled = {trained.STRINGS: 0, trained.ROWS: 0}  # bytes
        self._unsaved: list[tuple[int, int, bytes, bytes]] = []  # (id, role, digest, body) not known committed
        self._answers: set[bytes] = set()  # this transaction's pieces that are texts of LLM completions
        self._started = False
        self.names = Names()  # the codes of the strings rows name (schema v8: ``names.py``)
        self.seqs = RecentSeqs()  # the seqs of the messages stored last: their children name them by seq (v8)
        self.joins = JoinCounts()  # how many items each join key has (store/join_writes.py)

    # -- coding -------------------------------------------------------------------
    def start(self, db: sqlite3.Connection) -> None:
        """Take up the dictionaries the database holds (once, on the first batch)."""
        if self._started:
            return
        self._started = True
        for role, ident in trained.load(db):
            if role in self._samples:
                self._use(role, trained.body_of(ident))

    def piece(self, key: bytes, kind: int, body: bytes) -> tuple[int, bytes]:
        """(stored kind, stored body) of a ``texts`` piece."""
        if kind != _TEXT:
            return pack(kind, body)
        ctx = self._ctx.get(trained.STRINGS)
        if ctx is None:
            stored = pack(kind, body)
            if key in self._answers:
                self._sample(trained.STRINGS, ("texts", key, stored[1], body))
            return stored
        if len(body) < MIN_BODY:
            return kind, body
        frame = ctx.compress(body)
        return (kind, body) if len(frame) + MIN_SAVING > len(body) else (kind | ZSTD, frame)

    def row(self, table: str, key: object, body: bytes, *, sample: bool = True) -> bytes:
        """What ``messages.payload`` / ``llm_cache.payload`` stores of ``body`` (JSON).  ``sample=False``: the
        intake's rows, no samples (with 2,000 questions or more a run's first 2,000 rows were all
        ``QuestionIngested``, and a dictionary trained on them coded verdicts 3.7 x worse than one trained on the
        flow's rows: 3,000 synthetic questions 2.75 -> 1.94 x the unique text)."""
        ctx = self._ctx.get(trained.ROWS)
        if ctx is None:
            stored = squeeze(body)
            if sample:
                self._sample(trained.ROWS, (table, key, stored, body))
            return stored
        frame = ctx.compress(body)
        return frame if len(frame) + ROW_SAVING <= len(body) else body

    def answers(self, keys: object) -> None:
        """``keys``: pieces split from LLM completions in this transaction (the strings sampled for training)."""
        if trained.STRINGS not in self._ctx:
            self._answers.update(keys)  # type: ignore[arg-type]

    def _sample(self, role: int, sample: Sample) -> None:
        samples = self._samples[role]
        if len(samples) < self._wanted[role] and self._sampled[role] < self._sample_bytes:
            samples.append(sample)
            self._sampled[role] += len(sample[3])

    # -- the end of a transaction ---------------------------------------------------
    def finish(self, db: sqlite3.Connection) -> None:
        """At the end of each transaction (inside it): train a role whose samples are in, code its samples again,
        and insert every dictionary not yet known to be committed."""
        self._answers.clear()
        for role, samples in self._samples.items():
            if role not in self._ctx and samples and (len(samples) >= self._wanted[role]
                                                       or self._sampled[role] >= self._sample_bytes):
                self._train(db, role, samples)
        if self._unsaved:
            db.executemany("INSERT OR IGNORE INTO dictionaries(id, role, digest, body) VALUES (?,?,?,?)",
                           self._unsaved)

    def transaction_ended(self, committed: bool) -> None:
        self.names.transaction_ended(committed)
        self.seqs.transaction_ended(committed)
        self.joins.transaction_ended(committed)
        if committed:
            self._unsaved.clear()

    def _train(self, db: sqlite3.Connection, role: int, samples: list[Sample]) -> None:
        self._samples[role] = []
        try:
            body = trained.train(DICT_BYTES, [s[3] for s in samples], LEVEL)
        except zstandard.ZstdError:  # too few or too alike to train on: stay as v6 codes (readable as ever)
            self._wanted[role] = 1 << 62
            return
        ident = trained.register(body)
        self._unsaved.append((ident, role, trained.dictionary_digest(body), body))
        self._use(role, body)
        updates: dict[str, list[tuple[object, ...]]] = {}
        for table, key, first, json in samples:
            if table == "texts":
                kind, stored = self.piece(key, _TEXT, json)  # type: ignore[arg-type]
                if stored != first:
                    updates.setdefault(table, []).append((kind, stored, key, first))
            elif (stored := self.row(table, key, json)) != first:
                updates.setdefault(table, []).append((stored, key, first))
        for table, rows in updates.items():
            db.executemany(_RECODE[table], rows)

    def _use(self, role: int, body: bytes) -> None:
        dictionary = zstandard.ZstdCompressionDict(body)
        dictionary.precompute_compress(level=LEVEL)
        self._ctx[role] = zstandard.ZstdCompressor(level=LEVEL, dict_data=dictionary, write_checksum=False,
                                                   write_content_size=True, write_dict_id=True)
