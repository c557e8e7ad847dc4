"""bench/flow_cpu.py runs the real flow to its end on its in-memory journal: every question's paths
generated and judged, tiered, and records made, as the pipeline makes them."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "bench"))

import flow_cpu  # noqa: E402

from bus import CoTGenerated, RecordReady, TierAssigned, Verdict  # noqa: E402


def test_the_flow_bench_runs_every_question_to_its_records(pubmedqa):
    result, journal = asyncio.run(flow_cpu.run(str(ROOT / "examples" / "sim.toml"), str(pubmedqa), 4))
    messages = [r.message for _, r, _ in journal.rows]
    kinds = Counter(type(m) for m in messages)
    assert 4 * 8 <= kinds[CoTGenerated] <= 4 * 9  # a path may be cut at the token limit
    assert kinds[Verdict] >= kinds[CoTGenerated] - 2  # a judge's answer may stay unparseable
    assert {m.question_id for m in messages if isinstance(m, TierAssigned)} == \
        {m.question_id for m in messages if isinstance(m, RecordReady)} and kinds[RecordReady] >= 4
    assert result["messages"] == len(messages) and result["llm_calls"] >= kinds[CoTGenerated] + kinds[Verdict]
