"""The corpus side of the RAG: where the docs come from, how they become Documents, how those are chunked."""

from loaders.markdown import LoadStats, MarkdownCorpusLoader, SkippedFile, json_to_text, markdown_to_text
from loaders.sources import ALL_GLOB, Corpus, FolderCorpus, ZipCorpus, download_zip, match_paths, open_corpus
from loaders.splitter import HEADING_SEPARATOR, MarkdownSplitter, Tokenizer, chunk_id

__all__ = [
    "ALL_GLOB",
    "HEADING_SEPARATOR",
    "Corpus",
    "FolderCorpus",
    "LoadStats",
    "MarkdownCorpusLoader",
    "MarkdownSplitter",
    "SkippedFile",
    "Tokenizer",
    "ZipCorpus",
    "chunk_id",
    "download_zip",
    "json_to_text",
    "markdown_to_text",
    "match_paths",
    "open_corpus",
]
