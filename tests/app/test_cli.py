"""The ``reasonmed`` command line: bad input, bad configuration, wrong database, and the tier table.

Cases that fail before any pipeline starts call ``reasonmed_async.cli.main`` in
process (stderr through ``capsys``); the ones that run the pipeline go through a
subprocess, as a user would.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from e2e_support import SIM_TOML, cli_env, query, run_cli, sim_config
from reasonmed_async.cli import main


def _q(n: int, **extra) -> dict:
    rec = {"id": f"q-{n}", "question": f"Which vitamin deficiency causes condition {n}?",
           "options": ["Vitamin A", "Vitamin C", "Vitamin D", "Vitamin K"], "answer": "B"}
    rec.update(extra)
    return {k: v for k, v in rec.items() if v is not None}


def _jsonl(*lines: dict | str) -> str:
    return "".join((ln if isinstance(ln, str) else json.dumps(ln)) + "\n" for ln in lines)


def _no_questions_ingested(db: Path) -> bool:
    if not db.exists():
        return True
    tables = {t for (t,) in query(db, "SELECT name FROM sqlite_master WHERE type='table'")}
    return "questions" not in tables or query(db, "SELECT COUNT(*) FROM questions") == [(0,)]


# -- bad input ---------------------------------------------------------------------------

BAD_JSONL = {
    # name: (file text, line, field or None, words the message must contain)
    "missing field": (_jsonl(_q(1), _q(2), _q(3, options=None)), 3, "options", ["missing"]),
    "answer not among options": (_jsonl(_q(1), _q(2, answer="E")), 2, "answer", ["'E'", "not among"]),
    "answer text not an option": (_jsonl(_q(1, answer="Vitamin B12")), 1, "answer", ["Vitamin B12"]),
    "duplicate id": (_jsonl(_q(1), _q(2), _q(3), _q(2)), 4, "id", ["duplicate", "'q-2'", "line 2"]),
    "broken JSON line": (_jsonl(_q(1), '{"id": "q-2", "question": "Broken?", "options": ["a", "b"', _q(3)),
                         2, None, ["invalid JSON"]),
}


@pytest.mark.parametrize("case", sorted(BAD_JSONL))
def test_bad_input_exits_2_naming_file_line_and_field(case, tmp_path, capsys):
    text, line, field, words = BAD_JSONL[case]
    path = tmp_path / "questions.jsonl"
    path.write_text(text, encoding="utf-8")
    db = tmp_path / "run.db"
    rc = main(["run", "--config", str(SIM_TOML), "--input", str(path), "--db", str(db)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert f"{path}:{line}:" in err, f"the message does not name the file and line {line}: {err!r}"
    if field is not None:
        assert f"field '{field}'" in err, f"the message does not name the field {field!r}: {err!r}"
    for word in words:
        assert word in err, err
    assert err.count("\n") == 1, f"one error line expected: {err!r}"
    assert _no_questions_ingested(db), "questions from a bad file were ingested"


def test_bad_record_in_json_list_names_the_record(tmp_path, capsys):
    path = tmp_path / "questions.json"
    path.write_text(json.dumps([_q(1), _q(2), {"question": "No options?", "answer": "A"}], indent=1),
                    encoding="utf-8")
    db = tmp_path / "run.db"
    rc = main(["run", "--config", str(SIM_TOML), "--input", str(path), "--db", str(db)])
    err = capsys.readouterr().err
    assert rc == 2
    assert f"{path}: record 3: field 'options': missing" in err, err
    assert _no_questions_ingested(db)


def test_bad_pubmedqa_record_names_the_pmid_and_field(tmp_path, capsys):
    good = {"QUESTION": "Is X associated with Y?", "CONTEXTS": ["Some abstract."], "final_decision": "yes"}
    bad = {**good, "final_decision": "perhaps"}
    path = tmp_path / "ori_pqal.json"
    path.write_text(json.dumps({"111": good, "222": bad}), encoding="utf-8")
    db = tmp_path / "run.db"
    rc = main(["run", "--config", str(SIM_TOML), "--input", str(path), "--db", str(db)])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(path) in err and "pmid 222" in err and "field 'final_decision'" in err and "perhaps" in err, err
    assert _no_questions_ingested(db)


def test_missing_input_file_exits_2(tmp_path, capsys):
    db = tmp_path / "run.db"
    rc = main(["run", "--config", str(SIM_TOML), "--input", str(tmp_path / "nope.jsonl"), "--db", str(db)])
    err = capsys.readouterr().err
    assert rc == 2 and "nope.jsonl" in err, err
    assert _no_questions_ingested(db)


# -- bad configuration ----------------------------------------------------------------------

BAD_CONFIG = {
    "unknown stage key": (sim_config().replace("[stages.verifier]\n", "[stages.verifier]\ntemprature = 0.5\n"),
                          ["[stages.verifier]", "temprature"]),
    "api_key in config": (sim_config(api_key='"sk-do-not-echo-0123456789"'), ["api_key", "api_key_env"]),
    "model on an unknown backend": (sim_config().replace('[models.qwen]\nbackend = "sim"',
                                                         '[models.qwen]\nbackend = "vllm-local"'),
                                    ["[models.qwen]", "vllm-local"]),
    "not TOML": ("[backends.sim\ntype = 'sim'\n", []),
    "gate not a flag": (sim_config().replace("self_contained = true", 'self_contained = "yes"'),
                        ["[gates] self_contained", "true or false"]),
    "scorer show_answer not a flag": (sim_config().replace("show_answer = false", "show_answer = 1"),
                                      ["[stages.scorer] show_answer"]),
    "a temperature for an o1-class deployment": (
        (Path(SIM_TOML).parent / "azure.toml").read_text().replace(
            'model = "o1-mini"         #', 'model = "o1-mini"\ntemperature = 0.7 #'),
        ["[stages.regenerator] temperature", "o1-class"]),
}


@pytest.mark.parametrize("case", sorted(BAD_CONFIG))
def test_bad_config_exits_2(case, tmp_path, capsys):
    text, words = BAD_CONFIG[case]
    config = tmp_path / "bad.toml"
    config.write_text(text, encoding="utf-8")
    db = tmp_path / "run.db"
    rc = main(["run", "--config", str(config), "--input", str(Path(SIM_TOML).parent / "questions.jsonl"),
               "--db", str(db)])
    err = capsys.readouterr().err
    assert rc == 2, err
    assert str(config) in err, err
    for word in words:
        assert word in err, err
    assert "sk-do-not-echo" not in err, "the key written in the config was echoed"
    assert not db.exists()


# Unknown keys are refused in [stages.*], [models.*], [flow], [tiers] and the sim
# backend, but silently ignored elsewhere: a typo there changes the run without a word.
MISSPELLED = {
    "stage table": sim_config() + '\n[stages.scorrer]\nmodel = "gpt-4o"\nrate = 0.5\n',
    "generation key": sim_config().replace("[generation]\n", "[generation]\ntemperature = [0.5]\n"),
    "concurrency key": sim_config().replace("[concurrency]", "[concurrency]\nverifer = 3"),
    "retry key": sim_config().replace("[retry]", "[retry]\nattempt = 1"),
    "gates key": sim_config().replace("[gates]", "[gates]\nself_contain = false"),
    "scorer key": sim_config().replace("show_answer = false", "show_answers = false"),
}


@pytest.mark.parametrize("case", sorted(MISSPELLED))
def test_misspelled_config_key_is_refused(case, tmp_path, capsys):
    config = tmp_path / "typo.toml"
    config.write_text(MISSPELLED[case], encoding="utf-8")
    db = tmp_path / "run.db"
    rc = main(["run", "--config", str(config), "--input", str(tmp_path / "missing.jsonl"), "--db", str(db)])
    err = capsys.readouterr().err
    assert rc == 2
    assert str(config) in err, f"a misspelled {case} was silently accepted: {err!r}"


# -- the database argument ----------------------------------------------------------------


@pytest.mark.parametrize("command", [["status"], ["export", "--out", "OUT"], ["resume"]])
def test_missing_db_exits_2_and_creates_nothing(command, tmp_path, capsys):
    db = tmp_path / "absent.db"
    argv = [command[0], "--db", str(db), *[str(tmp_path / a) if a == "OUT" else a for a in command[1:]]]
    rc = main(argv)
    err = capsys.readouterr().err
    assert rc == 2, err
    assert str(db) in err and "no such database" in err, err
    assert not db.exists()
    assert not (tmp_path / "OUT").exists()


def test_limit_below_one_exits_2(tmp_path, capsys):
    rc = main(["run", "--config", str(SIM_TOML), "--input", str(Path(SIM_TOML).parent / "questions.jsonl"),
               "--db", str(tmp_path / "run.db"), "--limit", "0"])
    assert rc == 2 and "--limit" in capsys.readouterr().err


# -- a finished database --------------------------------------------------------------------


@pytest.fixture(scope="module")
def finished_db(pubmedqa, tmp_path_factory) -> tuple[Path, list[str]]:
    root = tmp_path_factory.mktemp("cli-finished")
    db = root / "run.db"
    args = ["run", "--config", SIM_TOML, "--input", pubmedqa, "--db", db, "--limit", 8]
    r = run_cli(*args)
    assert r.returncode == 0, r.stderr
    return db, [str(a) for a in args]


def test_run_twice_on_finished_db_exits_2(finished_db):
    db, args = finished_db
    before = query(db, "SELECT COUNT(*) FROM messages")
    r = run_cli(*args)
    assert r.returncode == 2, r.stderr
    assert "finished" in r.stderr and "export" in r.stderr, r.stderr
    assert query(db, "SELECT COUNT(*) FROM messages") == before
    assert query(db, "SELECT status FROM runs") == [("finished",)]


def test_resume_on_finished_db_exits_2(finished_db, capsys):
    db, _ = finished_db
    rc = main(["resume", "--db", str(db)])
    err = capsys.readouterr().err
    assert rc == 2 and "no unfinished run" in err, err


def test_status_shows_the_tier_table(finished_db, capsys):
    db, _ = finished_db
    rc = main(["status", "--db", str(db)])
    out = capsys.readouterr().out
    assert rc == 0
    assert re.search(r"^run run-\w+: finished, 8 questions$", out, re.M), out
    assert re.search(r"^tier\s+questions\s+share$", out, re.M), out
    tiers = dict(query(db, "SELECT label, COUNT(*) FROM messages WHERE type='TierAssigned' GROUP BY label"))
    shown = {}
    for tier in ("easy", "medium", "difficult"):
        m = re.search(rf"^{tier}\s+(\d+)\s+([\d.]+)%$", out, re.M)
        assert m, f"no {tier} row in:\n{out}"
        shown[tier] = int(m.group(1))
    assert shown == {t: tiers.get(t, 0) for t in shown}
    assert sum(shown.values()) == 8
    assert re.search(r"^failed\s+0$", out, re.M), out
    (records,) = query(db, "SELECT COUNT(*) FROM records")[0]
    assert f"final records: {records}" in out
    assert re.search(r"^progress: 8 of 8 questions settled \(100\.0%\).*ETA done$", out, re.M), out
    assert re.search(r"^tokens: [\d,]+ \(projected [\d,]+\); cost: \$[\d.,]+ \(projected \$[\d.,]+\)$", out, re.M)


def test_status_watch_draws_until_the_run_is_finished(finished_db, capsys):
    db, _ = finished_db
    rc = main(["status", "--db", str(db), "--watch", "--every", "0.05"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "questions" in out and "ETA 0h00m00s" in out and "projected" in out


def test_export_of_finished_db(finished_db, tmp_path, capsys):
    db, _ = finished_db
    out = tmp_path / "export"
    rc = main(["export", "--db", str(db), "--out", str(out)])
    assert rc == 0, capsys.readouterr().err
    (records,) = query(db, "SELECT COUNT(*) FROM records")[0]
    for name in ("reasonmed.jsonl", "cotmed.jsonl", "responsemed.jsonl", "records.jsonl"):
        assert (out / name).read_text(encoding="utf-8").count("\n") == records
    captured = capsys.readouterr()
    failures = query(db, "SELECT COUNT(*) FROM messages WHERE type='StageFailed'")[0][0]
    # an empty set is not written (datasets cannot load an empty file), and the export says so
    assert (out / "failures.jsonl").exists() or "not written, having no rows: failures.jsonl" in captured.err
    assert (out / "manifest.json").exists()
    assert f"exported {records} records of 8 questions" in captured.out, (failures, captured)


def test_export_and_status_do_not_need_the_runs_environment(pubmedqa, tmp_path, monkeypatch, capsys):
    """A finished run's data is in the database: exporting it (or reading its status) in a shell
    without the variables its config interpolated must work."""
    config = tmp_path / "env.toml"
    config.write_text(sim_config(seed="${RM_TEST_SEED}"), encoding="utf-8")
    db = tmp_path / "run.db"
    r = run_cli("run", "--config", config, "--input", pubmedqa, "--db", db, "--limit", 2,
                env=cli_env(RM_TEST_SEED="7"))
    assert r.returncode == 0, r.stderr
    monkeypatch.delenv("RM_TEST_SEED", raising=False)
    rc = main(["export", "--db", str(db), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert rc == 0, f"export of a finished run needs the run's environment: {err}"
    rc = main(["status", "--db", str(db)])
    err = capsys.readouterr().err
    assert rc == 0, f"status of a finished run needs the run's environment: {err}"
