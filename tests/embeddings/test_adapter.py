"""PymilvusEmbeddings: routing, batching, conversion and async, over a fake function and the real ones."""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from langchain_core.embeddings import Embeddings

from config.errors import EmbeddingModelError
from config.settings import get_settings
from embeddings import PymilvusEmbeddings, build_embeddings
from embeddings.minilm import MINILM_MODEL_ID, MiniLMOnnxEmbeddingFunction


class FakeFunction:
    """Deterministic: the vector encodes the text's length, a checksum and which method produced it."""

    dim = 3

    def __init__(self) -> None:
        self.calls: list[tuple[str, list[str]]] = []

    @staticmethod
    def _vector(text: str, kind: float) -> np.ndarray:
        return np.array([len(text), sum(map(ord, text)) % 101, kind], dtype=np.float32)

    def encode_documents(self, documents: list[str]) -> list[np.ndarray]:
        self.calls.append(("documents", list(documents)))
        return [self._vector(t, 1.0) for t in documents]

    def encode_queries(self, queries: list[str]) -> list[np.ndarray]:
        self.calls.append(("queries", list(queries)))
        return [self._vector(t, 2.0) for t in queries]


TEXTS = [f"text number {i}" + "!" * i for i in range(7)]


def test_documents_come_back_in_input_order_whatever_the_batching() -> None:
    fake = FakeFunction()
    texts = ["a much longer text than the others", "short", "mid-sized text", "tiny", *TEXTS]
    emb = PymilvusEmbeddings(fake, batch_size=3)
    assert isinstance(emb, Embeddings)
    vectors = emb.embed_documents(texts)
    assert vectors == [FakeFunction._vector(t, 1.0).tolist() for t in texts]
    assert all(type(x) is float for v in vectors for x in v)
    # Each text embedded once, as a document, and no call bigger than the batch size the caller set.
    assert {kind for kind, _ in fake.calls} == {"documents"}
    assert sorted(t for _, batch in fake.calls for t in batch) == sorted(texts)
    assert max(len(batch) for _, batch in fake.calls) <= 3


def test_query_goes_to_encode_queries() -> None:
    fake = FakeFunction()
    vector = PymilvusEmbeddings(fake).embed_query("what is milvus")
    assert fake.calls == [("queries", ["what is milvus"])]
    assert vector == [14.0, float(sum(map(ord, "what is milvus")) % 101), 2.0]


def test_empty_documents_call_nothing() -> None:
    fake = FakeFunction()
    assert PymilvusEmbeddings(fake).embed_documents([]) == []
    assert fake.calls == []


def test_async_methods() -> None:
    fake = FakeFunction()
    emb = PymilvusEmbeddings(fake, batch_size=4)

    async def both() -> tuple[list[list[float]], list[float]]:
        return await emb.aembed_documents(TEXTS), await emb.aembed_query("q")

    docs, query = asyncio.run(both())
    assert docs == emb.embed_documents(TEXTS)
    assert query[2] == 2.0 and [c[0] for c in fake.calls].count("queries") == 1


def test_progress_bar_only_when_asked(capsys: pytest.CaptureFixture[str]) -> None:
    PymilvusEmbeddings(FakeFunction(), batch_size=2).embed_documents(TEXTS)
    assert "Embedding" not in capsys.readouterr().err
    PymilvusEmbeddings(FakeFunction(), batch_size=2, show_progress=True).embed_documents(TEXTS)
    assert "7/7" in capsys.readouterr().err


def test_wrong_number_of_vectors_is_an_error() -> None:
    class Short(FakeFunction):
        def encode_documents(self, documents: list[str]) -> list[np.ndarray]:
            return super().encode_documents(documents)[:-1]

    with pytest.raises(EmbeddingModelError, match="returned 1 vectors for 2 texts"):
        PymilvusEmbeddings(Short()).embed_documents(["a", "b"])


def test_model_id_and_dim() -> None:
    emb = PymilvusEmbeddings(FakeFunction())
    assert emb.dim == 3
    assert emb.model_id == "FakeFunction"
    with pytest.raises(ValueError):
        PymilvusEmbeddings(FakeFunction(), batch_size=0)


def test_over_the_real_functions(minilm: MiniLMOnnxEmbeddingFunction, reference: Any) -> None:
    ours, theirs = PymilvusEmbeddings(minilm), PymilvusEmbeddings(reference, batch_size=2)
    assert ours.model_id == theirs.model_id == MINILM_MODEL_ID and ours.dim == theirs.dim == 384
    query = "How many replicas can a collection have?"
    a, b = np.array(ours.embed_query(query)), np.array(theirs.embed_query(query))
    assert a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) >= 0.999
    docs = ["Milvus is a vector database.", "Partitions split a collection.", "Use flush sparingly."]
    np.testing.assert_allclose(ours.embed_documents(docs), theirs.embed_documents(docs), atol=1e-3)


def test_build_embeddings_from_settings(minilm: MiniLMOnnxEmbeddingFunction) -> None:
    emb = build_embeddings(get_settings(embedding_batch_size=5))
    assert isinstance(emb.embedding_function, MiniLMOnnxEmbeddingFunction)
    assert emb.embedding_function.batch_size == 5  # inference batches; the adapter's calls are larger
    assert emb.embedding_function.onnx_path == minilm.onnx_path  # RAG_CACHE_DIR: the session cache
    assert emb.model_id == MINILM_MODEL_ID
