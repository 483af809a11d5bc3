"""The chain with its default retriever: the project's Milvus Lite index and the real embedding model."""

from __future__ import annotations

from pathlib import Path

import pytest
from langchain_core.runnables import Runnable

from chains import build_rag_chain
from config.errors import NoIndexError
from config.settings import Settings
from tests.support.openai_server import FakeDeepSeek

FAQ = """# Product FAQ

## Where does Milvus store data?

Milvus deals with two types of data, inserted data and metadata. Inserted data are stored in persistent \
storage as incremental log; Milvus supports MinIO, AWS S3 and Google Cloud Storage. Metadata live in etcd.

## What is the maximum vector dimension?

Milvus can manage vectors with up to 32,768 dimensions by default.
"""

OPERATIONAL = """# Operational FAQ

## Is there a Windows build?

You can install Milvus on Windows either by compiling from source code or from a binary package.
"""


@pytest.fixture
def indexed(tmp_path: Path, settings: Settings) -> Settings:
    from index.pipeline import run_ingest

    corpus = tmp_path / "corpus" / "en" / "faq"
    corpus.mkdir(parents=True)
    (corpus / "product_faq.md").write_text(FAQ)
    (corpus / "operational_faq.md").write_text(OPERATIONAL)
    run_ingest(settings, source=str(tmp_path / "corpus"), glob="en/faq/*.md", progress=False)
    return settings


def test_before_any_ingest_the_chain_says_how_to_build_the_index(settings: Settings) -> None:
    with pytest.raises(NoIndexError, match="scripts/ingest.py"):
        build_rag_chain(settings=settings)


def test_answers_from_the_milvus_index(openai_server: FakeDeepSeek, indexed: Settings) -> None:
    rag: Runnable = build_rag_chain(settings=indexed)
    result = rag.invoke({"question": "Where does Milvus store its data?"})

    top = result["sources"][0]
    assert top["source"] == "en/faq/product_faq.md"
    assert top["heading"] == "Product FAQ > Where does Milvus store data?"
    assert all(isinstance(s["score"], float) for s in result["sources"])
    assert len(result["sources"]) == indexed.k
    assert "[1]" in result["answer"]
    (request,) = openai_server.chat_requests()
    assert "etcd" in request.text("user")

    one = rag.invoke({"question": "Where does Milvus store its data?"}, config={"configurable": {"k": 1}})
    assert [s["heading"] for s in one["sources"]] == [top["heading"]]


def test_a_filter_per_call_reaches_milvus(openai_server: FakeDeepSeek, indexed: Settings) -> None:
    rag: Runnable = build_rag_chain(settings=indexed)
    question = {"question": "Where does Milvus store its data?"}
    only_ops = rag.invoke(question, config={"configurable": {"filter": 'source == "en/faq/operational_faq.md"'}})
    assert [s["source"] for s in only_ops["sources"]] == ["en/faq/operational_faq.md"]
    (request,) = openai_server.chat_requests()
    assert "etcd" not in request.text("user") and "Windows" in request.text("user")

    everything = rag.invoke(question)
    assert everything["sources"][0]["source"] == "en/faq/product_faq.md"
