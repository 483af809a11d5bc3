"""The RAG chain: (condense a follow-up) → retrieve → numbered context → prompt → model → answer + sources.

Everything is LCEL, so the chain streams, batches and runs async like any runnable, drops into other
pipelines, and shows its steps by name in traces: `rag`, `standalone_question` / `condense_question`,
`retrieve`, `format_context`, `generate`, `sources`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator, Mapping
from operator import itemgetter
from typing import Any

from langchain_core.callbacks import AsyncCallbackManagerForChainRun, CallbackManagerForChainRun
from langchain_core.documents import Document
from langchain_core.messages import BaseMessage, convert_to_messages
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import BasePromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import (
    ConfigurableField,
    Runnable,
    RunnableConfig,
    RunnableLambda,
    RunnableParallel,
    RunnablePassthrough,
    RunnableSerializable,
)
from langchain_core.runnables.config import patch_config, run_in_executor
from pydantic import BaseModel, ConfigDict, Field

from chains.llm import build_llm, configurable_llm
from chains.prompts import CONDENSE_PROMPT, RAG_PROMPT, fence, format_context, format_conversation
from chains.schemas import RagInput, RagOutput, to_sources
from chains.tracing import chain_trace_config
from config.errors import ConfigError
from config.settings import Settings, get_settings


class RetrieveStep(RunnableSerializable[str, list[Document]]):
    """Runs any retriever with a `k` and a metadata `filter` that callers can change per call
    (`configurable={"k": 5, "filter": 'source like "en/faq/%"'}`).

    How `k` reaches the retriever, by kind: a retriever with its own `k` field (the project's
    MilvusRetriever, BM25Retriever, ...) is called as a copy with that `k`; any other `BaseRetriever` gets
    the `k=` keyword (a vector store's retriever passes it to the search); any runnable can read
    `config["configurable"]["k"]`. The result is cut to `k` in case the retriever returned more.
    A `filter` (a Milvus boolean expression; None keeps the retriever's own) reaches a retriever with a
    `filter` field the same way; any runnable can read `config["configurable"]["filter"]`.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: Runnable[str, list[Document]]
    k: int = Field(default=3, ge=1)
    filter: str | None = None
    name: str | None = "retrieve"

    def _target(self) -> tuple[Runnable[str, list[Document]], dict[str, Any]]:
        """The retriever to call for this `k` and filter, and the keywords to call it with."""
        retriever = self.retriever
        if isinstance(retriever, BaseModel):
            fields = type(retriever).model_fields
            update: dict[str, Any] = {}
            if "k" in fields and retriever.k != self.k:  # type: ignore[attr-defined]
                update["k"] = self.k
            if self.filter is not None and "filter" in fields:
                update["filter"] = self.filter
            if update:
                retriever = retriever.model_copy(update=update)  # shallow: the store is shared
            if "k" in fields:
                return retriever, {}
        return retriever, ({"k": self.k} if isinstance(retriever, BaseRetriever) else {})

    def _child_config(self, config: RunnableConfig, run_manager: Any) -> RunnableConfig:
        configurable: dict[str, Any] = {"k": self.k}
        if self.filter is not None:
            configurable["filter"] = self.filter
        return patch_config(config, callbacks=run_manager.get_child(), configurable=configurable)

    def _retrieve(
        self, query: str, run_manager: CallbackManagerForChainRun, config: RunnableConfig
    ) -> list[Document]:
        retriever, kwargs = self._target()
        docs = retriever.invoke(query, self._child_config(config, run_manager), **kwargs)
        return list(docs)[: self.k]

    async def _aretrieve(
        self, query: str, run_manager: AsyncCallbackManagerForChainRun, config: RunnableConfig
    ) -> list[Document]:
        retriever, kwargs = self._target()
        child = self._child_config(config, run_manager)
        if kwargs and not _has_native_async(retriever):
            # BaseRetriever's default async path drops keyword arguments (TypeError on `k`): run the sync
            # path in a thread ourselves, as that default would.
            docs = await run_in_executor(child, retriever.invoke, query, child, **kwargs)
        else:
            docs = await retriever.ainvoke(query, child, **kwargs)
        return list(docs)[: self.k]

    def invoke(self, input: str, config: RunnableConfig | None = None, **kwargs: Any) -> list[Document]:
        return self._call_with_config(self._retrieve, input, config, **kwargs)

    async def ainvoke(
        self, input: str, config: RunnableConfig | None = None, **kwargs: Any
    ) -> list[Document]:
        return await self._acall_with_config(self._aretrieve, input, config, **kwargs)


def _has_native_async(retriever: Runnable) -> bool:
    method = type(retriever)._aget_relevant_documents  # type: ignore[attr-defined]
    return not method.__qualname__.startswith("BaseRetriever.")


class AnswerParser(StrOutputParser):
    """StrOutputParser that streams no empty chunks (role, finish and usage chunks carry no text)."""

    def _transform(self, input: Iterator[str | BaseMessage]) -> Iterator[str]:
        emitted = False
        for text in super()._transform(input):
            if text:
                emitted = True
                yield text
        if not emitted:
            yield ""

    async def _atransform(self, input: AsyncIterator[str | BaseMessage]) -> AsyncIterator[str]:
        emitted = False
        async for text in super()._atransform(input):
            if text:
                emitted = True
                yield text
        if not emitted:
            yield ""


def build_rag_chain(
    retriever: Runnable[str, list[Document]] | None = None,
    llm: Runnable | None = None,
    *,
    k: int | None = None,
    settings: Settings | None = None,
    prompt: BasePromptTemplate | None = None,
    condense_prompt: BasePromptTemplate | None = None,
) -> Runnable[RagInput, RagOutput]:
    """The question-answering chain over the Milvus docs.

    Input `{"question": str, "chat_history": [...]}` (history optional); output `{"answer": str,
    "sources": [{"n", "source", "heading", "score", "text"}]}`. Per call, `configurable` takes `k`, `filter`
    (a Milvus boolean expression on metadata), `model` and `temperature`.

    Defaults: the retriever from `retrieval.retriever.build_retriever`, the LLM from `chains.llm.build_llm`, `k`
    from settings (RAG_K). `retriever` may be any runnable str → list[Document]; a passage's score is read
    from `doc.metadata["score"]`. `prompt` needs the variables `context` and `question`; `condense_prompt`
    needs `conversation` and `question`.
    """
    settings = settings or get_settings()
    k = settings.k if k is None else k
    prompt = prompt or RAG_PROMPT
    condense_prompt = condense_prompt or CONDENSE_PROMPT
    _require_variables(prompt, {"context", "question"}, "prompt")
    _require_variables(condense_prompt, {"conversation", "question"}, "condense_prompt")
    model = configurable_llm(llm if llm is not None else build_llm(settings))
    if retriever is None:
        retriever = _default_retriever(settings, k)

    condense = (condense_prompt | model | StrOutputParser()).with_config(
        run_name="condense_question", tags=["condense_question"]
    )
    generate = (prompt | model | AnswerParser()).with_config(run_name="generate", tags=["generate"])
    retrieve = RetrieveStep(retriever=retriever, k=k).configurable_fields(
        k=ConfigurableField(id="k", name="k", description="How many passages to retrieve"),
        filter=ConfigurableField(
            id="filter", name="filter", description='Milvus boolean expression on metadata, e.g. source like "en/faq/%"'
        ),
    )

    def standalone_question(inputs: dict[str, Any]) -> Runnable | str:
        """A follow-up is rewritten (one LLM call) so that retrieval sees a self-contained question."""
        return condense if inputs["chat_history"] else inputs["question"]

    chain = (
        RunnableLambda(prepare_input, name="prepare_input")
        | RunnablePassthrough.assign(question=RunnableLambda(standalone_question, name="standalone_question"))
        | RunnablePassthrough.assign(
            sources=itemgetter("question") | retrieve | RunnableLambda(to_sources, name="sources")
        )
        | RunnablePassthrough.assign(
            context=itemgetter("sources") | RunnableLambda(format_context, name="format_context")
        )
        | RunnableParallel(answer=generate, sources=itemgetter("sources"))
    )
    trace = chain_trace_config(settings, k=k, retriever=retriever, llm=model)
    return chain.with_config(run_name="rag", **trace).with_types(input_type=RagInput, output_type=RagOutput)


def prepare_input(inputs: Mapping[str, Any] | str) -> dict[str, Any]:
    """Check the input once, up front; a bare string is taken as the question."""
    if isinstance(inputs, str):
        inputs = {"question": inputs}
    if not isinstance(inputs, Mapping):
        raise TypeError(
            f"the RAG chain takes {{'question': str, 'chat_history': [...]}}, got {type(inputs).__name__}"
        )
    question = inputs.get("question")
    if not isinstance(question, str) or not question.strip():
        raise ValueError("the RAG chain needs a non-empty 'question' string")
    history = convert_to_messages(inputs.get("chat_history") or [])
    return {
        "question": fence(question.strip()),
        "chat_history": history,
        "conversation": format_conversation(history) if history else "",
    }


def _require_variables(prompt: BasePromptTemplate, needed: set[str], name: str) -> None:
    missing = needed - set(prompt.input_variables)
    if missing:
        raise ConfigError(
            f"{name} lacks the variables {sorted(missing)}",
            f"write them into the template as {{{sorted(missing)[0]}}}",
        )


def _default_retriever(settings: Settings, k: int) -> Runnable[str, list[Document]]:
    from retrieval.retriever import build_retriever  # Milvus and the embedding model load only when needed

    return build_retriever(settings, k=k)
