"""The optional reranker (RAG_RERANKER): structure, ordering, its trace step and its errors, with a tiny
cross-encoder the tests write (random weights: no PyPI package ships reranker weights, so quality is measured
only where real ones exist)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_core.tracers.context import collect_runs

from config.errors import ConfigError, EmbeddingModelError, RagError
from config.settings import Settings, get_settings
from index.pipeline import run_ingest
from index.store import release
from retrieval.rerank import load_reranker, parse_reranker, rerank
from retrieval.retriever import build_retriever, open_store
from tests.embeddings.tiny_models import tiny_cross_encoder
from tests.support.hf_server import FakeHub
from tests.support.net import free_port

QUESTION = "Where does Milvus store inserted data?"
PASSAGES = [
    "Inserted data are stored in object storage such as MinIO or S3.",
    "IVF_FLAT divides vector data into nlist cluster units.",
    "You can install Milvus on Windows from a binary package.",
    "Metadata live in etcd.",
    "Call insert on the collection with a list of dictionaries.",
    "The parameter nprobe sets how many clusters a search visits.",
]
CORPUS = {
    "en/faq/product_faq.md": "# Product FAQ\n\n## Where does Milvus store data?\n\n"
    + PASSAGES[0]
    + " "
    + PASSAGES[3]
    + "\n\n## Can I run Milvus on Windows?\n\n"
    + PASSAGES[2]
    + "\n",
    "en/reference/index.md": "# In-memory Index\n\n## IVF_FLAT\n\n" + PASSAGES[1] + " " + PASSAGES[5] + "\n",
    "en/userGuide/insert.md": "# Insert Entities\n\n## Insert data\n\n" + PASSAGES[4] + "\n",
}


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return load_reranker(str(tiny_cross_encoder(tmp_path_factory.mktemp("reranker") / "tiny-cross-encoder")))


def _own_scores(function: Any, texts: list[str]) -> list[float]:
    """The cross-encoder's score for each passage, asked one pair at a time."""
    return [float(function.model.predict([(QUESTION, t)])[0]) for t in texts]


def test_rerank_keeps_the_best_k_by_the_cross_encoder(cross_encoder: Any) -> None:
    docs = [Document(p, metadata={"source": f"doc{i}.md", "score": 0.5 - i / 100}) for i, p in enumerate(PASSAGES)]
    out = rerank(cross_encoder, QUESTION, docs, k=3)
    own = dict(zip(PASSAGES, _own_scores(cross_encoder, PASSAGES), strict=True))
    assert len(out) == 3
    assert [d.page_content for d in out] == sorted(PASSAGES, key=lambda p: -own[p])[:3]
    for doc in out:
        assert doc.metadata["score"] == pytest.approx(own[doc.page_content], abs=1e-5)
        assert doc.metadata["score_stage"] == "rerank"
        original = next(d for d in docs if d.page_content == doc.page_content)
        assert doc.metadata["retrieval_score"] == original.metadata["score"]
        assert doc.metadata["source"] == original.metadata["source"]
    assert rerank(cross_encoder, QUESTION, [], k=3) == []


@pytest.fixture(scope="module")
def indexed(tmp_path_factory: pytest.TempPathFactory, model_cache_dir: Path) -> Settings:
    root = tmp_path_factory.mktemp("rerank-index")
    for name, text in CORPUS.items():
        (root / "corpus" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "corpus" / name).write_text(text)
    settings = get_settings(data_dir_override=root / "data", cache_dir_override=model_cache_dir)
    run_ingest(settings, source=str(root / "corpus"), glob="**/*.md", progress=False)
    return settings


def test_the_retriever_reranks_its_fused_candidates_in_a_step_named_rerank(
    indexed: Settings, cross_encoder: Any
) -> None:
    store = open_store(indexed)
    try:
        plain = build_retriever(indexed, k=2, mode="hybrid", store=store)
        assert plain.reranker is None  # off by default
        candidates = plain.model_copy(update={"k": 10}).invoke(QUESTION)
        with collect_runs() as runs:
            reranked = plain.model_copy(update={"reranker": cross_encoder, "rerank_candidates": 10}).invoke(QUESTION)
        assert len(reranked) == 2
        assert {d.id for d in reranked} <= {d.id for d in candidates}
        own = _own_scores(cross_encoder, [d.page_content for d in candidates])
        best = sorted(zip(own, [d.id for d in candidates], strict=True), reverse=True)[:2]
        assert [d.id for d in reranked] == [pk for _, pk in best]
        assert all(d.metadata["score_stage"] == "rerank" for d in reranked)
        assert all(d.metadata["mode"] == "hybrid" for d in reranked)  # which search found them
        (top,) = runs.traced_runs
        steps = [child.name for child in top.child_runs]
        assert steps == ["rerank"], steps
        assert len(top.child_runs[0].outputs["output"]) == 2
        # Without the reranker, the score says it came from the search.
        assert {d.metadata["score_stage"] for d in plain.invoke(QUESTION)} == {"hybrid"}
    finally:
        release(indexed, store.client)


def test_unknown_reranker_function_is_one_clear_line() -> None:
    with pytest.raises(ConfigError) as err:
        parse_reranker("NoSuchRerankFunction:cross-encoder/ms-marco-MiniLM-L-6-v2")
    assert "'NoSuchRerankFunction'" in str(err.value) and "CrossEncoderRerankFunction" in err.value.fix
    assert parse_reranker("cross-encoder/ms-marco-MiniLM-L-6-v2") == (
        "CrossEncoderRerankFunction",
        "cross-encoder/ms-marco-MiniLM-L-6-v2",
    )
    assert parse_reranker("bge:BAAI/bge-reranker-base") == ("BGERerankFunction", "BAAI/bge-reranker-base")


def test_a_bad_reranker_fails_before_any_search(tmp_path: Path) -> None:
    settings = get_settings(reranker="NoSuchRerankFunction:x/y", data_dir_override=tmp_path / "data")
    with pytest.raises(ConfigError, match="unknown reranker function"):
        build_retriever(settings, store=object())  # the index is never searched, nor touched


def test_a_reranker_folder_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="neither a folder nor a Hugging Face model id"):
        load_reranker(str(tmp_path / "no-such-reranker"))


def test_a_reranker_needing_a_missing_package_names_it() -> None:
    with pytest.raises(ConfigError) as err:
        load_reranker("BGERerankFunction:BAAI/bge-reranker-base")
    assert "FlagEmbedding" in str(err.value) and "pip install" in err.value.fix


def test_an_unknown_reranker_model_on_the_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    with FakeHub({}) as hub:
        monkeypatch.setenv("HF_ENDPOINT", hub.url)
        with pytest.raises(ConfigError) as err:
            load_reranker("nobody/no-such-reranker")
    assert "no model 'nobody/no-such-reranker'" in str(err.value) and "RAG_RERANKER" in err.value.fix


def test_an_unreachable_hub_for_the_reranker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{free_port()}")
    with pytest.raises(EmbeddingModelError) as err:
        load_reranker("cross-encoder/not-cached-here")
    assert "cannot be reached" in str(err.value) and "RAG_RERANKER" in err.value.fix


def test_a_reranker_that_answers_nonsense_is_an_error() -> None:
    class Broken:
        def __call__(self, query: str, documents: list[str], top_k: int = 5) -> list[Any]:
            from pymilvus.model.base import RerankResult

            return [RerankResult(text="?", score=1.0, index=len(documents) + 3)]

    with pytest.raises(RagError, match="returned index"):
        rerank(Broken(), QUESTION, [Document("a"), Document("b")], k=1)
