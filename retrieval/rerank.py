"""Optional second stage: a cross-encoder re-scores the fused candidates and keeps the best `k`.

Retrieval scores a query and a chunk separately (one vector each, or BM25 terms); a cross-encoder reads them
together, which is what bridges "air-gapped" to "offline". It costs one model pass per candidate, so it only
sees the top `RAG_RERANK_CANDIDATES` (default 20) of the fused list. Off unless `RAG_RERANKER` is set.

`RAG_RERANKER` is `[Function:]model`: a pymilvus-model rerank function and the model it loads (a Hugging
Face id or a local folder), e.g. `cross-encoder/ms-marco-MiniLM-L-6-v2` (the function defaults to
`CrossEncoderRerankFunction`) or `BGERerankFunction:BAAI/bge-reranker-base`. Any object with the
pymilvus-model rerank signature `(query, documents, top_k) -> [RerankResult(text, score, index)]` plugs in
from Python (`MilvusRetriever(reranker=...)`).

Reranked documents carry `metadata["score"]` = the reranker's score, `metadata["score_stage"] = "rerank"`
and the search's score in `metadata["retrieval_score"]`; in traces the step is the run named `rerank`.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from langchain_core.documents import Document

from config.errors import ConfigError, RagError

if TYPE_CHECKING:
    from langchain_core.callbacks import CallbackManagerForRetrieverRun
    from langchain_core.runnables import Runnable

#: pymilvus-model rerank functions that run a model on this machine -> (the module they need, its extra).
LOCAL_FUNCTIONS: dict[str, tuple[str, str]] = {
    "CrossEncoderRerankFunction": ("sentence_transformers", "pip install -e '.[hub]'"),
    "BGERerankFunction": ("FlagEmbedding", "pip install -e '.[hub]' FlagEmbedding peft"),
}
DEFAULT_FUNCTION = "CrossEncoderRerankFunction"
_ALIASES = {
    "crossencoder": "CrossEncoderRerankFunction",
    "cross-encoder": "CrossEncoderRerankFunction",
    "crossencoderrerankfunction": "CrossEncoderRerankFunction",
    "bge": "BGERerankFunction",
    "bgererankfunction": "BGERerankFunction",
}
STAGE = "rerank"
_EXAMPLE = (
    "e.g. RAG_RERANKER=cross-encoder/ms-marco-MiniLM-L-6-v2 or RAG_RERANKER=BGERerankFunction:BAAI/bge-reranker-base"
)


def parse_reranker(text: str) -> tuple[str, str]:
    """`[Function:]model` -> (pymilvus-model class name, model). A bare model uses the cross-encoder."""
    raw = (text or "").strip()
    function, sep, model = raw.partition(":")
    if not sep or Path(raw).expanduser().exists():
        function, model = DEFAULT_FUNCTION, raw
    function, model = function.strip(), model.strip()
    name = _ALIASES.get(function.lower(), function)
    if name not in LOCAL_FUNCTIONS:
        known = ", ".join(LOCAL_FUNCTIONS)
        raise ConfigError(f"unknown reranker function {function!r} in RAG_RERANKER", f"use one of: {known}; {_EXAMPLE}")
    if not model:
        raise ConfigError(f"RAG_RERANKER={raw!r} names no model", _EXAMPLE)
    return name, model


def load_reranker(text: str) -> Any:
    """The pymilvus-model rerank function `RAG_RERANKER` names, loaded now so a bad name fails before a search.

    A Hub model is probed first (one short request) so that an unknown id or an unreachable Hub is one clear
    line, not a minute of retries inside sentence-transformers.
    """
    name, model = parse_reranker(text)
    module, install = LOCAL_FUNCTIONS[name]
    for needed in ("pymilvus.model", module):
        if not _installed(needed):
            raise ConfigError(f"RAG_RERANKER uses {name}, which needs the {needed} package", install)
    folder = Path(model).expanduser()
    if not folder.exists():
        if any(model.startswith(p) for p in (".", "/", "~")) or model.count("/") != 1:
            raise ConfigError(f"the reranker model {model!r} is neither a folder nor a Hugging Face model id", _EXAMPLE)
        if not _in_hf_cache(model):
            from embeddings.hub import probe

            probe(
                model,
                "main",
                "config.json",
                fix="connect to the internet once (the model is then cached), give a local reranker folder, "
                "or unset RAG_RERANKER",
                setting="RAG_RERANKER",
                example="cross-encoder/ms-marco-MiniLM-L-6-v2",
                not_found=ConfigError,
            )
    import pymilvus.model.reranker as rerankers

    cls = getattr(rerankers, name)
    try:
        return cls(model_name=str(folder) if folder.exists() else model, device="cpu")
    except Exception as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise ConfigError(
            f"{name} cannot load the reranker model {model!r} ({type(exc).__name__}: {reason})",
            f"check RAG_RERANKER ({_EXAMPLE}), or unset it",
        ) from exc


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except ModuleNotFoundError:
        return False


def _in_hf_cache(model: str) -> bool:
    """sentence-transformers keeps Hub models in the standard Hugging Face cache; a cached one needs no Hub."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(model, "config.json"), str)
    except Exception:
        return False


def rerank(function: Any, query: str, documents: Sequence[Document], k: int) -> list[Document]:
    """The best `k` of `documents` by the reranker's score, best first, each marked with the stage."""
    docs = list(documents)
    if not docs:
        return []
    try:
        results = function(query, [d.page_content for d in docs], top_k=len(docs))
    except Exception as exc:
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:200]
        raise RagError(
            f"the reranker {type(function).__name__} failed ({type(exc).__name__}: {reason})",
            "unset RAG_RERANKER to search without it",
        ) from exc
    ranked: list[Document] = []
    seen: set[int] = set()
    for result in sorted(results, key=lambda r: -float(r.score)):
        index = int(result.index)
        if not 0 <= index < len(docs) or index in seen:
            raise RagError(
                f"the reranker {type(function).__name__} returned index {index} for {len(docs)} passages",
                "use a pymilvus-model rerank function",
            )
        seen.add(index)
        doc = docs[index]
        metadata = dict(doc.metadata)
        metadata["retrieval_score"] = metadata.get("score")
        metadata["score"] = float(result.score)
        metadata["score_stage"] = STAGE
        ranked.append(Document(page_content=doc.page_content, metadata=metadata, id=doc.id))
    return ranked[:k]


def rerank_step(function: Any, k: int) -> Runnable:
    """The rerank as its own LangChain step (run name `rerank`): `{"query", "documents"}` -> documents."""
    from langchain_core.runnables import RunnableLambda

    def _run(inputs: dict[str, Any]) -> list[Document]:
        return rerank(function, inputs["query"], inputs["documents"], k)

    return RunnableLambda(_run, name="rerank")


def search_then_rerank(retriever: Any, query: str, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
    """For `MilvusRetriever`: fetch `max(k, rerank_candidates)` candidates with the same search, then rerank
    them to `k` in a child run named `rerank`, so traces show both stages."""
    k = retriever.k
    if retriever.mode == "hybrid":
        retriever._bm25_available()  # learnt once on the retriever itself, so the copy below inherits it
    wide = retriever.model_copy(update={"k": max(k, retriever.rerank_candidates), "reranker": None})
    candidates = wide._get_relevant_documents(query, run_manager=run_manager)
    step = rerank_step(retriever.reranker, k)
    return step.invoke({"query": query, "documents": candidates}, config={"callbacks": run_manager.get_child()})
