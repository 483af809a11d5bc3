"""The retriever the chain uses: Milvus search in one of two modes, with the score kept on each document.

- `dense`: the query's embedding against the `vector` field (inner product of normalised vectors, i.e.
  cosine similarity: higher is more similar). Through langchain-milvus' `similarity_search_with_score`,
  because `as_retriever()` drops scores.
- `hybrid`: the same dense search and a BM25 search of the built-in `sparse` field (Milvus computes it from
  `text`), fused by weighted reciprocal rank fusion: a chunk scores `sum(weight / (rrf_k + rank))` over the
  lists. Default weights 2,1: dense, the stronger list alone, counts twice (on an independent question set
  equal weights lost to dense alone; see README "Retrieval quality").
  That score is a rank, not a confidence (1/(rrf_k + 1) per list that ranks a chunk first): compare it
  only with other scores of the same search, and never threshold "I don't know" on it.

Hybrid goes through pymilvus `hybrid_search` on the store's own client, not through langchain-milvus'
multi-vector store: langchain-milvus 0.4.0 grows its `vector_field` list on every search (which breaks its
default ranker from the second search on), fetches only 4 candidates per field by default, and a store
opened with two vector fields can no longer run a dense-only search. One dense store serves both modes.

Milvus fuses the lists in one `hybrid_search` call, each list sent as many times as its weight to the
`RRFRanker`, which is exactly weighted RRF; so weights are whole-number ratios (2,1; 1,1; 0.5,0.25), checked
when settings are read (`config.settings.parse_weights`). Milvus' `RRFRanker` takes no weights, and its
`WeightedRanker` fuses *scores* after squashing them with arctan: BM25 scores (unbounded, typically 5-20) all
land within a few hundredths of 1 (and Milvus Lite reports them negated), so a score weight would not mean
what it says and would shift from query to query.

A collection without the BM25 field (created on a server older than Milvus 2.5, e.g. the embedded 2.3.5)
gets dense search in hybrid mode, with one warning per collection and process. One built by an earlier
version with a heading vector is searched as any other (the field is never read) until the next ingest
rebuilds it.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from langchain_core.retrievers import BaseRetriever
from pydantic import ConfigDict, Field, PrivateAttr, field_validator

from config.errors import ConfigError
from config.settings import MODES, RetrievalMode, Settings, get_settings, whole_ratios

if TYPE_CHECKING:
    from langchain_milvus import Milvus

log = logging.getLogger(__name__)

Mode = RetrievalMode
HIDDEN_FIELDS = ("sparse", "vector", "heading_vector")  # heading_vector: in collections of earlier versions
#: Candidates each list contributes to the fusion (at least k).
HYBRID_CANDIDATES = 20
DENSE_PARAMS: dict[str, Any] = {"metric_type": "IP", "params": {}}
BM25_PARAMS: dict[str, Any] = {"metric_type": "BM25", "params": {}}
FILTER_EXAMPLE = 'source like "en/faq/%"'
FILTER_FIX = (
    "write a Milvus boolean expression on source, title, heading, content_hash, chunk_index or n_chunks, "
    f"with double-quoted strings, e.g. {FILTER_EXAMPLE}"
)

_warned_no_bm25: set[tuple[str, str]] = set()


class MilvusRetriever(BaseRetriever):
    """Top-k chunks for a query, each with `metadata["score"]` (higher is better) and `metadata["mode"]`.

    `metadata["mode"]` says which search produced the score: `dense` (cosine similarity) or `hybrid` (RRF
    rank score). It reads `dense` when hybrid was asked for but the collection has no BM25 field.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, validate_assignment=True)

    store: Any = Field(description="a langchain_milvus.Milvus over this project's collection")
    k: int = Field(default=3, ge=1)
    mode: Mode = "dense"
    filter: str | None = Field(default=None, description="Milvus boolean expression on metadata")
    rrf_k: int = Field(default=10, ge=1, description="RRF constant: larger flattens the rank discount")
    weights: tuple[float, float] = Field(default=(2.0, 1.0), description="(dense, BM25) weights in RRF")
    candidates: int = Field(default=HYBRID_CANDIDATES, ge=1, description="hits per list fed to the fusion")
    reranker: Any = Field(default=None, description="a pymilvus-model rerank function (see retrieval.rerank)")
    rerank_candidates: int = Field(default=20, ge=1, description="fused candidates the reranker re-scores")

    _has_bm25: bool | None = PrivateAttr(default=None)

    @field_validator("weights")
    @classmethod
    def _fusable(cls, weights: tuple[float, float]) -> tuple[float, float]:
        """Weights Milvus cannot fuse in one call fail here, when the retriever is made, not at a search."""
        if whole_ratios(weights) is None:
            raise ConfigError(
                f"hybrid weights {weights} are not a whole-number ratio of non-negative numbers",
                "e.g. (2, 1) for dense counting twice, or (1, 1); RAG_HYBRID_WEIGHTS=2,1 in settings",
            )
        return weights

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        if self.reranker is not None:
            from retrieval.rerank import search_then_rerank

            return search_then_rerank(self, query, run_manager)
        mode = "hybrid" if self.mode == "hybrid" and self._bm25_available() else "dense"
        expr = (self.filter or "").strip() or None
        try:
            pairs = self._hybrid(query, expr) if mode == "hybrid" else self._dense(query, expr)
        except Exception as exc:
            if expr is not None and _is_milvus_error(exc):
                self._check_filter(expr)
            raise
        return [_with_score(doc, score, mode) for doc, score in pairs]

    # ---- the two searches ----------------------------------------------------------------------------

    def _dense(self, query: str, expr: str | None) -> list[tuple[Document, float]]:
        kwargs: dict[str, Any] = {"k": self.k}
        if expr is not None:
            kwargs["expr"] = expr
        return self.store.similarity_search_with_score(query, **kwargs)

    def _hybrid(self, query: str, expr: str | None) -> list[tuple[Document, float]]:
        """One `hybrid_search` call: a list of weight w sent w times to Milvus' RRF ranker is exactly weighted
        RRF (a Milvus Lite search costs ~4 ms for a dense list and ~8 ms for BM25, so one call beats one per
        list fused here). Scores are scaled back to `sum(weight / (rrf_k + rank))`."""
        from pymilvus import AnnSearchRequest, RRFRanker

        from index.store import METADATA_FIELDS, SPARSE, TEXT, VECTOR

        client, name = self.store.client, self.store.collection_name
        fetch = max(self.candidates, self.k)
        lists = [(self.store.embeddings.embed_query(query), VECTOR, DENSE_PARAMS), (query, SPARSE, BM25_PARAMS)]
        copies = whole_ratios(self.weights)
        assert copies is not None  # checked when the weights were set
        requests = [
            AnnSearchRequest([data], field, params, fetch, expr=expr)
            for (data, field, params), n in zip(lists, copies, strict=True)
            for _ in range(n)
        ]
        hits = client.hybrid_search(
            name, requests, RRFRanker(self.rrf_k), limit=self.k, output_fields=[TEXT, *METADATA_FIELDS]
        )
        unit = min(w for w in self.weights if w > 0)
        return [(_document(hit), unit * float(hit.distance)) for hit in hits[0]]

    # ---- capabilities and errors ---------------------------------------------------------------------

    def _bm25_available(self) -> bool:
        if self._has_bm25 is None:
            from index.store import describe

            name = self.store.collection_name
            info = describe(self.store.client, name)
            self._has_bm25 = bool(info and info.has_bm25)
            key = (name, str(getattr(self.store, "_connection_args", {}).get("uri", "")))
            if not self._has_bm25 and key not in _warned_no_bm25:
                _warned_no_bm25.add(key)
                log.warning(
                    "collection '%s' has no BM25 field (it was built on a Milvus without BM25 functions, "
                    "before 2.5): hybrid retrieval falls back to dense search. Rebuild the index on Milvus "
                    ">= 2.5 or Milvus Lite (python scripts/ingest.py --rebuild), or set RAG_MODE=dense.",
                    name,
                )
        return self._has_bm25

    def _check_filter(self, expr: str) -> None:
        """After a failed search: is the filter the problem? A query with it alone tells, on any server."""
        from index.store import PK

        try:
            self.store.client.query(self.store.collection_name, filter=expr, limit=1, output_fields=[PK])
        except Exception as exc:
            if not _is_milvus_error(exc):
                raise
            raise ConfigError(
                f"the filter {expr!r} is not a valid Milvus expression ({_first_line(exc)})", FILTER_FIX
            ) from None


