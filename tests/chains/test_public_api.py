"""What another app imports from `chains`: exactly the documented names, importable without loading Milvus or
the embedding model."""

from __future__ import annotations

import subprocess
import sys

import chains

PUBLIC = [
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
HEAVY = ("pymilvus", "milvus_lite", "langchain_milvus", "onnxruntime", "tokenizers", "torch", "sentence_transformers")


def test_exports_exactly_the_public_names() -> None:
    assert sorted(chains.__all__) == sorted(PUBLIC)
    namespace: dict[str, object] = {}
    exec("from chains import *", namespace)  # noqa: S102 - what `import *` gives an app
    assert sorted(k for k in namespace if k != "__builtins__") == sorted(PUBLIC)


def test_the_exports_are_the_library_objects() -> None:
    from chains.tracing import JsonlTracer
    from config.settings import Settings, get_settings
    from retrieval.retriever import build_retriever

    assert chains.build_retriever is build_retriever
    assert chains.Settings is Settings and chains.get_settings is get_settings
    assert chains.JsonlTracer is JsonlTracer
    assert "build_rag_chain" in (chains.__doc__ or "") and "invoke" in (chains.__doc__ or "")


def test_importing_chains_loads_neither_milvus_nor_the_embedding_model(tmp_path, isolated_env) -> None:
    app = tmp_path / "app"
    app.mkdir()
    code = f"import sys, chains; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=app, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
    assert list(app.iterdir()) == [] and list(isolated_env.iterdir()) == []  # no index, cache or config created
