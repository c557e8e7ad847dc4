"""``reasonmed retry``: failed work becomes pending again, its failing calls re-issued as new samples.

``reissue`` works on the journal in one transaction (the caller holds no
pipeline; the owner lock keeps drivers out).  For each chosen ``StageFailed``:

* the delivery whose handling ended in it becomes pending again (fresh attempts);
* the failure and everything that followed from it is removed — for a path lost
  before tiering (generate / verify), also that path's item in the tierer's join
  and the question's tier outcome with all that followed, so the question is
  tiered again once the path has its verdict; a tier failure (too few verdicts)
  chooses the path failures that caused it;
* the calls behind it get a *retry round* in ``reissues`` (question, task, path):
  the LLM cache layer sends those requests with a new sample index (and
  ``--max-tokens`` if given), so the cache cannot replay the output that failed,
  while every other completed call is still answered from the cache.

Its runs become unfinished again, so driving them (``retry`` does it at once)
finishes them; the export then equals that of a run whose calls had succeeded
the first time (the sample index is never sent, so a deterministic server
answers the new sample as it would have answered the first).
"""

from __future__ import annotations

import sqlite3
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from bus import StageFailed

from reasonmed_async.store.names import PENDING, id_bytes
from reasonmed_async.store.reading import MESSAGE_COLUMNS, db_name, load_messages
from reasonmed_async.store.texts import Memo

FIRST_PASS = frozenset({"generate", "verify", "verifier"})
#: the LLM task (``ChatRequest.meta["task"]``) behind a failure of a stage or of a subscription; "*": any
_TASK = {"generate": "generate", "generator": "generate", "verify": "verify", "verifier": "verify",
         "reverify": "verify", "rank": "rank", "ranker": "rank", "refine": "refine", "refiner": "refine",
         "regenerate": "regenerate", "regenerator": "regenerate", "summarize": "summarize",
         "summarizer": "summarize"}


def task_of(stage: str) -> str:
    if stage.startswith("reverify-"):
        return "verify"
    return _TASK.get(stage, "*")


@dataclass
class Reissued:
    failures: int = 0
    questions: set[tuple[str, str]] = field(default_factory=set)
    runs: set[str] = field(default_factory=set)
    removed: int = 0

    def describe(self) -> str:
        return (f"{self.failures} failure(s) of {len(self.questions)} question(s) made pending again"
                f" ({self.removed} message(s) that followed from them removed)")


def _chosen(f: StageFailed, stage: str | None, kind: str | None, question: str | None) -> bool:
    if question is not None and f.question_id != question:
        return False
    if stage is not None and stage not in (str(f.stage), task_of(str(f.stage))):
        return False
    return kind is None or str(getattr(f, "kind", "")) == kind


def reissue(db: Path, *, stage: str | None = None, kind: str | None = None, question: str | None = None,
            max_tokens: int | None = None) -> Reissued:
    con = sqlite3.connect(db, isolation_level=None)
    try:
        con.execute("PRAGMA busy_timeout=10000")
        con.execute("BEGIN IMMEDIATE")
        try:
            done = _reissue(con, stage, kind, question, max_tokens)
        except BaseException:
            con.execute("ROLLBACK")
            raise
        con.execute("COMMIT")
        return done
    finally:
        con.close()


def _reissue(con: sqlite3.Connection, stage: str | None, kind: str | None, question: str | None,
             max_tokens: int | None) -> Reissued:
    by_question: dict[tuple[str, str], list[StageFailed]] = defaultdict(list)
    name = db_name(con)
    rows = load_messages(con, Memo(), name,  # damage: DamageError, exit 5
                         f"SELECT {MESSAGE_COLUMNS} FROM messages WHERE type='StageFailed' ORDER BY seq")
    for _, f in rows:
        if isinstance(f, StageFailed):
            by_question[(f.run_id, f.question_id)].append(f)
    done = Reissued()
    for (run, qid), failures in by_question.items():
        chosen = [f for f in failures if _chosen(f, stage, kind, question)]
        if any(str(f.stage) == "tier" for f in chosen):  # its cause: the paths that had no verdict
            chosen += [f for f in failures if str(f.stage) in FIRST_PASS and f not in chosen]
        if not chosen:
            continue
        roots = {f.id for f in chosen}
        lost_paths = [f.path for f in chosen if str(f.stage) in FIRST_PASS and f.path]
        rows = con.execute("SELECT id, parent_id, type, label FROM messages WHERE run_id=? AND question_id=?",
                           (run, qid)).fetchall()
        if lost_paths or any(str(f.stage) == "tier" for f in chosen):
            roots |= {mid for mid, _, type_, label in rows
                      if type_ == "TierAssigned" or (type_ == "StageFailed" and label == "tier")}
            con.executemany("DELETE FROM joins WHERE key=(SELECT code FROM names WHERE name=?)"
                            " AND item=(SELECT code FROM names WHERE name=?)",
                            [(f"tier/{run}/{qid}", p) for p in lost_paths])
        children: dict[str, list[str]] = defaultdict(list)
        for mid, parent, _, _ in rows:
            children[parent].append(mid)
        removed, todo = set(), list(roots)
        while todo:
            mid = todo.pop()
            if mid not in removed:
                removed.add(mid)
                todo.extend(children.get(mid, ()))
        for f in chosen:
            if f.parent_id and f.parent_id not in removed:
                con.execute(f"UPDATE delivery_rows SET state={PENDING}"
                            " WHERE message_seq=(SELECT seq FROM message_rows WHERE id=?)", (id_bytes(f.parent_id),))
            if str(f.stage) != "tier":
                con.execute(
                    "INSERT INTO reissues(question_id, task, path, round, max_tokens) VALUES (?,?,?,1,?)"
                    " ON CONFLICT DO UPDATE SET round=round+1, max_tokens=excluded.max_tokens",
                    (qid, task_of(str(f.stage)), f.path, max_tokens or 0))
        ids = [(id_bytes(m),) for m in removed]  # as v8 stores them (``names.py``)
        con.executemany("DELETE FROM delivery_rows WHERE message_seq=(SELECT seq FROM message_rows WHERE id=?)", ids)
        for table, column in (("record_rows", "message_id"), ("joins", "message_id"), ("message_rows", "id")):
            con.executemany(f"DELETE FROM {table} WHERE {column}=?", ids)
        con.execute("UPDATE runs SET status='running', finished_at=NULL WHERE id=?", (run,))
        done.failures += len(chosen)
        done.questions.add((run, qid))
        done.runs.add(run)
        done.removed += len(removed)
    return done

