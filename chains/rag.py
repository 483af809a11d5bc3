"""The RAG chain: (rewrite the question into an English search query) → retrieve → numbered context →
prompt → model → answer + sources.

Everything is LCEL, so the chain streams, batches and runs async like any runnable, drops into other
pipelines, and shows its steps by name in traces: `rag`, `search_query` / `rewrite_query`, `retrieve`,
`sources`, `format_context`, `generate`.

The rewrite costs one model call, made only when it pays: a question in another language (MiniLM and BM25
only understand English, and the docs are English) or a follow-up (which needs the conversation to stand
alone) is turned into one standalone English query, in a single call for a non-English follow-up. An English
first question goes to the retriever as it is.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator, Mapping
from operator import itemgetter
from typing import Any, Literal

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
)
from langchain_core.runnables.config import run_in_executor
from pydantic import BaseModel

from chains.language import ENGLISH, detect_language, language_name
from chains.llm import build_llm, configurable_llm, with_project_errors
from chains.prompts import (
    NO_CONVERSATION,
    RAG_PROMPT,
    REWRITE_PROMPT,
    fence,
    format_context,
    format_conversation,
    within_budget,
)
from chains.schemas import RagInput, RagOutput, to_sources
from chains.tracing import chain_trace_config
from config.errors import ConfigError
from config.settings import Settings, check_k, get_settings

log = logging.getLogger(__name__)

RewriteMode = Literal["auto", "always", "off"]
REWRITE_MODES: tuple[str, ...] = ("auto", "always", "off")
#: A reply longer than this is not a search query (a model that answered instead of rewriting).
MAX_QUERY_CHARS = 1000
K_FIELD = ConfigurableField(id="k", name="k", description="How many passages to retrieve (1 to 50)")
FILTER_FIELD = ConfigurableField(
    id="filter", name="filter", description='Milvus boolean expression on metadata, e.g. source like "en/faq/%"'
)


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
    rewrite_prompt: BasePromptTemplate | None = None,
    query_rewrite: RewriteMode | None = None,
) -> Runnable[RagInput, RagOutput]:
    """The question-answering chain over the Milvus docs.

    Input `{"question": str, "chat_history": [...]}` (history optional); output `{"answer": str,
    "sources": [{"n", "source", "heading", "score", "text"}], "search_query": str}`. Per call,
    `configurable` takes `k` (1..50), `filter` (a Milvus boolean expression on metadata), `model` and
    `temperature`.

    Defaults: the retriever from `retrieval.retriever.build_retriever`, the LLM from `chains.llm.build_llm`,
    `k` from settings (RAG_K), `query_rewrite` from RAG_QUERY_REWRITE: `auto` rewrites non-English questions
    and follow-ups into a standalone English search query, `always` every question, `off` none.
    `retriever` may be any runnable str → list[Document]; a passage's score is read from
    `doc.metadata["score"]`. `prompt` needs the variables `context` and `question` (it may use
    `search_query` and `answer_language`); `rewrite_prompt` needs `conversation` and `question` and must make
    the model reply with the query alone. Model failures raise
    `config.errors.LLMError` (one line: problem and fix), the openai error chained.
    """
    settings = settings or get_settings()
    k = check_k(settings.k if k is None else k)
    mode = query_rewrite or settings.query_rewrite
    if mode not in REWRITE_MODES:
        raise ConfigError(f"unknown query rewrite mode {mode!r}", "use one of: " + ", ".join(REWRITE_MODES))
    prompt = prompt or RAG_PROMPT
    rewrite_prompt = rewrite_prompt or REWRITE_PROMPT
    _require_variables(prompt, {"context", "question"}, "prompt")
    _require_variables(rewrite_prompt, {"conversation", "question"}, "rewrite_prompt")
    model = configurable_llm(llm if llm is not None else build_llm(settings))
    if retriever is None:
        retriever = _default_retriever(settings, k)

    rewrite = _rewrite(model, rewrite_prompt)
    generate = with_project_errors(prompt | model | AnswerParser())
    generate = generate.with_config(run_name="generate", tags=["generate"])

    def search_query(inputs: dict[str, Any]) -> Runnable | str:
        """The query retrieval sees: the question itself, or (one model call) its standalone English form."""
        wanted = mode == "always" or (
            mode == "auto" and (bool(inputs["chat_history"]) or inputs["language"] != ENGLISH)
        )
        return rewrite if wanted else inputs["question"]

    chain = (
        RunnableLambda(prepare_input, name="prepare_input")
        | RunnablePassthrough.assign(search_query=RunnableLambda(search_query, name="search_query"))
        | RunnablePassthrough.assign(
            sources=itemgetter("search_query")
            | retrieve_step(retriever, k)
            | RunnableLambda(lambda docs: within_budget(to_sources(docs)), name="sources")
        )
        | RunnablePassthrough.assign(
            context=itemgetter("sources") | RunnableLambda(format_context, name="format_context")
        )
        | RunnableParallel(answer=generate, sources=itemgetter("sources"), search_query=itemgetter("search_query"))
    )
    trace = chain_trace_config(settings, k=k, retriever=retriever, llm=model)
    trace["metadata"]["query_rewrite"] = mode
    return chain.with_config(run_name="rag", **trace).with_types(input_type=RagInput, output_type=RagOutput)


def build_query_rewriter(
    llm: Runnable | None = None, prompt: BasePromptTemplate | None = None, *, settings: Settings | None = None
) -> Runnable[dict[str, Any], str]:
    """The rewrite step alone: `{"question", "chat_history"?}` → one standalone English search query (one model
    call, plain text, no passages), or the question itself when the reply is empty or unusable. For host apps
    that search their own way, and for measuring retrieval with the model's rewrites (scripts/evaluate.py)."""
    model = llm if llm is not None else configurable_llm(build_llm(settings or get_settings()))
    prompt = prompt or REWRITE_PROMPT
    _require_variables(prompt, {"conversation", "question"}, "rewrite_prompt")
    return RunnableLambda(prepare_input, name="prepare_input") | _rewrite(model, prompt)


