"""The spend cap: the run stops resumably (exit 4) with the figure; a resume with a raised cap finishes."""

from __future__ import annotations

import json

from e2e_support import ROOT, query, run_cli, sim_config

QUESTIONS = ROOT / "examples" / "questions.jsonl"


def test_spend_cap_stops_the_run_resumably_and_a_raised_cap_finishes_it(tmp_path):
    clean = tmp_path / "clean.db"
    assert run_cli("run", "--config", ROOT / "examples" / "sim.toml", "--input", QUESTIONS, "--db", clean,
                   "--limit", 12).returncode in (0, 3)
    full_cost = json.loads(run_cli("status", "--db", clean, "--json").stdout)["cost_usd"]
    assert full_cost > 0
    config = tmp_path / "capped.toml"
    text = sim_config().replace("\n[budget]", f"\n[budget]\nmax_cost_usd = {full_cost / 3:.6f}", 1)
    config.write_text(text.replace("grace_s = 30", "grace_s = 2"), encoding="utf-8")
    db = tmp_path / "capped.db"
    r = run_cli("run", "--config", config, "--input", QUESTIONS, "--db", db, "--limit", 12, timeout=120)
    assert r.returncode == 4, r.stdout + r.stderr
    assert "spend cap reached" in r.stdout and f"max_cost_usd ${full_cost / 3:,.4f}" in r.stdout
    assert "reasonmed resume --max-cost-usd N --db" in r.stdout
    assert query(db, "SELECT status FROM runs") == [("running",)]
    assert query(db, "SELECT COUNT(*) FROM deliveries WHERE state='pending'")[0][0] > 0  # left, not failed
    spent = json.loads(run_cli("status", "--db", db, "--json").stdout)["cost_usd"]
    assert full_cost / 3 <= spent < full_cost
    again = run_cli("resume", "--db", db, timeout=120)
    assert again.returncode == 4 and "spend cap reached" in again.stdout  # the cap still holds
    r = run_cli("resume", "--db", db, "--max-cost-usd", f"{full_cost * 2:.6f}", timeout=120)
    assert r.returncode in (0, 3), r.stdout + r.stderr
    assert query(db, "SELECT status FROM runs") == [("finished",)]
    assert run_cli("export", "--db", db, "--out", tmp_path / "a").returncode == 0
    assert run_cli("export", "--db", clean, "--out", tmp_path / "b").returncode == 0
    for name in ("reasonmed", "cotmed", "responsemed"):  # (records carry the run id, which the config changes)
        assert (tmp_path / "a" / f"{name}.jsonl").read_bytes() == (tmp_path / "b" / f"{name}.jsonl").read_bytes()
