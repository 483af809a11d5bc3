"""The chain's input and output as types, so `chain.input_schema` / `chain.output_schema` describe them.

TypedDicts rather than pydantic models because the chain takes and returns plain dicts: other LCEL pipelines
feed it `{"question": ...}` and read `result["answer"]` without converting anything.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from langchain_core.messages import AnyMessage
from typing_extensions import NotRequired, TypedDict

if TYPE_CHECKING:
    from langchain_core.documents import Document

ChatTurn = AnyMessage | tuple[str, str] | dict[str, Any]
"""One earlier message: a LangChain message, `("human" | "ai", text)`, or `{"role": ..., "content": ...}`."""


class RagInput(TypedDict):
    """A question about the Milvus docs, optionally following an earlier conversation."""

    question: str
    chat_history: NotRequired[list[ChatTurn]]


class Source(TypedDict):
    """One retrieved passage, numbered as the answer cites it ([n])."""

    n: int
    source: str
    heading: str
    score: float | None
    stage: NotRequired[str]
    text: str


class RagOutput(TypedDict):
    """The answer (citing passages as [n]), the passages it was given, and the query that found them (the
    question itself, or its standalone English rewrite)."""

    answer: str
    sources: list[Source]
    search_query: str


def to_sources(docs: Sequence[Document]) -> list[Source]:
    """The passages as the prompt numbers them and the answer cites them: [n] is `sources[n - 1]`."""
    sources: list[Source] = []
    for n, doc in enumerate(docs, start=1):
        score = doc.metadata.get("score")
        source = Source(
            n=n,
            source=str(doc.metadata.get("source", "")),
            heading=str(doc.metadata.get("heading") or doc.metadata.get("title") or ""),
            score=float(score) if score is not None else None,
            text=doc.page_content,
        )
        if doc.metadata.get("score_stage"):
            source["stage"] = str(doc.metadata["score_stage"])  # which step scored it: dense, hybrid or rerank
        sources.append(source)
    return sources
