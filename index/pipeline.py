"""The ingest as one call: source → loader → splitter → embeddings → Milvus. Scripts and `ask.py` use it."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from config.settings import Settings
from index.ingest import IngestReport, ingest
from index.store import open_client, release

if TYPE_CHECKING:
    from langchain_core.documents import Document

    from loaders.splitter import MarkdownSplitter

log = logging.getLogger(__name__)

ALL_FILES = ("**/*.md", "**/*.json")
# Bump when loading or splitting changes what a file turns into, so that every file is indexed again.
PIPELINE_VERSION = "2"


def run_ingest(
    settings: Settings,
    *,
    source: str | None = None,
    glob: str | Sequence[str] | None = None,
    rebuild: bool = False,
    progress: bool = True,
) -> IngestReport:
    """Index `source` (default `settings.source`) files matching `glob` into the configured collection."""
    from embeddings import build_embeddings, token_window
    from loaders.markdown import MarkdownCorpusLoader
    from loaders.sources import as_patterns, match_paths
    from loaders.splitter import MarkdownSplitter

    patterns = as_patterns(glob or settings.glob)
    loader = MarkdownCorpusLoader(
        source or settings.source,
        patterns,
        cache_dir=settings.cache_dir,
        max_file_bytes=settings.max_file_bytes,
        download_timeout=settings.download_timeout,
        progress=progress,
    )
    splitter = MarkdownSplitter.from_tokenizer(*token_window(settings))
    documents = [_keyed(doc, splitter) for doc in loader.load()]
    embeddings = build_embeddings(settings)
    client = open_client(settings)
    try:
        return ingest(
            client,
            settings.collection,
            documents,
            split=splitter.split_documents,
            embeddings=embeddings,
            embedding_model=embeddings.model_id,
            dim=embeddings.dim or len(embeddings.embed_query("dimension probe")),
            in_scope=lambda path: bool(match_paths([path], patterns)),
            rebuild=rebuild,
            progress=progress,
            skipped=[(s.path, s.reason) for s in loader.stats.skipped],
        )
    finally:
        release(settings, client)


def _keyed(doc: Document, splitter: MarkdownSplitter) -> Document:
    """Key a file by what it becomes, not only its bytes: an edited fragment or variable it includes, or a
    new splitter, changes its chunks too."""
    recipe = f"{PIPELINE_VERSION}|{splitter.max_tokens}|{splitter.overlap_tokens}|{doc.metadata['content_hash']}|"
    digest = hashlib.sha256((recipe + doc.page_content).encode()).hexdigest()
    doc.metadata["content_hash"] = digest
    return doc
