"""The retriever the chain uses: Milvus search with the score kept on each document.

`as_retriever()` drops scores; LangChain's documented pattern is a small retriever that calls
`similarity_search_with_score` and puts the score in `doc.metadata`, which is what this is.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field

from rag.settings import Settings, get_settings

if TYPE_CHECKING:
    from langchain_milvus import Milvus

HIDDEN_FIELDS = ("sparse", "vector")


class MilvusRetriever(BaseRetriever):
    """Top-k chunks for a query, each with `metadata["score"]` (higher is more similar)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    store: Any = Field(description="a langchain_milvus.Milvus over this project's collection")
    k: int = 3
    mode: Literal["dense", "hybrid"] = "dense"
    filter: str | None = Field(default=None, description="Milvus boolean expression on metadata")

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        kwargs: dict[str, Any] = {"k": self.k}
        if self.filter:
            kwargs["expr"] = self.filter
        pairs = self.store.similarity_search_with_score(query, **kwargs)
        return [_with_score(doc, score) for doc, score in pairs]


def _with_score(doc: Document, score: float) -> Document:
    metadata = {k: v for k, v in doc.metadata.items() if k not in HIDDEN_FIELDS}
    metadata["score"] = float(score)
    return Document(page_content=doc.page_content, metadata=metadata, id=metadata.get("pk"))


def open_store(settings: Settings) -> Milvus:
    """The embedding model and the vector store for the configured collection."""
    from rag.embeddings import build_embeddings
    from rag.store import open_vectorstore

    embeddings = build_embeddings(settings)
    return open_vectorstore(settings, embeddings, embedding_model=embeddings.model_id, dim=embeddings.dim or 0)


def build_retriever(
    settings: Settings | None = None,
    *,
    k: int | None = None,
    mode: Literal["dense", "hybrid"] | None = None,
    filter: str | None = None,
    store: Milvus | None = None,
) -> MilvusRetriever:
    """The default retriever: the configured collection, `k` and mode from settings unless given."""
    settings = settings or get_settings()
    return MilvusRetriever(
        store=store if store is not None else open_store(settings),
        k=k or settings.k,
        mode=mode or settings.mode,
        filter=filter,
    )
