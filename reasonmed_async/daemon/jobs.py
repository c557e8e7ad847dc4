"""Jobs of the daemon: a question file submitted becomes a run; its progress, on demand."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from reasonmed_async.loaders.dedup import merge_duplicates
from reasonmed_async.loaders.dispatch import load_questions
from reasonmed_async.pipeline import Pipeline, file_digest
from reasonmed_async.store import queries


async def submit_file(pipeline: Pipeline, path: Path) -> str:
    """Validate the whole file (an ``InputError`` names file, line and field), then start its run."""
    questions = merge_duplicates(load_questions(path, limits=pipeline.config.input_limits())).questions
    return await pipeline.start_run(questions, str(path), file_digest(path), None, alongside=True)


async def job_status(pipeline: Pipeline, run_id: str) -> dict[str, Any] | None:
    store = pipeline.store
    run = await queries.run_info(store, run_id)
    if run is None:
        return None
    status, questions, input_path = run.status, run.questions, run.input_path
    pending = await queries.pending_deliveries(store, run_id)
    records = await queries.record_count(store, run_id)
    failed = await queries.failed_questions(store, run_id)
    if status == "running" and pending == 0:
        await store.finish_run(run_id)
        status = "finished"
    return {"job": run_id, "status": status, "input": Path(input_path).name, "questions": questions,
            "pending_deliveries": pending, "records": records, "failed_questions": failed}
