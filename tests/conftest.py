"""Every test runs with its own HOME and XDG folders and none of the user's project settings.

The exported embedding model lives in one cache folder per test session so it is built once.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest_plugins = ["tests.support.openai_server"]

REPO = Path(__file__).resolve().parents[1]
DOCS_ZIP = (REPO.parent / "shared" / "data" / "milvus_docs_2.4.x_en.zip").resolve()

_PREFIXES = ("DEEPSEEK_", "MILVUS_", "RAG_", "LANGSMITH_", "LANGCHAIN_", "OPENAI_", "ZILLIZ_")


@pytest.fixture(scope="session")
def model_cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("model-cache")


@pytest.fixture(autouse=True)
def isolated_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, model_cache_dir: Path
) -> Iterator[Path]:
    home = tmp_path / "home"
    home.mkdir()
    for name in list(os.environ):
        if name.startswith(_PREFIXES):
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("RAG_CACHE_DIR", str(model_cache_dir))
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.chdir(tmp_path)
    yield home


@pytest.fixture(scope="session")
def docs_zip() -> Path:
    if not DOCS_ZIP.is_file():
        pytest.fail(f"the Milvus docs zip is expected at {DOCS_ZIP} (shared/ beside the repository)")
    return DOCS_ZIP


@pytest.fixture(scope="module")
def faq_index(tmp_path_factory: pytest.TempPathFactory, docs_zip: Path, model_cache_dir: Path) -> Path:
    """A Milvus Lite folder holding the FAQ index, built once per test module that asks for it."""
    from config.settings import get_settings
    from index.pipeline import run_ingest

    data = tmp_path_factory.mktemp("faq-index")
    settings = get_settings(data_dir_override=data, cache_dir_override=model_cache_dir)
    run_ingest(settings, source=str(docs_zip), progress=False)
    return data


@pytest.fixture(scope="session")
def milvus_server_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real standalone Milvus 2.3.5 (PyPI package `milvus`) on 127.0.0.1, shared by the session's tests."""
    from tests.support.milvus_server import start_milvus_server

    with start_milvus_server(tmp_path_factory.mktemp("milvus-server")) as uri:
        yield uri
