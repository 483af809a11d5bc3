"""Embedding functions (pymilvus-model style), the models they run by name, and their LangChain adapter.

Names are resolved on first access (PEP 562), so importing `embeddings.model_files` for token counting, or
`embeddings.minilm` on the query path, does not pull in LangChain, and nothing here loads onnxruntime or
reaches the Hugging Face Hub.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from embeddings.adapter import EmbeddingFunction, PymilvusEmbeddings
    from embeddings.factory import (
        EMBEDDING_NAMES,
        build_embeddings,
        load_embedding_function,
        resolve_model,
        token_window,
    )
    from embeddings.minilm import (
        MINILM_MODEL_ID,
        MiniLMOnnxEmbeddingFunction,
        OnnxSentenceEmbeddingFunction,
        count_tokens,
        minilm_folder,
        verify_minilm_weights,
    )
    from embeddings.model_files import MINILM_DIM, MINILM_MAX_TOKENS, minilm_dir
    from embeddings.models import KNOWN_MODELS, ModelSpec

_WHERE = {
    "EmbeddingFunction": "adapter",
    "PymilvusEmbeddings": "adapter",
    "EMBEDDING_NAMES": "factory",
    "build_embeddings": "factory",
    "load_embedding_function": "factory",
    "token_window": "factory",
    "MINILM_MODEL_ID": "minilm",
    "MiniLMOnnxEmbeddingFunction": "minilm",
    "verify_minilm_weights": "minilm",
    "OnnxSentenceEmbeddingFunction": "minilm",
    "minilm_folder": "minilm",
    "KNOWN_MODELS": "models",
    "ModelSpec": "models",
    "resolve_model": "factory",
    "MINILM_DIM": "model_files",
    "MINILM_MAX_TOKENS": "model_files",
    "count_tokens": "minilm",
    "minilm_dir": "model_files",
}

__all__ = [
    "EMBEDDING_NAMES",
    "KNOWN_MODELS",
    "MINILM_DIM",
    "MINILM_MAX_TOKENS",
    "MINILM_MODEL_ID",
    "EmbeddingFunction",
    "MiniLMOnnxEmbeddingFunction",
    "ModelSpec",
    "OnnxSentenceEmbeddingFunction",
    "PymilvusEmbeddings",
    "build_embeddings",
    "count_tokens",
    "load_embedding_function",
    "minilm_dir",
    "minilm_folder",
    "resolve_model",
    "token_window",
    "verify_minilm_weights",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
