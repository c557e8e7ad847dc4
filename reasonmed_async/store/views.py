"""The views every reader reads the compact rows of schema v8 through (``names.py``): v7's tables, column for column.

``messages`` over ``message_rows``, ``deliveries`` over ``delivery_rows``, ``records``
over ``record_rows``: each code given back as its name, each id as its hex, a state
as its word, a time in seconds.  LEFT JOINs: a row whose code names no name (damage)
is still read, with NULL there, and its checksum (messages) finds it.  A message row names its parent by
the parent's seq (its id's bytes where the parent is not stored: never, in a run), so a child's checksum, which
covers its parent's id, also fails where its parent's id was damaged.  The writer
writes the rows; a hot read that filters on a code (the pending deliveries of a
consumer) asks the rows, so SQLite uses their indexes.
"""

from __future__ import annotations

from reasonmed_async.store.names import id_text

#: the partial index over what is still to be delivered (state 0: ``names.STATES``)
DELIVERY_ROWS_INDEXES = """
CREATE INDEX IF NOT EXISTS delivery_rows_pending ON delivery_rows (consumer, message_seq) WHERE state = 0;
"""

MESSAGES_VIEW = f"""
CREATE VIEW IF NOT EXISTS messages AS SELECT
    r.seq AS seq, {id_text('r.id')} AS id, nr.name AS run_id, nq.name AS question_id, nt.name AS type,
    nl.name AS label, CASE typeof(r.parent) WHEN 'integer' THEN (SELECT {id_text('p.id')} FROM message_rows p
        WHERE p.seq = r.parent) ELSE {id_text('r.parent')} END AS parent_id, r.schema_version AS schema_version, r.payload AS payload,
    r.created_ms / 1000.0 AS created_at, r.checksum AS checksum
FROM message_rows r LEFT JOIN names nr ON nr.code = r.run LEFT JOIN names nq ON nq.code = r.question
    LEFT JOIN names nt ON nt.code = r.type LEFT JOIN names nl ON nl.code = r.label;
"""

DELIVERIES_VIEW = """
CREATE VIEW IF NOT EXISTS deliveries AS SELECT
    d.message_seq AS message_seq, nc.name AS consumer,
    CASE d.state WHEN 0 THEN 'pending' WHEN 1 THEN 'done' WHEN 2 THEN 'failed' ELSE d.state END AS state,
    d.intake AS intake
FROM delivery_rows d LEFT JOIN names nc ON nc.code = d.consumer;
"""

RECORDS_VIEW = f"""
CREATE VIEW IF NOT EXISTS records AS SELECT
    coalesce(r.record_id, nq.name || '/' || np.name) AS record_id, nr.name AS run_id, nq.name AS question_id,
    r.ordinal AS ordinal, np.name AS path, {id_text('r.message_id')} AS message_id
FROM record_rows r LEFT JOIN names nr ON nr.code = r.run LEFT JOIN names nq ON nq.code = r.question
    LEFT JOIN names np ON np.code = r.path;
"""

VIEWS = MESSAGES_VIEW + DELIVERIES_VIEW + RECORDS_VIEW
