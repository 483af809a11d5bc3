"""One pristine FAQ index per test module (built in-process, with its ingest record); every test that damages
an index damages its own copy."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.reliability.support import copy_index, rows


@pytest.fixture(scope="module")
def pristine_rows(faq_index: Path) -> int:
    found = rows(faq_index, ("pk",))
    assert found, "the FAQ index is empty"
    return len(found)


@pytest.fixture
def index_copy(faq_index: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the FAQ index that RAG_DATA_DIR points at, for this test alone."""
    data = copy_index(faq_index, tmp_path / "data")
    monkeypatch.setenv("RAG_DATA_DIR", str(data))
    return data
