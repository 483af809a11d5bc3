"""The chain's input and output as types, so `chain.input_schema` / `chain.output_schema` describe them.

TypedDicts rather than pydantic models because the chain takes and returns plain dicts: other LCEL pipelines
feed it `{"question": ...}` and read `result["answer"]` without converting anything.
"""

from __future__ import annotations

from typing import Any

from langchain_core.messages import AnyMessage
from typing_extensions import NotRequired, TypedDict

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
    text: str


class RagOutput(TypedDict):
    """The answer (citing passages as [n]) and the passages it was given."""

    answer: str
    sources: list[Source]
