"""Jobs of the daemon: a question file submitted becomes a run (its state: ``job_events.py``)."""

from __future__ import annotations

from pathlib import Path

from reasonmed_async.loaders.dedup import merge_duplicates
from reasonmed_async.loaders.dispatch import load_questions
from reasonmed_async.pipeline import Pipeline, file_digest


async def submit_file(pipeline: Pipeline, path: Path) -> str:
    """Validate the whole file (an ``InputError`` names file, line and field), then start its run."""
    questions = merge_duplicates(load_questions(path, limits=pipeline.config.input_limits())).questions
    return await pipeline.start_run(questions, str(path), file_digest(path), None, alongside=True)