def _document(hit: Any) -> Document:
    """A pymilvus hit as langchain-milvus would return it: `text` as content, the other fields as metadata."""
    from index.store import PK, TEXT

    entity = dict(hit["entity"])
    text = entity.pop(TEXT, "")
    entity[PK] = hit.id
    return Document(page_content=text, metadata=entity)


def _with_score(doc: Document, score: float, mode: str) -> Document:
    metadata = {k: v for k, v in doc.metadata.items() if k not in HIDDEN_FIELDS}
    metadata["score"] = float(score)
    metadata["mode"] = mode
    metadata["score_stage"] = mode  # which stage produced `score`: dense, hybrid, or rerank (retrieval.rerank)
    return Document(page_content=doc.page_content, metadata=metadata, id=metadata.get("pk"))


def _is_milvus_error(exc: BaseException) -> bool:
    from pymilvus.exceptions import MilvusException

    return isinstance(exc, MilvusException)


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "message", "") or exc).strip()
    return (text.splitlines() or [type(exc).__name__])[0][:200]


class ScopedMilvusRetriever(MilvusRetriever):
    """A MilvusRetriever over Milvus Lite that holds the index folder only while it searches.

    Milvus Lite lets one process at a time open a folder. A command that keeps it open for a whole session (an
    interactive `ask.py`) or while the model writes an answer would lock out every other `ask.py` and any
    ingest; this one opens it for each search (about 0.1 s once the model is loaded) and lets go, waiting up to
    `lock_wait` seconds while another process has it.
    """

    settings: Any = Field(description="the project's Settings (Milvus Lite)")
    embeddings: Any = Field(description="the LangChain embeddings the index was built with")
    lock_wait: float = Field(default=30.0, ge=0)
    store: Any = None
    name: str | None = "MilvusRetriever"  # the same search, the same name in traces

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        from index.store import open_client, release

        client = open_client(self.settings, wait=self.lock_wait)
        try:
            store = open_store(self.settings, client=client, embeddings=self.embeddings)
            bound = self.model_copy(update={"store": store})
            return MilvusRetriever._get_relevant_documents(bound, query, run_manager=run_manager)
        finally:
            release(self.settings, client)


