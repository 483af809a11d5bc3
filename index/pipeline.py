"""The ingest as one call: source → loader → splitter → embeddings → Milvus. Scripts and `ask.py` use it."""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from config.settings import Settings
from index import health
from index.ingest import IngestReport, _all_rows, ingest
from index.repair import repair as repair_index
from index.store import LOCK_WAIT, ensure_loaded, open_client, release

if TYPE_CHECKING:
    from langchain_core.documents import Document
    from pymilvus import MilvusClient

    from loaders.splitter import MarkdownSplitter

log = logging.getLogger(__name__)

# Bump when loading or splitting changes what a file turns into, so that every file is indexed again.
PIPELINE_VERSION = "2"


def run_ingest(
    settings: Settings,
    *,
    source: str | None = None,
    glob: str | Sequence[str] | None = None,
    rebuild: bool = False,
    progress: bool = True,
    prune: bool = False,
    repair: bool = False,
    client: MilvusClient | None = None,
    swap_lock: AbstractContextManager[Any] | None = None,
) -> IngestReport:
    """Index `source` (default `settings.source`) files matching `glob` into the configured collection.

    Files that vanished from this source lose their chunks; files indexed from another source stay unless
    `prune` (or `rebuild`) says otherwise, so pointing `--source` elsewhere never empties the index by
    surprise. `repair` (and `rebuild`) first move a damaged Milvus Lite collection aside, kept with a
    timestamp, and build a fresh one. The ingest record beside the database is updated on success.

    `client`: a process that already holds the index (the server) passes its own. It is used and left open,
    because releasing a Milvus Lite client stops the process's in-process Milvus Lite and would cut the
    caller's connection; and nothing is moved aside, since the caller serves those files (check damage first).
    `swap_lock` is held while a `rebuild` renames its collection into place (the server's searches wait).
    """
    from embeddings import build_embeddings, token_window
    from loaders.markdown import MarkdownCorpusLoader
    from loaders.sources import as_patterns, match_paths
    from loaders.splitter import MarkdownSplitter

    source = source or settings.source
    sid = health.source_id(source)
    patterns = as_patterns(glob or settings.glob)
    loader = MarkdownCorpusLoader(
        source,
        patterns,
        cache_dir=settings.cache_dir,
        max_file_bytes=settings.max_file_bytes,
        download_timeout=settings.download_timeout,
        progress=progress,
    )
    splitter = MarkdownSplitter.from_tokenizer(*token_window(settings))
    documents = [_keyed(doc, splitter) for doc in loader.load()]
    embeddings = build_embeddings(settings)
    owned_client = client is None
    moved = repair_index(settings) if (repair or rebuild) and owned_client else []
    record = None if moved else health.read_record(settings)
    client = open_client(settings, wait=LOCK_WAIT) if client is None else client
    try:
        with health.damage_guard(settings):
            if record is not None and not rebuild and client.has_collection(settings.collection):
                ensure_loaded(client, settings.collection)
                lost = health.rows_lost(
                    settings, health.count_rows(client, settings.collection), record, ingesting=True
                )
                if lost:
                    log.warning(lost)
            earlier = {} if record is None else dict(record.files)
            seen = {doc.metadata["source"]: sid for doc in documents}
            health.write_record(settings, _record(settings, record, {**earlier, **seen}, sid, patterns, "running"))
            report = ingest(
                client,
                settings.collection,
                documents,
                split=splitter.split_documents,
                embeddings=embeddings,
                embedding_model=embeddings.model_id,
                dim=embeddings.dim or len(embeddings.embed_query("dimension probe")),
                in_scope=lambda path: bool(match_paths([path], patterns)),
                rebuild=rebuild,
                swap_lock=swap_lock,
                progress=progress,
                skipped=[(s.path, s.reason) for s in loader.stats.skipped],
                owned=None if prune or rebuild else lambda path: earlier.get(path) == sid,
            )
            indexed = {row["source"] for row in _all_rows(client, settings.collection, ["source"])}
            origin = seen if rebuild else {**earlier, **seen}
            done = _record(settings, record, {p: origin.get(p, "") for p in sorted(indexed)}, sid, patterns, "done")
            done.rows = health.count_rows(client, settings.collection)
            health.write_record(settings, done)
    finally:
        if owned_client:
            release(settings, client)
    report.notes.extend(
        f"the damaged index was moved aside to {path} (kept, not deleted); a fresh one was built" for path in moved
    )
    if report.files_kept:
        report.notes.append(_kept_note(report, earlier, sid))
    return report


def _record(
    settings: Settings,
    previous: health.IngestRecord | None,
    files: dict[str, str],
    sid: str,
    patterns: Sequence[str],
    state: str,
) -> health.IngestRecord:
    return health.IngestRecord(
        collection=settings.collection,
        rows=previous.rows if previous is not None else 0,
        files=files,
        source=sid,
        glob=list(patterns),
        finished=time.strftime("%Y-%m-%d %H:%M:%S") if state == "done" else (previous.finished if previous else ""),
        state=state,
        pid=os.getpid(),
    )


def _kept_note(report: IngestReport, earlier: dict[str, str], sid: str) -> str:
    origins = sorted({earlier.get(p) or "an ingest from before sources were recorded" for p in report.kept})
    return (
        f"kept {report.chunks_kept} chunks of {report.files_kept} files that are not in {sid} but were indexed "
        f"from {', '.join(origins)} — pass --prune to remove them, or --rebuild to index this source alone"
    )


def _keyed(doc: Document, splitter: MarkdownSplitter) -> Document:
    """Key a file by what it becomes, not only its bytes: an edited fragment or variable it includes, or a
    new splitter, changes its chunks too."""
    recipe = f"{PIPELINE_VERSION}|{splitter.max_tokens}|{splitter.overlap_tokens}|{doc.metadata['content_hash']}|"
    digest = hashlib.sha256((recipe + doc.page_content).encode()).hexdigest()
    doc.metadata["content_hash"] = digest
    return doc
