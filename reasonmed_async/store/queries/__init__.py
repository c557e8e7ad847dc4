"""Every read of the checkpoint schema outside the journal, in one place.

The journal (``checkpoint.py`` and ``sql.py``) reads what the bus needs to
deliver; everything else that looks into the database — status, progress,
jobs, export, scoring, the pipeline's run bookkeeping, the CLI — asks one of
these functions (``runs``, ``outcomes``, ``journal``, ``report``: one module per
concept, every function re-exported here), so a schema change is made (and migrated) in one room.
Each function is one question about the database, answered from the store's
reader connection; none writes.
"""

from __future__ import annotations

from reasonmed_async.store.queries.runs import (  # noqa: F401
    RunInfo, runs, run_info, latest_config_text, unfinished_run_digests, run_span, last_activity, meta_value,
    meta_values, config_override,
)
from reasonmed_async.store.queries.outcomes import (  # noqa: F401
    delivery_counts, unsettled_questions, pending_deliveries, tier_counts, failed_deliveries,
    ranker_fallbacks, failed_questions, gate_counts, record_count, call_totals,
    call_events,
)
from reasonmed_async.store.queries.journal import (  # noqa: F401
    PAGE, questions_in_order, unsettled_pairs, export_plan, question_messages, messages_by_label, messages_at,
    rewrites_of, stage_failures, reissue_rounds, failure_count, stored_scores,
)
from reasonmed_async.store.queries.report import (  # noqa: F401
    Reader, schema_version, table_names, runs_in_full, question_count, messages_of_types, paid_call_times,
    all_scores, DECONTAM_META, contamination_counts, contaminated_questions,
)
