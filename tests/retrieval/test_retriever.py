"""Retrieval on Milvus Lite with the real embedding model: dense, hybrid (dense + BM25), filters."""

from __future__ import annotations

from pathlib import Path

import pytest

from config.errors import ConfigError
from config.settings import Settings, get_settings, whole_ratios
from index.pipeline import run_ingest
from index.store import release
from retrieval.retriever import MilvusRetriever, build_retriever, open_store

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
    keyword_only.weights = (0.0, 1.0)
    top = keyword_only.invoke(query)
    assert headings(top)[0] == "In-memory Index > Parameter zq7vx_knob"
    assert {d.metadata["mode"] for d in top} == {"hybrid"}

    hybrid = build_retriever(indexed, k=3, mode="hybrid", store=store).invoke("How is data stored in milvus?")
    assert headings(hybrid)[0] == "Product FAQ > Where does Milvus store data?"
    scores = [d.metadata["score"] for d in hybrid]
    assert scores == sorted(scores, reverse=True)
    assert max(scores) <= sum(indexed.hybrid_weight_pair) / (indexed.rrf_k + 1) + 1e-6  # RRF ranks (float32)


def test_weights_in_the_same_ratio_rank_alike_and_scale_the_scores(indexed: Settings, store) -> None:
    """0.5,0.25 is 2,1 for Milvus (dense sent twice, BM25 once): the same ranking, each score a quarter."""
    default = build_retriever(indexed, k=4, mode="hybrid", store=store)
    assert default.weights == (2.0, 1.0)
    halved = build_retriever(indexed, k=4, mode="hybrid", store=store)
    halved.weights = (0.5, 0.25)
    for query in ("How is data stored in milvus?", "nlist nprobe", "zq7vx_knob"):
        full = [(d.id, d.metadata["score"]) for d in default.invoke(query)]
        half = [(d.id, d.metadata["score"]) for d in halved.invoke(query)]
        assert [s for _, s in half] == pytest.approx([s / 4 for _, s in full], rel=1e-5)
        assert dict(half) == pytest.approx({pk: s / 4 for pk, s in full if pk in dict(half)}, rel=1e-5)


def test_weights_milvus_cannot_fuse_in_one_call_are_refused_when_set(indexed: Settings, store) -> None:
    retriever = build_retriever(indexed, k=2, mode="hybrid", store=store)
    with pytest.raises(ConfigError, match="not a whole-number ratio"):
        retriever.weights = (1.0, 0.7)
    with pytest.raises(ConfigError, match="not a whole-number ratio"):
        MilvusRetriever(store=store, mode="hybrid", weights=(7.0, 1.0))


@pytest.mark.parametrize(
    ("weights", "copies"),
    [
        ([2, 1], (2, 1)),
        ([1, 1], (1, 1)),
        ([0.5, 0.25], (2, 1)),
        ([0, 1], (0, 1)),
        ([1, 0.7], None),
        ([7, 1], None),
        ([0, 0], None),
        ([-1, 1], None),
    ],
)
def test_whole_ratios(weights: list[float], copies: tuple[int, ...] | None) -> None:
    assert whole_ratios([float(w) for w in weights]) == copies


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("2,1", (2.0, 1.0)),
        ("2,1,0", (2.0, 1.0)),  # a .env written for the previous default: its heading weight was 0
        (" 1 ; 1 ", (1.0, 1.0)),
    ],
)
def test_hybrid_weights_setting(value: str, expected: tuple[float, float], monkeypatch) -> None:
    monkeypatch.setenv("RAG_HYBRID_WEIGHTS", value)
    assert get_settings().hybrid_weight_pair == expected


@pytest.mark.parametrize(
    ("value", "problem", "fix"),
    [
        ("1,x", "must be two numbers 'dense,bm25'", "RAG_HYBRID_WEIGHTS=2,1"),
        ("2,1,1", "third number (the heading list's weight), which was removed", "RAG_HYBRID_WEIGHTS=2,1"),
        ("1,0.7", "'1,0.7' is not a whole-number ratio", "RAG_HYBRID_WEIGHTS=2,1"),
        ("0,0", "not both zero", "RAG_HYBRID_WEIGHTS=2,1"),
    ],
)
def test_bad_hybrid_weights_fail_when_settings_are_read(value: str, problem: str, fix: str, monkeypatch) -> None:
    monkeypatch.setenv("RAG_HYBRID_WEIGHTS", value)
    with pytest.raises(ConfigError) as caught:
        get_settings()
    assert problem in caught.value.problem and fix in caught.value.fix


def test_an_index_with_the_old_heading_vector_still_answers(tmp_path: Path) -> None:
    """Built by the previous version: searchable as it is, in both modes, until an ingest rebuilds it."""
    from langchain_core.embeddings import DeterministicFakeEmbedding

    from index.store import open_client, open_vectorstore
    from tests.index.legacy import create_legacy_collection, legacy_row

    settings = get_settings(data_dir_override=tmp_path / "data")
    embeddings = DeterministicFakeEmbedding(size=16)
    client = open_client(settings)
    try:
        create_legacy_collection(client, settings.collection, dim=16, embedding_model="fake-16")
        texts = ["Milvus stores inserted data in object storage", "nprobe sets how many clusters a search visits"]
        rows = [
            legacy_row(f"pk{i}", text, embeddings.embed_query(text), source=f"en/{i}.md", heading=f"H{i}")
            for i, text in enumerate(texts)
        ]
        client.insert(settings.collection, rows)
        store = open_vectorstore(settings, embeddings, embedding_model="fake-16", dim=16, client=client)
        for mode in ("dense", "hybrid"):
            docs = MilvusRetriever(store=store, k=2, mode=mode).invoke(texts[1])
            assert docs[0].page_content == texts[1] and {d.metadata["mode"] for d in docs} == {mode}
            assert all("heading_vector" not in d.metadata and "vector" not in d.metadata for d in docs)
    finally:
        release(settings, client)


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
    monkeypatch.setenv("RAG_HYBRID_WEIGHTS", "1,0.7")
    with pytest.raises(ConfigError, match="RAG_HYBRID_WEIGHTS '1,0.7' is not a whole-number ratio"):
        build_retriever(get_settings(data_dir_override=tmp_path / "nothing-here"))
    assert not (tmp_path / "nothing-here").exists()
