"""``resume --config``: a run started with a wrong URL is finished with a corrected file, not started over.

The CLI runs as a subprocess against the fake server on 127.0.0.1; the export is compared byte for byte
with that of a clean run started with the right URL (the same run id: a URL is not the run's identity)."""

from __future__ import annotations

from pathlib import Path

import pytest

from fake_llm_server import FakeLLMServer
from retry_support import KEY, QUESTIONS, cli, config, db_rows, env, export_files

pytestmark = pytest.mark.slow


def _variant(cfg: Path, name: str, url: str, *extra: tuple[str, str]) -> Path:
    """``cfg`` with its base URL written out (``url``) and ``extra`` edits; the file is ``name``."""
    text = cfg.read_text(encoding="utf-8").replace('"${REASONMED_OPENAI_BASE_URL:-http://127.0.0.1:8000/v1}"',
                                                   f'"{url}"')
    for old, new in extra:
        assert old in text, old
        text = text.replace(old, new, 1)
    path = cfg.with_name(name)
    path.write_text(text, encoding="utf-8")
    return path


async def test_wrong_url_then_resume_with_a_corrected_config_finishes_identical(tmp_path):
    base = config(tmp_path, grace_s=1)
    async with FakeLLMServer(api_key=KEY) as server:
        fixed = _variant(base, "fixed.toml", server.openai_url)
        wrong = _variant(base, "wrong.toml", server.openai_url.replace("/v1", "/wrong/v1"))
        sampling = _variant(base, "other-sampling.toml", server.openai_url, ("temperature = 1.0", "temperature = 0.3"))
        capped = _variant(base, "fixed-capped.toml", server.openai_url, ("[store]", "[budget]\nmax_tokens = 4000\n\n[store]"))
        db_clean, out_clean = tmp_path / "clean.db", tmp_path / "clean"
        rc, _, err = await cli("run", "--config", str(fixed), "--input", str(QUESTIONS), "--db", str(db_clean),
                               "--limit", "6", environ=env(server))
        assert rc == 0, err
        assert (await cli("export", "--db", str(db_clean), "--out", str(out_clean), environ=env(server)))[0] == 0

        db, out = tmp_path / "wrong.db", tmp_path / "wrong"
        rc, _, err = await cli("run", "--config", str(wrong), "--input", str(QUESTIONS), "--db", str(db),
                               "--limit", "6", "--no-preflight", environ=env(server), guard_s=60)
        assert rc == 4, err
        assert "circuit open" in err and "/wrong/v1" in err and "HTTP 404" in err, err
        assert db_rows(db, "SELECT COUNT(*) FROM deliveries WHERE state='failed'") == [(0,)]

        rc, _, err = await cli("run", "--config", str(fixed), "--input", str(QUESTIONS), "--db", str(db),
                               "--limit", "6", environ=env(server))
        assert rc == 2 and "the unfinished run" in err and "same input" in err and "--config FILE" in err, err

        rc, _, err = await cli("resume", "--db", str(db), environ=env(server), guard_s=60)
        assert rc == 2 and "/wrong/v1" in err and "HTTP 404" in err and "Traceback" not in err, err  # still wrong

        sent = len(server.requests)
        rc, _, err = await cli("resume", "--db", str(db), "--config", str(sampling), environ=env(server))
        lines = [line for line in err.splitlines() if line.strip()]
        assert rc == 2 and len(lines) == 1, err
        assert "other-sampling.toml: stages.verifier.temperature (1.0 -> 0.3)" in lines[0], err
        assert "would change the data" in lines[0] and "Traceback" not in err
        assert len(server.requests) == sent, "a refused correction sends nothing"

        rc, _, err = await cli("resume", "--db", str(db), "--config", str(capped), environ=env(server))
        assert rc == 4 and "spend cap reached" in err, err  # the corrected file's own [budget] stopped it

        rc, _, err = await cli("resume", "--db", str(db), "--max-tokens", "100000000", environ=env(server))
        assert rc == 0, err  # no --config: the stored correction (the right URL) is used again
        assert "corrected config stored by `resume --config`" in err, err
        assert (await cli("export", "--db", str(db), "--out", str(out), environ=env(server)))[0] == 0

    assert db_rows(db, "SELECT id, config_digest FROM runs") == db_rows(db_clean, "SELECT id, config_digest FROM runs")
    assert "/wrong/v1" in db_rows(db, "SELECT config_json FROM runs")[0][0], "the run's own config is never rewritten"
    assert db_rows(db, "SELECT COUNT(*) FROM deliveries WHERE state='failed'") == [(0,)]
    assert export_files(out) == export_files(out_clean)
