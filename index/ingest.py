"""Incremental ingest keyed by content hash, with the store itself as the record of what is indexed.

Why not `langchain_core.indexing.index()` with a record manager: Milvus `insert` is not idempotent, so a
process killed between the vector-store write and the record-manager update leaves rows the record manager
does not know about, and the next run inserts them again (duplicate primary keys). Here every row carries its
file's `content_hash`, `chunk_index` and `n_chunks`, and chunk ids are derived from them, so the collection
alone says which files are complete: a run skips complete unchanged files without splitting them, inserts
only ids that are missing, and deletes stale rows only after their replacements are written. Killed at any
moment, the previous rows stay searchable and the next run converges to exactly the right chunk set.
"""

from __future__ import annotations

import logging
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from index.store import (
    LEGACY_HEADING_VECTOR,
    METADATA_FIELDS,
    METADATA_INT,
    PK,
    TEXT,
    VECTOR,
    check_model,
    create_collection,
    describe,
    ensure_loaded,
    server_supports_bm25,
)

if TYPE_CHECKING:
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from pymilvus import MilvusClient

log = logging.getLogger(__name__)

REBUILD_SUFFIX = "__rebuild"
OLD_SUFFIX = "__old"
WRITE_BATCH = 512  # one embedding call (see PymilvusEmbeddings) and one insert
QUERY_BATCH = 4096
QUERY_WINDOW = 16384


@dataclass
class IngestReport:
    files_read: int = 0
    files_skipped: int = 0
    files_unchanged: int = 0
    files_empty: int = 0  # nothing to index (headings only, or blank), now or before: neither new nor unchanged
    files_changed: int = 0
    files_removed: int = 0
    chunks_added: int = 0
    chunks_updated: int = 0
    chunks_deleted: int = 0
    chunks_unchanged: int = 0
    seconds: float = 0.0
    skipped: list[tuple[str, str]] = field(default_factory=list)
    files_kept: int = 0  # gone from this source but indexed from another one: kept unless pruned
    chunks_kept: int = 0
    kept: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # what the user should know beyond the counts

    def summary(self) -> str:
        line = (
            f"files: {self.files_read} read, {self.files_skipped} skipped, {self.files_unchanged} unchanged, "
            f"{self.files_empty} empty | "
            f"chunks: {self.chunks_added} added, {self.chunks_updated} updated, "
            f"{self.chunks_deleted} deleted, {self.chunks_unchanged} unchanged | {self.seconds:.1f} s"
        )
        if self.files_kept:
            line += f" | kept {self.chunks_kept} chunks of {self.files_kept} files of another source"
        return line


@dataclass
class _Indexed:
    """What the collection holds for one source file."""

    pks_by_hash: dict[str, set[str]] = field(default_factory=lambda: defaultdict(set))
    n_chunks: dict[str, int] = field(default_factory=dict)

    @property
    def all_pks(self) -> set[str]:
        return set().union(*self.pks_by_hash.values()) if self.pks_by_hash else set()

    def complete(self, content_hash: str) -> bool:
        """The file is indexed at exactly this version, every chunk present, nothing else."""
        return set(self.pks_by_hash) == {content_hash} and len(self.pks_by_hash[content_hash]) == self.n_chunks.get(
            content_hash, -1
        )


def recover(client: MilvusClient, name: str) -> None:
    """Finish or undo a `--rebuild` swap that a killed process left half done."""
    old, tmp = name + OLD_SUFFIX, name + REBUILD_SUFFIX
    if client.has_collection(old):
        if client.has_collection(name):
            client.drop_collection(old)
        else:
            client.rename_collection(old, name)
    if client.has_collection(tmp):
        client.drop_collection(tmp)


def indexed_state(client: MilvusClient, name: str) -> dict[str, _Indexed]:
    state: dict[str, _Indexed] = defaultdict(_Indexed)
    for row in _all_rows(client, name, [PK, "source", "content_hash", "n_chunks"]):
        entry = state[row["source"]]
        entry.pks_by_hash[row["content_hash"]].add(row[PK])
        entry.n_chunks[row["content_hash"]] = int(row["n_chunks"])
    return state


def _all_rows(client: MilvusClient, name: str, fields: list[str]) -> Iterable[dict[str, Any]]:
    """One query when the collection fits in Milvus's query window, an iterator beyond it."""
    rows = client.query(name, filter="", output_fields=fields, limit=QUERY_WINDOW)
    if len(rows) < QUERY_WINDOW:
        yield from rows
        return
    iterator = client.query_iterator(name, batch_size=QUERY_BATCH, filter="", output_fields=fields)
    try:
        while batch := iterator.next():
            yield from batch
    finally:
        iterator.close()


def _row(doc: Document, vector: Sequence[float]) -> dict[str, Any]:
    row: dict[str, Any] = {PK: doc.id, TEXT: doc.page_content, VECTOR: list(vector)}
    for key in METADATA_FIELDS:
        value = doc.metadata.get(key, 0 if key in METADATA_INT else "")
        row[key] = int(value) if key in METADATA_INT else str(value)
    return row


