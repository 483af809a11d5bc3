"""Opening the store: the errors a user meets before any search."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from config.errors import IndexLockedError, NoIndexError, StoreError
from config.settings import get_settings
from index.store import open_client, open_vectorstore
from tests.support.net import free_port


def test_a_lite_folder_held_by_another_process_is_explained(tmp_path):
    settings = get_settings(data_dir_override=tmp_path / "data")
    settings.data_dir.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import sys, time
            from pymilvus import MilvusClient
            MilvusClient(uri={str(settings.milvus_lite_path)!r})
            print("ready", flush=True)
            time.sleep(60)
        """)],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(IndexLockedError) as err:
            open_client(settings)
        assert "in use by another process" in str(err.value)
        assert "RAG_DATA_DIR" in str(err.value)
    finally:
        holder.kill()
        holder.wait(10)


def test_a_server_uri_with_nothing_listening_is_one_clear_error_without_the_token(tmp_path):
    settings = get_settings(milvus_uri=f"http://127.0.0.1:{free_port()}", milvus_token="root:s3cret-token")
    with pytest.raises(StoreError) as err:
        open_client(settings)
    message = str(err.value)
    assert "cannot reach Milvus at http://127.0.0.1:" in message and "MILVUS_URI" in message
    assert "s3cret" not in message and "s3cret" not in repr(err.value)


def test_searching_before_any_ingest_says_how_to_build_the_index(tmp_path):
    from langchain_core.embeddings import DeterministicFakeEmbedding

    settings = get_settings(data_dir_override=tmp_path / "data")
    with pytest.raises(NoIndexError, match="python scripts/ingest.py"):
        open_vectorstore(settings, DeterministicFakeEmbedding(size=8), embedding_model="fake", dim=8)
