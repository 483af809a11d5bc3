"""The ingest as one call: source → loader → splitter → embeddings → Milvus. Scripts and `ask.py` use it."""

from __future__ import annotations

import logging
from collections.abc import Sequence

from rag.ingest import IngestReport, ingest
from rag.settings import Settings
from rag.store import open_client

log = logging.getLogger(__name__)

ALL_FILES = ("**/*.md", "**/*.json")


def run_ingest(
    settings: Settings,
    *,
    source: str | None = None,
    glob: str | Sequence[str] | None = None,
    rebuild: bool = False,
    progress: bool = True,
) -> IngestReport:
    """Index `source` (default `settings.source`) files matching `glob` into the configured collection."""
    from loaders.markdown import MarkdownCorpusLoader
    from loaders.sources import as_patterns, match_paths
    from loaders.splitter import MarkdownSplitter
    from rag.embeddings import build_embeddings

    patterns = as_patterns(glob or settings.glob)
    loader = MarkdownCorpusLoader(
        source or settings.source,
        patterns,
        cache_dir=settings.cache_dir,
        max_file_bytes=settings.max_file_bytes,
        download_timeout=settings.download_timeout,
        progress=progress,
    )
    documents = loader.load()
    embeddings = build_embeddings(settings)
    client = open_client(settings)
    try:
        return ingest(
            client,
            settings.collection,
            documents,
            split=MarkdownSplitter().split_documents,
            embeddings=embeddings,
            embedding_model=embeddings.model_id,
            dim=embeddings.dim or len(embeddings.embed_query("dimension probe")),
            in_scope=lambda path: bool(match_paths([path], patterns)),
            rebuild=rebuild,
            progress=progress,
            skipped=[(s.path, s.reason) for s in loader.stats.skipped],
        )
    finally:
        client.close()