def ingest(
    client: MilvusClient,
    collection: str,
    documents: Iterable[Document],
    *,
    split: Callable[[list[Document]], list[Document]],
    embeddings: Embeddings,
    embedding_model: str,
    dim: int,
    in_scope: Callable[[str], bool],
    rebuild: bool = False,
    swap_lock: AbstractContextManager[Any] | None = None,
    progress: bool = True,
    skipped: Sequence[tuple[str, str]] = (),
    owned: Callable[[str], bool] | None = None,
) -> IngestReport:
    """Bring `collection` to exactly the chunks of `documents` (per-file Documents from a loader).

    `in_scope(source)` tells which indexed sources this run is responsible for: indexed files that are in
    scope but absent from `documents` (and not merely unreadable this time) are deleted — unless `owned`
    says they came from another corpus than this run's: those are kept and counted in `files_kept`, so that
    pointing an ingest at another folder never empties the index by surprise.
    """
    started = time.perf_counter()
    report = IngestReport(skipped=list(skipped), files_skipped=len(skipped))
    recover(client, collection)
    info = None if rebuild else describe(client, collection)
    if info is not None and info.outdated:
        log.warning(
            "collection '%s' has a %s field that this version no longer fills (an earlier version built it): "
            "rebuilding it once without it",
            collection,
            LEGACY_HEADING_VECTOR,
        )
        rebuild, info = True, None
    target = collection + REBUILD_SUFFIX if rebuild else collection
    if info is None:
        info = create_collection(
            client, target, dim=dim, embedding_model=embedding_model, bm25=server_supports_bm25(client)
        )
    check_model(info, embedding_model, dim)
    ensure_loaded(client, target)
    state = {} if rebuild else indexed_state(client, target)

    to_split: list[Document] = []
    seen: set[str] = set()
    for doc in documents:
        report.files_read += 1
        source, content_hash = doc.metadata["source"], doc.metadata["content_hash"]
        seen.add(source)
        indexed = state.get(source)
        if indexed is not None and indexed.complete(content_hash):
            report.files_unchanged += 1
            report.chunks_unchanged += len(indexed.pks_by_hash[content_hash])
        else:
            to_split.append(doc)
    chunks = split(to_split) if to_split else []

    by_source: dict[str, list[Document]] = defaultdict(list)
    for chunk in chunks:
        by_source[chunk.metadata["source"]].append(chunk)
    new_chunks: list[Document] = []
    stale: list[str] = []
    for source in dict.fromkeys(doc.metadata["source"] for doc in to_split):
        file_chunks = by_source.get(source, [])
        old = state[source].all_pks if source in state else set()
        if not file_chunks and not old:
            report.files_empty += 1
            continue
        ids = {c.id for c in file_chunks}
        new_chunks.extend(c for c in file_chunks if c.id not in old)
        stale.extend(sorted(old - ids))
        if old:
            report.files_changed += 1
            report.chunks_updated += min(len(ids), len(old))
            report.chunks_added += max(0, len(ids) - len(old))
            report.chunks_deleted += max(0, len(old) - len(ids))
        else:
            report.chunks_added += len(ids)
    skipped_sources = {path for path, _ in skipped}
    for source, indexed in state.items():
        if source not in seen and source not in skipped_sources and in_scope(source):
            if owned is not None and not owned(source):
                report.files_kept += 1
                report.chunks_kept += len(indexed.all_pks)
                report.kept.append(source)
                continue
            report.files_removed += 1
            report.chunks_deleted += len(indexed.all_pks)
            stale.extend(sorted(indexed.all_pks))

    _write(client, target, new_chunks, embeddings, progress)
    for start in range(0, len(stale), QUERY_BATCH):
        client.delete(target, ids=stale[start : start + QUERY_BATCH])
    client.flush(target)
    if rebuild:
        with swap_lock or nullcontext():  # a server holds its searches while the collections change names
            _swap(client, collection)
    report.seconds = time.perf_counter() - started
    return report


def _write(client: MilvusClient, name: str, chunks: list[Document], embeddings: Embeddings, progress: bool) -> None:
    """Embed and insert in batches, shortest texts together so that padding stays small."""
    if not chunks:
        return
    from tqdm.auto import tqdm

    from embeddings.batching import length_batches

    # One insert in flight while the model embeds the next batch: the model releases the GIL.
    pending: Future[Any] | None = None
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="insert") as pool,
        tqdm(total=len(chunks), desc="embedding", unit="chunk", disable=not progress) as bar,
    ):
        for indices in length_batches([len(c.page_content) for c in chunks], WRITE_BATCH):
            batch = [chunks[i] for i in indices]
            vectors = embeddings.embed_documents([c.page_content for c in batch])
            rows = [_row(c, v) for c, v in zip(batch, vectors, strict=True)]
            if pending is not None:
                pending.result()
            pending = pool.submit(client.insert, name, rows)
            bar.update(len(batch))
        if pending is not None:
            pending.result()


def _swap(client: MilvusClient, name: str) -> None:
    old, tmp = name + OLD_SUFFIX, name + REBUILD_SUFFIX
    if client.has_collection(name):
        client.rename_collection(name, old)
    client.rename_collection(tmp, name)
    if client.has_collection(old):
        client.drop_collection(old)
    ensure_loaded(client, name)
