"""``--export-lm-eval DIR``: the prompts and answers in a form lm-evaluation-harness users can cross-check.

Per benchmark, ``<benchmark>.jsonl`` holds one document a line — the exact prompt sent, the
choices, the gold index and letter, and this run's response and extractions — and
``<benchmark>.yaml`` an lm-eval (v0.4) task over that file: ``generate_until`` on ``prompt``,
target ``gold_letter``, the same simple-evals pattern as a regex filter, ``exact_match``.
Run ``lm_eval --tasks reasonmed_<benchmark> --include_path DIR`` from DIR (data files are relative).
"""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

from reasonmed_async.evaluate.runner import Answer

_YAML = """task: reasonmed_{name}
dataset_path: json
dataset_kwargs:
  data_files:
    test: {name}.jsonl
test_split: test
output_type: generate_until
doc_to_text: "{{{{prompt}}}}"
doc_to_target: "{{{{gold_letter}}}}"
generation_kwargs:
  until: []
  do_sample: false
  max_gen_toks: {max_tokens}
filter_list:
  - name: strict-match
    filter:
      - function: regex
        regex_pattern: "(?i)Answer[ \\\\t]*:[ \\\\t]*\\\\$?([A-J])\\\\$?"
        group_select: 0
      - function: take_first
metric_list:
  - metric: exact_match
    aggregation: mean
    higher_is_better: true
    ignore_case: true
"""


def file_name(benchmark: str) -> str:
    return benchmark.replace(":", "_")


def export(answers: list[Answer], out: Path, *, max_tokens: int) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    by: dict[str, list[Answer]] = defaultdict(list)
    for a in answers:
        by[a.item.benchmark].append(a)
    written = []
    for benchmark, group in sorted(by.items()):
        name = file_name(benchmark)
        with (out / f"{name}.jsonl").open("w", encoding="utf-8") as f:
            for i, a in enumerate(group):
                q = a.item.question
                f.write(json.dumps({"doc_id": i, "id": q.id, "benchmark": benchmark, "prompt": a.prompt,
                                    "choices": list(q.options), "gold": q.answer, "gold_letter": q.answer_letter,
                                    "response": a.text, "strict": a.strict, "lenient": a.lenient},
                                   ensure_ascii=False) + "\n")
        (out / f"{name}.yaml").write_text(_YAML.format(name=name, max_tokens=max_tokens), encoding="utf-8")
        written += [out / f"{name}.jsonl", out / f"{name}.yaml"]
    return written
