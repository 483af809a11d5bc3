"""The one open index (and chain) that every request shares.

Milvus Lite lets a single process hold a data folder, so the server opens it once and serves every request
from that one store; blocking work (the embedding model, Milvus calls, LCEL's sync steps) runs in one
bounded thread pool, which the app installs as the event loop's default executor, where LangChain's async
path sends its sync steps too.

A server started before the index exists (or while an ingest holds the folder) does not give up: it lets go
of the folder, reports why on /health, and tries again on later requests, at most every few seconds.

An ingest sent to the server (server.ingest) runs in the same pool with the server's own client; afterwards
the service serves a fresh store over the collection, which a `--rebuild` has replaced by then.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from config.errors import ConfigError, NoIndexError, RagError, StoreError
from server.ingest import IngestClaim, IngestGate

if TYPE_CHECKING:
    from langchain_core.runnables import Runnable
    from pymilvus import MilvusClient

    from config.settings import Settings
    from index.ingest import IngestReport
    from retrieval.retriever import MilvusRetriever

log = logging.getLogger(__name__)

RETRY_SECONDS = 3.0
NO_KEY_NOTICE = (
    "DEEPSEEK_API_KEY is not set on the server, so here are the best passages instead of an answer — "
    "set it in the server's environment or .env to get answers"
)


class RagService:
    """Owns the store, the retriever, the chain and the pool; `open()` and `close()` bracket its life."""

    def __init__(self, settings: Settings, *, threads: int = 4) -> None:
        self.settings = settings
        self.pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="rag")
        self.retriever: MilvusRetriever | None = None
        self.chain: Runnable | None = None
        self.problem: RagError | None = None
        self._embeddings: Any = None
        self._lock = threading.Lock()
        self._last_attempt = 0.0
        self._closed = False
        self.gate = IngestGate(lambda: self.retriever)
        self.ingest_claim = IngestClaim()
        self._retired: list[Any] = []  # stores replaced after an ingest; requests in flight may still use them

    # --- lifecycle (blocking; call from a thread when a loop is running) ---
    def open(self) -> bool:
        """Open the index if it is not open yet; False (with `problem` set) when it cannot be opened now."""
        with self._lock:
            if self.retriever is not None:
                return True
            if self._closed:
                return False
            if self.gate.running:  # an ingest builds the index in this process: opening now could cut it off
                self.problem = NoIndexError(
                    "no index yet: an ingest on this server is building it", "ask again when it has finished"
                )
                return False
            self._last_attempt = time.monotonic()
            try:
                self._open()
            except RagError as exc:
                self.problem = exc
                self._let_go()
                log.warning("the index is not available yet: %s", exc.one_line())
                return False
            self.problem = None
            return True

    def _open(self, client: MilvusClient | None = None) -> None:
        from chains import build_retriever
        from embeddings import build_embeddings
        from index.store import open_vectorstore
        from server.retriever import served

        if self._embeddings is None:
            self._embeddings = build_embeddings(self.settings)
        emb = self._embeddings
        store = open_vectorstore(self.settings, emb, embedding_model=emb.model_id, dim=emb.dim or 0, client=client)
        retriever = served(build_retriever(self.settings, store=store), self.gate)
        chain = None
        if self.has_key:
            from chains import build_rag_chain

            chain = build_rag_chain(retriever=retriever, settings=self.settings)
        self.retriever, self.chain = retriever, chain

    def _let_go(self) -> None:
        """After a failed open the Milvus Lite folder must not stay locked: an ingest may need it."""
        from index.store import release

        stores = [getattr(self.retriever, "store", None), *self._retired]
        self.retriever, self.chain = None, None
        self._retired.clear()
        release(self.settings, *[store.client for store in stores if store is not None])

    def close(self) -> None:
        """Let an ingest under way finish, then release the index cleanly (Milvus Lite flushes and unlocks the
        folder) and stop the pool."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if self.gate.running:
            log.info("waiting for the ingest under way to finish before closing the index")
        self.pool.shutdown(wait=True, cancel_futures=True)
        with self._lock:
            if self.retriever is not None or self._retired:
                self._let_go()

    # --- an ingest sent to the server (blocking: runs in the pool) ---
    def ingest(self, *, collection: str, **options: Any) -> IngestReport:
        """`run_ingest` in this process, which holds the folder. The caller claimed `ingest_claim` first; it is
        given back here, when the ingest ends, whatever became of the request that asked for it."""
        from index.pipeline import run_ingest
        from server.ingest import refuse_damaged

        try:
            serving = collection == self.settings.collection
            settings = self.settings if serving else self.settings.model_copy(update={"collection": collection})
            with self._lock:  # after any open attempt in flight; none starts until the ingest ends
                if self._closed:
                    raise StoreError("the server is stopping", "run the ingest again once it has restarted")
                self.gate.begin()
                store = getattr(self.retriever, "store", None)
            try:
                if store is None:  # nothing open here: the ordinary ingest, which opens and lets go itself
                    return run_ingest(settings, progress=False, **options)
                if options.get("repair") or options.get("rebuild"):
                    refuse_damaged(store.client, settings, os.getpid())
                return run_ingest(
                    settings, progress=False, client=store.client, swap_lock=self.gate.swapping(), **options
                )
            finally:
                with self._lock:
                    try:
                        if serving and not self._closed:
                            self._reopen()
                    finally:
                        self.gate.end()
        finally:
            self.ingest_claim.release()

    def _reopen(self) -> None:
        """Serve a fresh store over the collection: after a `--rebuild` it is another collection under the same
        name, which a store opened before may describe wrongly (fields, BM25). The old one stays open for the
        requests still using it."""
        old = self.retriever
        try:
            self._open(client=old.store.client if old is not None else None)
        except Exception as exc:  # noqa: BLE001 - the ingest's own outcome is what the request reports
            problem = exc if isinstance(exc, RagError) else StoreError(f"the index cannot be opened ({exc})")
            log.warning("after the ingest: %s", problem.one_line(), exc_info=not isinstance(exc, RagError))
            if old is None:
                self.problem = problem
                self._let_go()
            return
        self.problem = None
        if old is not None:
            self._retired.append(old.store)

    # --- what requests use ---
    @property
    def has_key(self) -> bool:
        key = self.settings.deepseek_api_key
        return key is not None and bool(key.get_secret_value().strip())

    async def ready_retriever(self, *, retry_now: bool = False) -> MilvusRetriever:
        """The retriever, opening the index first if an earlier attempt failed long enough ago (or `retry_now`:
        a health probe always looks afresh)."""
        if self.retriever is None:
            if retry_now or time.monotonic() - self._last_attempt >= RETRY_SECONDS:
                await asyncio.get_running_loop().run_in_executor(self.pool, self.open)
            if self.retriever is None:
                raise self.problem or StoreError("the index is not open", "restart the server")
        return self.retriever

    async def ready_chain(self) -> Runnable:
        await self.ready_retriever()
        if self.chain is None:
            from chains.llm import KEY_FIX
            from server.errors import ApiError

            message = ConfigError("DEEPSEEK_API_KEY is not set on the server", KEY_FIX).one_line()
            raise ApiError(503, message, "service_unavailable", "no_api_key")
        return self.chain

    async def retrieve(self, question: str, *, k: int, filter: str | None) -> list[dict[str, Any]]:
        """The top passages, numbered like the chain numbers them; no model call."""
        from chains import to_sources

        retriever = await self.ready_retriever()
        if k != retriever.k or filter is not None:
            retriever = retriever.model_copy(update={"k": k, "filter": filter})  # the store is shared
        config = {"run_name": "retrieve"}
        docs = await asyncio.get_running_loop().run_in_executor(self.pool, retriever.invoke, question, config)
        return [dict(s) for s in to_sources(docs)]

    async def health(self) -> dict[str, Any]:
        retriever = await self.ready_retriever(retry_now=True)
        return await asyncio.get_running_loop().run_in_executor(self.pool, self._describe, retriever)

    def _describe(self, retriever: MilvusRetriever) -> dict[str, Any]:
        """Like a search, a probe that meets an ingest's collection swap waits for it and looks again."""
        generation = self.gate.generation
        try:
            return self._describe_once(retriever)
        except Exception:
            if not self.gate.disturbed_since(generation):
                raise
            self.gate.wait_settled()
        return self._describe_once(self.retriever or retriever)

    def _describe_once(self, retriever: MilvusRetriever) -> dict[str, Any]:
        from index.store import describe

        store = retriever.store
        info = describe(store.client, self.settings.collection)
        stats = store.client.get_collection_stats(self.settings.collection)
        return {
            "status": "ok",
            "collection": self.settings.collection,
            "chunks": int(stats.get("row_count", 0)),
            "embedding_model": info.embedding_model if info else None,
            "retrieval_mode": retriever.mode,
            "llm_model": self.settings.deepseek_model,
            "answers": self.has_key,
        }
