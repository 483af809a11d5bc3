"""The LCEL chain over the Milvus docs: `build_rag_chain()`, the DeepSeek model and its errors."""

from chains.llm import build_llm, configurable_llm, to_llm_error
from chains.prompts import CONDENSE_PROMPT, RAG_PROMPT, format_context
from chains.rag import RetrieveStep, build_rag_chain, to_sources
from chains.schemas import RagInput, RagOutput, Source

__all__ = [
    "CONDENSE_PROMPT",
    "RAG_PROMPT",
    "RagInput",
    "RagOutput",
    "RetrieveStep",
    "Source",
    "build_llm",
    "build_rag_chain",
    "configurable_llm",
    "format_context",
    "to_llm_error",
    "to_sources",
]