def _rewrite(model: Runnable, prompt: BasePromptTemplate) -> Runnable[dict[str, Any], str]:
    rewrite = RunnablePassthrough.assign(reply=prompt | model | StrOutputParser()) | RunnableLambda(pick_query)
    return with_project_errors(rewrite).with_config(run_name="rewrite_query", tags=["rewrite_query"])


def retrieve_step(retriever: Runnable[str, list[Document]], k: int) -> Runnable[str, list[Document]]:
    """`retriever` with a `k` and `filter` callers can set per call (`configurable={"k": 5, "filter": ...}`).

    A retriever with its own `k` / `filter` fields (the project's MilvusRetriever, BM25Retriever, ...) gets
    them as LangChain configurable fields; a vector store's retriever takes `k=` as a search keyword; any other
    runnable reads `config["configurable"]["k"]`, which is always set. The result is cut to `k` in case the
    retriever returned more.
    """
    fields = type(retriever).model_fields if isinstance(retriever, BaseModel) else {}
    specs = {name: spec for name, spec in (("k", K_FIELD), ("filter", FILTER_FIELD)) if name in fields}
    if "k" in fields:
        retriever = retriever.model_copy(update={"k": k})  # shallow: the store is shared
    target = retriever.configurable_fields(**specs) if specs else retriever
    keyword = isinstance(retriever, BaseRetriever) and "k" not in fields

    def with_k(config: RunnableConfig) -> tuple[int, RunnableConfig]:
        configurable = dict(config.get("configurable") or {})
        n = check_k(configurable.get("k", k))
        return n, {**config, "configurable": {**configurable, "k": n}}

    def retrieve(query: str, config: RunnableConfig) -> list[Document]:
        n, config = with_k(config)
        return list(target.invoke(query, config, **({"k": n} if keyword else {})))[:n]

    async def aretrieve(query: str, config: RunnableConfig) -> list[Document]:
        n, config = with_k(config)
        if keyword:  # BaseRetriever's default async path drops keyword arguments: run the sync one in a thread
            return await run_in_executor(config, retrieve, query, config)
        return list(await target.ainvoke(query, config))[:n]

    return RunnableLambda(retrieve, afunc=aretrieve, name="retrieve")


def pick_query(inputs: Mapping[str, Any]) -> str:
    """The model's rewrite, tidied; an empty or unusable reply falls back to the question, with a warning."""
    reply = " ".join(str(inputs.get("reply") or "").split())
    for prefix in ("search query:", "query:"):
        if reply.lower().startswith(prefix):
            reply = reply[len(prefix) :]
    reply = reply.strip().strip("\"'`“”«»「」").strip()
    if reply and len(reply) <= MAX_QUERY_CHARS:
        return reply
    log.warning(
        "the query rewrite returned %s; searching with the question as asked",
        "nothing" if not reply else f"{len(reply)} characters, not a search query",
    )
    return str(inputs["question"])


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
    language = detect_language(question)
    return {
        "question": fence(question.strip()),
        "chat_history": history,
        "conversation": format_conversation(history) if history else NO_CONVERSATION,
        "language": language,
        "answer_language": "the language the question is written in"
        if language == ENGLISH
        else language_name(language),
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
