"""Errors a user can act on: each carries what went wrong and how to fix it, printed as one line by the CLIs."""

from __future__ import annotations


class RagError(Exception):
    """Base for problems the user can fix; `exit_code` is what a script exits with."""

    exit_code = 1

    def __init__(self, problem: str, fix: str = "") -> None:
        self.problem = problem
        self.fix = fix
        super().__init__(self.one_line())

    def one_line(self) -> str:
        return f"{self.problem} — {self.fix}" if self.fix else self.problem


class ConfigError(RagError):
    """A setting or argument is wrong."""

    exit_code = 2


class SourceError(RagError):
    """The corpus source cannot be read (missing path, bad zip, failed download, nothing matched)."""


class EmbeddingModelError(RagError):
    """The embedding model cannot be loaded or does not match what the index was built with."""


class StoreError(RagError):
    """Milvus cannot be opened or reached, or the collection does not fit this configuration."""


class IndexLockedError(StoreError):
    """Another process holds the Milvus Lite data folder."""


class DamagedIndexError(StoreError):
    """The Milvus Lite files of the index cannot be read: repairable with `ingest.py --repair`."""


class NoIndexError(StoreError):
    """Nothing has been ingested yet."""


class LLMError(RagError):
    """The chat model endpoint refused or failed the request."""