def open_store(settings: Settings, *, client: Any = None, embeddings: Any = None) -> Milvus:
    """The embedding model and the vector store for the configured collection (over `client` when given)."""
    from embeddings import build_embeddings
    from index.store import open_vectorstore

    embeddings = embeddings or build_embeddings(settings)
    return open_vectorstore(
        settings, embeddings, embedding_model=embeddings.model_id, dim=embeddings.dim or 0, client=client
    )


def build_retriever(
    settings: Settings | None = None,
    *,
    k: int | None = None,
    mode: Mode | None = None,
    filter: str | None = None,
    store: Milvus | None = None,
    per_search: bool = False,
) -> MilvusRetriever:
    """The default retriever: the configured collection; `k`, mode and hybrid fusion from settings unless given.

    `filter` is a Milvus boolean expression on the chunk metadata, e.g. `source like "en/faq/%"`; a
    malformed one raises `ConfigError` at the first search. `per_search=True` (commands on Milvus Lite) holds
    the index folder only while each search runs (`ScopedMilvusRetriever`); the index is checked once now.
    """
    settings = settings or get_settings()
    mode = mode or settings.mode
    if mode not in MODES:
        raise ConfigError(f"unknown retrieval mode {mode!r}", "use one of: " + ", ".join(MODES))
    fields: dict[str, Any] = {
        "k": k or settings.k,
        "mode": mode,
        "filter": filter,
        "rrf_k": settings.rrf_k,
        "weights": settings.hybrid_weight_pair,  # a bad setting fails before the model and the index load
        "reranker": _load_reranker(settings),
        "rerank_candidates": settings.rerank_candidates,
    }
    if per_search and store is None and settings.uses_lite:
        from embeddings import build_embeddings
        from index.store import LOCK_WAIT, open_client, release

        embeddings = build_embeddings(settings)
        client = open_client(settings, wait=LOCK_WAIT)
        try:  # the index exists and fits the model: said now, not at the first search
            open_store(settings, client=client, embeddings=embeddings)
        finally:
            release(settings, client)
        return ScopedMilvusRetriever(settings=settings, embeddings=embeddings, lock_wait=LOCK_WAIT, **fields)
    return MilvusRetriever(store=store if store is not None else open_store(settings), **fields)


def _load_reranker(settings: Settings) -> Any:
    """The configured reranker (RAG_RERANKER), or None: off by default."""
    if not (getattr(settings, "reranker", None) or "").strip():
        return None
    from retrieval.rerank import load_reranker

    return load_reranker(settings.reranker)
