"""The same ingest and search against a real Milvus server through MILVUS_URI (Milvus 2.3.5, no BM25)."""

from __future__ import annotations

import pytest

from config.settings import get_settings
from index.pipeline import run_ingest
from index.store import describe, open_client, release
from retrieval.retriever import build_retriever

pytestmark = pytest.mark.server

GOLD = "Milvus deals with two types of data"


def test_ingest_and_search_on_a_real_server(milvus_server_uri, docs_zip, monkeypatch):
    monkeypatch.setenv("MILVUS_URI", milvus_server_uri)
    monkeypatch.setenv("MILVUS_COLLECTION", "server_faq")
    settings = get_settings()
    first = run_ingest(settings, source=str(docs_zip), progress=False)
    assert first.files_read == 4 and first.chunks_added > 20

    again = run_ingest(settings, source=str(docs_zip), progress=False)
    assert (again.chunks_added, again.chunks_deleted, again.files_unchanged) == (0, 0, 4)

    client = open_client(settings)
    info = describe(client, settings.collection)
    release(settings, client)
    assert info is not None and not info.has_bm25  # 2.3 has no BM25 function

    retriever = build_retriever(settings, k=3, mode="dense")
    texts = [d.page_content for d in retriever.invoke("How is data stored in milvus?")]
    assert any(GOLD in t for t in texts)
    assert all(d.metadata["source"].startswith("en/faq/") for d in retriever.invoke("index types"))


def test_hybrid_on_a_server_without_bm25_falls_back_to_dense_with_one_warning(
    milvus_server_uri, docs_zip, monkeypatch, caplog
):
    monkeypatch.setenv("MILVUS_URI", milvus_server_uri)
    monkeypatch.setenv("MILVUS_COLLECTION", "server_fallback")
    settings = get_settings()
    assert settings.mode == "hybrid"
    run_ingest(settings, source=str(docs_zip), progress=False)

    with caplog.at_level("WARNING", logger="retrieval.retriever"):
        retriever = build_retriever(settings, k=3)
        first = retriever.invoke("How is data stored in milvus?")
        retriever.invoke("What is the maximum dimension of a vector?")
        build_retriever(settings, k=3).invoke("index types")
    assert any(GOLD in d.page_content for d in first)
    assert {d.metadata["mode"] for d in first} == {"dense"}
    warnings = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(warnings) == 1, warnings
    assert "no BM25" in warnings[0] and "falls back to dense" in warnings[0]

    filtered = build_retriever(settings, k=3, filter='source like "en/faq/product%"').invoke("index types")
    assert filtered and all(d.metadata["source"] == "en/faq/product_faq.md" for d in filtered)
