"""The server's retriever: the project's MilvusRetriever, which searches again once an ingest has settled.

An ingest inside the server (server.ingest) can make a search fail for an instant: a `--rebuild` renames
its new collection into place at the very end, and in between the name is missing or not yet loaded. A
question must not fail for that, so a search that failed while an ingest ran (or across its end) looks
whether the collection is searchable: if not, it waits for the ingest to finish; either way it searches
once more, with the retriever the server serves by then. Any other failure comes back as before.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from typing import Any

from langchain_core.callbacks import CallbackManagerForRetrieverRun
from langchain_core.documents import Document
from pydantic import Field

from config.errors import NoIndexError
from retrieval.retriever import MilvusRetriever

log = logging.getLogger(__name__)


class ServedRetriever(MilvusRetriever):
    """Kept a field (not a private attribute) so that per-call copies (`k`, `filter`) keep the gate."""

    gate: Any = Field(default=None, exclude=True, description="server.ingest.IngestGate")

    def _get_relevant_documents(self, query: str, *, run_manager: CallbackManagerForRetrieverRun) -> list[Document]:
        gate = self.gate
        generation = gate.generation if gate is not None else 0
        try:
            with gate.searching() if gate is not None else nullcontext():
                return super()._get_relevant_documents(query, run_manager=run_manager)
        except Exception:
            if gate is None or not gate.disturbed_since(generation):
                raise
            if not _searchable(self.store.client, self.store.collection_name):
                log.info("a search met the collection swap of an ingest; searching again once it has finished")
                gate.wait_settled()
        latest = gate.current() or self
        if latest is not self:
            latest = latest.model_copy(update={"k": self.k, "filter": self.filter})
        with gate.searching():
            return MilvusRetriever._get_relevant_documents(latest, query, run_manager=run_manager)

    def _bm25_available(self) -> bool:
        """During a swap the collection may be missing: that is no reason to settle on dense search (and warn
        that the index lacks BM25); the search fails instead, and is run again once the ingest has finished."""
        if self._has_bm25 is None and self.gate is not None and self.gate.running:
            from index.store import describe

            if describe(self.store.client, self.store.collection_name) is None:
                raise NoIndexError(f"collection '{self.store.collection_name}' is being swapped in by an ingest")
        return super()._bm25_available()


def served(retriever: MilvusRetriever, gate: Any) -> ServedRetriever:
    """The same retriever (store, k, mode, fusion, reranker), searching through `gate`. Its runs keep the name
    MilvusRetriever in traces."""
    fields = {name: getattr(retriever, name) for name in MilvusRetriever.model_fields}
    return ServedRetriever(**{**fields, "name": retriever.name or "MilvusRetriever"}, gate=gate)


def _searchable(client: Any, name: str) -> bool:
    try:
        return bool(client.has_collection(name)) and "Loaded" in str(client.get_load_state(name).get("state", ""))
    except Exception:  # noqa: BLE001 - a client that cannot tell is as good as "not now"
        return False
