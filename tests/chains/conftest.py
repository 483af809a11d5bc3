"""Chain tests: the real ChatOpenAI over HTTP against the fake DeepSeek server, and a small real retriever."""

from __future__ import annotations

import re

import pytest
from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable
from pydantic import ConfigDict, Field

from chains import build_rag_chain
from config.settings import Settings
from tests.support.openai_server import FakeDeepSeek

DOCS = [
    Document(
        page_content="Milvus stores inserted data in object storage such as MinIO or S3, metadata in etcd.",
        metadata={
            "source": "en/faq/product_faq.md",
            "heading": "Product FAQ > Where does Milvus store data?",
            "title": "Product FAQ",
        },
    ),
    Document(
        page_content="Recall is affected mainly by the index type and the search parameters such as nprobe.",
        metadata={
            "source": "en/faq/operational_faq.md",
            "heading": "Operational FAQ > What affects recall?",
            "title": "Operational FAQ",
        },
    ),
    Document(
        page_content="CPU usage during queries grows with nq and nprobe: query vectors and buckets searched.",
        metadata={
            "source": "en/faq/performance_faq.md",
            "heading": "Performance FAQ > What drives CPU load?",
            "title": "Performance FAQ",
        },
    ),
    Document(
        page_content="Milvus can be installed on Windows from source code or from a binary package.",
        metadata={
            "source": "en/faq/operational_faq.md",
            "heading": "Operational FAQ > Is there a Windows build?",
            "title": "Operational FAQ",
        },
    ),
    Document(
        page_content="The maximum dimension of a vector field is 32768; a collection has at most 4 of them.",
        metadata={
            "source": "en/faq/product_faq.md",
            "heading": "Product FAQ > What is the maximum vector dimension?",
            "title": "Product FAQ",
        },
    ),
    Document(
        page_content="Set minio.rootPath to a unique value so several Milvus clusters share a MinIO bucket.",
        metadata={
            "source": "en/faq/operational_faq.md",
            "heading": "Operational FAQ > Can clusters share a MinIO bucket?",
            "title": "Operational FAQ",
        },
    ),
]

_STOP = {"the", "a", "an", "of", "is", "in", "to", "and", "or", "does", "do", "what", "how", "can", "i", "it"}


def _words(text: str) -> set[str]:
    return {w for w in re.findall(r"[a-z0-9_.]+", text.lower()) if w not in _STOP}


class QueryLog:
    def __init__(self) -> None:
        self.entries: list[tuple[str, int]] = []


class KeywordRetriever(BaseRetriever):
    """A tiny real retriever: ranks passages by shared words, puts the score in metadata, logs its queries.

    Shaped like the project's MilvusRetriever: `k` is a field, not a keyword of the search.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    docs: list[Document]
    k: int = 4
    # Shared by the copies LangChain makes of a configurable retriever (a list field would be copied).
    log: QueryLog = Field(default_factory=lambda: QueryLog())

    @property
    def queries(self) -> list[tuple[str, int]]:
        """(query, k) of every search, in order, by this retriever and its per-call copies."""
        return self.log.entries

    def _get_relevant_documents(
        self, query: str, *, run_manager: CallbackManagerForRetrieverRun
    ) -> list[Document]:
        k = self.k
        self.log.entries.append((query, k))
        wanted = _words(query)
        scored = [
            (len(wanted & _words(d.page_content)) / max(len(wanted), 1), i, d)
            for i, d in enumerate(self.docs)
        ]
        ranked = sorted((s for s in scored if s[0] > 0), key=lambda s: (-s[0], s[1]))[:k]
        return [
            Document(page_content=d.page_content, metadata={**d.metadata, "score": score})
            for score, _, d in ranked
        ]


@pytest.fixture
def retriever() -> KeywordRetriever:
    return KeywordRetriever(docs=DOCS)


@pytest.fixture
def settings(openai_server: FakeDeepSeek) -> Settings:  # noqa: F811 - pytest fixture injection
    return Settings(
        deepseek_api_key=openai_server.api_key,
        deepseek_base_url=openai_server.url,
        deepseek_timeout=10.0,
        deepseek_max_retries=2,
    )


@pytest.fixture
def rag_chain(retriever: KeywordRetriever, settings: Settings) -> Runnable:
    return build_rag_chain(retriever, settings=settings)
