"""Retrieval on Milvus Lite with the real embedding model: dense, hybrid (dense + BM25), filters."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from config.settings import Settings, get_settings
from index.pipeline import run_ingest
from index.store import release
from retrieval.retriever import build_retriever, open_store, whole_ratios

FILES = {
    "en/faq/product_faq.md": """# Product FAQ

## Where does Milvus store data?

Milvus deals with two types of data, inserted data and metadata. Inserted data are stored in object storage
such as MinIO or S3; metadata live in etcd.

## Can I run Milvus on Windows?

You can install Milvus on Windows either by compiling from source code or from a binary package.
""",
    "en/reference/index.md": """# In-memory Index

## IVF_FLAT

IVF_FLAT divides vector data into nlist cluster units, then compares the target vector with the centre of
each cluster. The parameter nprobe sets how many clusters a search visits.

## Parameter zq7vx_knob

The zq7vx_knob parameter is reserved for internal experiments.
""",
    "en/userGuide/insert.md": """# Insert Entities

## Insert data

Organise the data as a list of dictionaries, one per entity, and call insert on the collection.
""",
}


@pytest.fixture
def indexed(tmp_path: Path) -> Settings:
    corpus = tmp_path / "corpus"
    for name, text in FILES.items():
        (corpus / name).parent.mkdir(parents=True, exist_ok=True)
        (corpus / name).write_text(text)
    settings = get_settings(data_dir_override=tmp_path / "data")
    run_ingest(settings, source=str(corpus), glob="**/*.md", progress=False)
    return settings


@pytest.fixture
def store(indexed: Settings):
    store = open_store(indexed)
    yield store
    release(indexed, store.client)


def headings(docs) -> list[str]:
    return [d.metadata["heading"] for d in docs]


def test_hybrid_fuses_bm25_with_dense(indexed: Settings, store) -> None:
    query = "zq7vx_knob"
    keyword_only = build_retriever(indexed, k=2, mode="hybrid", store=store)
    keyword_only.weights = (0.0, 1.0, 0.0)
    top = keyword_only.invoke(query)
    assert headings(top)[0] == "In-memory Index > Parameter zq7vx_knob"
    assert {d.metadata["mode"] for d in top} == {"hybrid"}

    hybrid = build_retriever(indexed, k=3, mode="hybrid", store=store).invoke("How is data stored in milvus?")
    assert headings(hybrid)[0] == "Product FAQ > Where does Milvus store data?"
    scores = [d.metadata["score"] for d in hybrid]
    assert scores == sorted(scores, reverse=True)
    assert max(scores) <= sum(indexed.hybrid_weight_triple) / (indexed.rrf_k + 1) + 1e-6  # RRF ranks (float32)


def test_hybrid_also_ranks_by_heading(indexed: Settings, store) -> None:
    headings_only = build_retriever(indexed, k=4, mode="hybrid", store=store)
    headings_only.weights = (0.0, 0.0, 1.0)
    docs = headings_only.invoke("Parameter zq7vx_knob")
    assert headings(docs)[0] == "In-memory Index > Parameter zq7vx_knob"
    assert all(d.metadata["mode"] == "hybrid" for d in docs)


def test_whole_ratio_weights_fuse_in_milvus_as_they_would_here(indexed: Settings, store) -> None:
    """The default 2,1 goes to Milvus as one call (dense sent twice); a ratio that is not whole is fused here,
    one search per list: the scores agree."""
    in_milvus = build_retriever(indexed, k=4, mode="hybrid", store=store)
    assert in_milvus.weights == (2.0, 1.0, 0.0)
    here = build_retriever(indexed, k=4, mode="hybrid", store=store)
    here.weights = (2.0, 1.0 + 1e-12, 0.0)
    for query in ("How is data stored in milvus?", "nlist nprobe", "zq7vx_knob"):
        ours = [(d.id, round(d.metadata["score"], 5)) for d in here.invoke(query)]
        theirs = [(d.id, round(d.metadata["score"], 5)) for d in in_milvus.invoke(query)]
        assert [score for _, score in ours] == [score for _, score in theirs]  # ties may come in any order
        assert all(dict(ours)[pk] == score for pk, score in theirs if pk in dict(ours))


@pytest.mark.parametrize(
    ("weights", "copies"),
    [
        ([2, 1], [2, 1]),
        ([1, 1, 1], [1, 1, 1]),
        ([0.5, 0.25], [2, 1]),
        ([1, 0.5, 0.3], None),
        ([4, 2, 1], None),
        ([1], None),
    ],
)
def test_whole_ratios(weights: list[float], copies: list[int] | None) -> None:
    assert whole_ratios([float(w) for w in weights]) == copies


def test_dense_mode_gives_cosine_scores(indexed: Settings, store) -> None:
    docs = build_retriever(indexed, k=2, mode="dense", store=store).invoke("How is data stored in milvus?")
    assert headings(docs)[0] == "Product FAQ > Where does Milvus store data?"
    assert all(d.metadata["mode"] == "dense" and 0 < d.metadata["score"] <= 1.0001 for d in docs)


def test_hybrid_is_the_default_mode(indexed: Settings, store) -> None:
    assert indexed.mode == "hybrid"
    docs = build_retriever(indexed, store=store).invoke("nprobe")
    assert docs[0].metadata["mode"] == "hybrid"
    assert docs[0].metadata["heading"] == "In-memory Index > IVF_FLAT"


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_filter_restricts_sources(indexed: Settings, store, mode: str) -> None:
    flt = 'source like "en/faq/%"'
    docs = build_retriever(indexed, k=5, mode=mode, filter=flt, store=store).invoke("index parameters nlist")
    assert docs and all(d.metadata["source"] == "en/faq/product_faq.md" for d in docs)
    unfiltered = build_retriever(indexed, k=5, mode=mode, store=store).invoke("index parameters nlist")
    assert unfiltered[0].metadata["source"] == "en/reference/index.md"


@pytest.mark.parametrize("mode", ["dense", "hybrid"])
def test_malformed_filter_is_one_clear_error(indexed: Settings, store, mode: str) -> None:
    retriever = build_retriever(indexed, k=2, mode=mode, filter="source like en/faq/%", store=store)
    with pytest.raises(ConfigError) as caught:
        retriever.invoke("where is data stored")
    message = str(caught.value)
    assert "source like en/faq/%" in message and "not a valid Milvus expression" in message
    assert 'source like "en/faq/%"' in message  # the fix shows a correct one


def test_bad_mode_and_weights_fail_before_loading_anything(tmp_path: Path, monkeypatch) -> None:
    settings = get_settings(data_dir_override=tmp_path / "nothing-here")
    with pytest.raises(ConfigError, match="unknown retrieval mode 'sparse'"):
        build_retriever(settings, mode="sparse")  # type: ignore[arg-type]
    monkeypatch.setenv("RAG_HYBRID_WEIGHTS", "1,x")
    with pytest.raises(ConfigError, match="RAG_HYBRID_WEIGHTS must be two or three numbers"):
        build_retriever(get_settings(data_dir_override=tmp_path / "nothing-here"))
    assert not (tmp_path / "nothing-here").exists()
