"""Jobs of the daemon: a question file submitted becomes a run; its progress, on demand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reasonmed_async.loaders.dispatch import load_questions
from reasonmed_async.pipeline import Pipeline, file_digest


async def submit_file(pipeline: Pipeline, path: Path) -> str:
    """Validate the whole file (an ``InputError`` names file, line and field), then start its run."""
    questions = load_questions(path)
    return await pipeline.start_run(questions, str(path), file_digest(path), None, alongside=True)


async def job_status(pipeline: Pipeline, run_id: str) -> dict[str, Any] | None:
    store = pipeline.store
    rows = await store.query("SELECT status, questions, input_path FROM runs WHERE id=?", (run_id,))
    if not rows:
        return None
    status, questions, input_path = rows[0]
    (pending,) = (await store.query(
        "SELECT COUNT(*) FROM deliveries d JOIN messages m ON m.id = d.message_id"
        " WHERE d.state='pending' AND m.run_id=?", (run_id,)))[0]
    (records,) = (await store.query("SELECT COUNT(*) FROM records WHERE run_id=?", (run_id,)))[0]
    (failed,) = (await store.query(
        "SELECT COUNT(DISTINCT question_id) FROM messages WHERE run_id=? AND type='StageFailed'"
        " AND label NOT IN ('generate','verify')", (run_id,)))[0]
    if status == "running" and pending == 0:
        await store.finish_run(run_id)
        status = "finished"
    return {"job": run_id, "status": status, "input": Path(input_path).name, "questions": questions,
            "pending_deliveries": pending, "records": records, "failed_questions": failed}
