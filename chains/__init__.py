"""The LCEL chain over the Milvus docs, for the CLI and for other LangChain apps.

Everything an app needs is importable from here; importing loads neither Milvus nor the embedding model
(they load when a retriever is built):

    from chains import build_rag_chain, get_settings

    rag = build_rag_chain(settings=get_settings())       # the index from `scripts/ingest.py`, DeepSeek
    result = rag.invoke({"question": "How is data stored in milvus?"})
    print(result["answer"], [s["source"] for s in result["sources"]])

`rag` is a runnable like any other: `stream`, `batch`, `ainvoke`, `|` into a larger pipeline, `as_tool` for
an agent, `RunnableWithMessageHistory` for multi-turn (see `examples/`). Swap parts with
`build_rag_chain(retriever=..., llm=...)`; `build_retriever(settings, k=, mode=, filter=)` is the default
retriever. Per call, `configurable` takes `k`, `filter`, `model` and `temperature`. A question in another
language, or a follow-up, is first rewritten into a standalone English search query (`RAG_QUERY_REWRITE`,
`build_rag_chain(query_rewrite=..., rewrite_prompt=...)`); the answer comes back in the asker's language and
the output's `search_query` says what was searched. Model failures raise `LLMError` (a `RagError`: one line,
problem and fix).

Tracing: with `LANGSMITH_TRACING=true` (and `LANGSMITH_API_KEY`) every step is traced in LangSmith by name;
`redact_langsmith(settings)` once at startup keeps keys out of what is uploaded. `JsonlTracer(path)` as a
callback writes the same run tree to a local JSONL file.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chains.language import detect_language, is_english, language_name
    from chains.llm import build_llm, configurable_llm, to_llm_error
    from chains.prompts import RAG_PROMPT, REWRITE_PROMPT, format_context
    from chains.rag import build_query_rewriter, build_rag_chain
    from chains.schemas import RagInput, RagOutput, Source, to_sources
    from chains.tracing import JsonlTracer, redact_langsmith
    from config.errors import ConfigError, LLMError, RagError
    from config.settings import Settings, get_settings
    from retrieval.retriever import build_retriever

# Where each name lives: loaded on first use, so `from chains.tracing import ...` (the CLI's retrieve-only
# path) does not pay for the OpenAI client.
_HOMES = {
    "build_llm": "chains.llm",
    "configurable_llm": "chains.llm",
    "to_llm_error": "chains.llm",
    "detect_language": "chains.language",
    "is_english": "chains.language",
    "language_name": "chains.language",
    "RAG_PROMPT": "chains.prompts",
    "REWRITE_PROMPT": "chains.prompts",
    "format_context": "chains.prompts",
    "build_query_rewriter": "chains.rag",
    "build_rag_chain": "chains.rag",
    "to_sources": "chains.schemas",
    "RagInput": "chains.schemas",
    "RagOutput": "chains.schemas",
    "Source": "chains.schemas",
    "JsonlTracer": "chains.tracing",
    "redact_langsmith": "chains.tracing",
    "build_retriever": "retrieval.retriever",
    "ConfigError": "config.errors",
    "LLMError": "config.errors",
    "RagError": "config.errors",
    "Settings": "config.settings",
    "get_settings": "config.settings",
}


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module 'chains' has no attribute {name!r}")
    value = getattr(importlib.import_module(_HOMES[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


__all__ = [
    "ConfigError",
    "JsonlTracer",
    "LLMError",
    "RAG_PROMPT",
    "REWRITE_PROMPT",
    "RagError",
    "RagInput",
    "RagOutput",
    "Settings",
    "Source",
    "build_llm",
    "build_query_rewriter",
    "build_rag_chain",
    "build_retriever",
    "configurable_llm",
    "detect_language",
    "format_context",
    "get_settings",
    "is_english",
    "language_name",
    "redact_langsmith",
    "to_llm_error",
    "to_sources",
]
