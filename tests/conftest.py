"""Fixtures shared by the end-to-end, crash-and-resume and CLI tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from e2e_support import PUBMEDQA


@pytest.fixture(scope="session")
def pubmedqa() -> Path:
    """The 1,000 real PubMedQA questions, read in place; the test is skipped where they are absent."""
    if not PUBMEDQA.is_file():
        pytest.skip(f"real PubMedQA questions not found at {PUBMEDQA}")
    return PUBMEDQA
