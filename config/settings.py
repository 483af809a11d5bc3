"""The one place configuration is read: environment variables, then a `.env` file in the working directory.

Secrets are `SecretStr` so that a settings object can be printed, logged or traced without leaking them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import Literal, get_args

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SOURCE = "https://github.com/milvus-io/milvus-docs/releases/download/v2.4.6-preview/milvus_docs_2.4.x_en.zip"
APP_NAME = "milvus-deepseek-rag"

RetrievalMode = Literal["dense", "hybrid"]
#: The retrieval modes, for argument parsers and checks: written once, here, because settings need them.
MODES: tuple[RetrievalMode, ...] = get_args(RetrievalMode)
#: Most searches one hybrid query may cost: a list of weight w is sent w times to Milvus' RRF ranker.
MAX_REQUESTS = 6


def _xdg(var: str, fallback: str) -> Path:
    base = os.environ.get(var) or str(Path.home() / fallback)
    return Path(base) / APP_NAME


class Settings(BaseSettings):
    """Every setting of the project; the README's settings table lists the same names."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    # --- LLM (DeepSeek through the OpenAI protocol) ---
    deepseek_api_key: SecretStr | None = Field(default=None, validation_alias="DEEPSEEK_API_KEY")
    deepseek_base_url: str = Field(default="https://api.deepseek.com", validation_alias="DEEPSEEK_BASE_URL")
    deepseek_model: str = Field(default="deepseek-chat", validation_alias="DEEPSEEK_MODEL")
    deepseek_temperature: float = Field(default=0.0, validation_alias="DEEPSEEK_TEMPERATURE")
    deepseek_timeout: float = Field(default=60.0, validation_alias="DEEPSEEK_TIMEOUT")
    deepseek_max_retries: int = Field(default=2, validation_alias="DEEPSEEK_MAX_RETRIES")

    # --- Vector store ---
    milvus_uri: str | None = Field(default=None, validation_alias="MILVUS_URI")
    milvus_token: SecretStr | None = Field(default=None, validation_alias="MILVUS_TOKEN")
    collection: str = Field(default="my_rag_collection", validation_alias="MILVUS_COLLECTION")

    # --- Corpus and ingest ---
    source: str = Field(default=DEFAULT_SOURCE, validation_alias="RAG_SOURCE")
    glob: str = Field(default="en/faq/*.md", validation_alias="RAG_GLOB")
    max_file_bytes: int = Field(default=2_000_000, validation_alias="RAG_MAX_FILE_BYTES")
    download_timeout: float = Field(default=30.0, validation_alias="RAG_DOWNLOAD_TIMEOUT")

    # --- Embedding ---
    embedding: str = Field(default="minilm", validation_alias="RAG_EMBEDDING")
    embedding_batch_size: int = Field(default=32, validation_alias="RAG_EMBEDDING_BATCH_SIZE")
    # A Hub model's branch, tag or commit (default: the pinned one for known models, else "main").
    embedding_revision: str | None = Field(default=None, validation_alias="RAG_EMBEDDING_REVISION")

    # --- Retrieval ---
    k: int = Field(default=3, ge=1, le=50, validation_alias="RAG_K")
    # hybrid beats dense on scripts/evaluate.py (see README); a server without BM25 falls back to dense.
    mode: RetrievalMode = Field(default="hybrid", validation_alias="RAG_MODE")
    # Hybrid fusion: reciprocal rank fusion, sum of weight / (rrf_k + rank) over the dense and BM25 lists.
    # A small rrf_k lets the top of each list decide; dense, the stronger list alone, weighs more.
    rrf_k: int = Field(default=10, ge=1, validation_alias="RAG_RRF_K")
    # (dense, bm25), in whole-number ratios (2,1; 1,1; 0.5,0.25): Milvus fuses them in one call (parse_weights).
    hybrid_weights: str = Field(default="2,1", validation_alias="RAG_HYBRID_WEIGHTS")
    # Optional cross-encoder over the fused candidates: `[Function:]model`, e.g. cross-encoder/ms-marco-MiniLM-L-6-v2.
    reranker: str | None = Field(default=None, validation_alias="RAG_RERANKER")
    rerank_candidates: int = Field(default=20, ge=1, validation_alias="RAG_RERANK_CANDIDATES")

    # --- Questions in other languages ---
    # auto: a non-English question or a follow-up is rewritten into a standalone English search query (one
    # model call); always: every question is; off: none is.
    query_rewrite: Literal["auto", "always", "off"] = Field(default="auto", validation_alias="RAG_QUERY_REWRITE")

    # --- Folders ---
    data_dir_override: Path | None = Field(default=None, validation_alias="RAG_DATA_DIR")
    cache_dir_override: Path | None = Field(default=None, validation_alias="RAG_CACHE_DIR")

    @field_validator("hybrid_weights")
    @classmethod
    def _fusable(cls, value: str) -> str:
        """A bad RAG_HYBRID_WEIGHTS fails when settings are read, with its own fix, not at the first search."""
        parse_weights(value)
        return value

    @property
    def hybrid_weight_pair(self) -> tuple[float, float]:
        """RAG_HYBRID_WEIGHTS as (dense, bm25); a `ConfigError` when Milvus cannot fuse them in one call."""
        return parse_weights(self.hybrid_weights)

    @cached_property
    def data_dir(self) -> Path:
        """Where the Milvus Lite database and the ingest record live."""
        return (self.data_dir_override or _xdg("XDG_DATA_HOME", ".local/share")).expanduser()

    @cached_property
    def cache_dir(self) -> Path:
        """Downloads and the exported embedding model: safe to delete, rebuilt on demand."""
        return (self.cache_dir_override or _xdg("XDG_CACHE_HOME", ".cache")).expanduser()

    @property
    def uses_lite(self) -> bool:
        return not self.milvus_uri

    @property
    def milvus_lite_path(self) -> Path:
        return self.data_dir / "milvus.db"


def parse_weights(text: str) -> tuple[float, float]:
    """`dense,bm25`: non-negative, not both zero, in a whole-number ratio (see `whole_ratios`).

    A third number is accepted only if it is 0: `.env` files written for the previous default `2,1,0` carry
    the weight of a heading list that no longer exists.
    """
    from config.errors import ConfigError

    fix = "for example RAG_HYBRID_WEIGHTS=2,1 (dense counts twice) or 1,1"
    parts = [p.strip() for p in str(text).replace(";", ",").split(",")]
    try:
        if len(parts) not in (2, 3):
            raise ValueError
        numbers = [float(p) for p in parts]
    except ValueError:
        raise ConfigError(f"RAG_HYBRID_WEIGHTS must be two numbers 'dense,bm25', got {text!r}", fix) from None
    if len(numbers) == 3:
        if numbers.pop() != 0:
            raise ConfigError(
                f"RAG_HYBRID_WEIGHTS has a third number (the heading list's weight), which was removed: {text!r}",
                f"keep the first two, e.g. RAG_HYBRID_WEIGHTS={parts[0]},{parts[1]}",
            )
    if min(numbers) < 0 or sum(numbers) == 0:
        raise ConfigError(f"RAG_HYBRID_WEIGHTS must be non-negative and not both zero, got {text!r}", fix)
    if whole_ratios(numbers) is None:
        raise ConfigError(
            f"RAG_HYBRID_WEIGHTS {text!r} is not a whole-number ratio of at most {MAX_REQUESTS} searches "
            "(Milvus fuses a list of weight w by searching it w times)",
            fix + "; 0.5,0.25 is 2,1",
        )
    dense, keyword = numbers
    return dense, keyword


def whole_ratios(weights: Sequence[float]) -> tuple[int, ...] | None:
    """How many times each list goes to Milvus' RRF ranker for these weights: (2, 1) -> (2, 1), (0.5, 0.25) ->
    (2, 1), (0, 1) -> (0, 1); None when the ratios are not whole numbers or cost more than MAX_REQUESTS
    searches. Milvus' `RRFRanker` takes no weights, so sending a list twice is how it counts twice."""
    positive = [w for w in weights if w > 0]
    if not positive or min(weights) < 0:
        return None
    unit = min(positive)
    copies = tuple(round(w / unit) for w in weights)
    if any(abs(w / unit - n) > 1e-9 for w, n in zip(weights, copies, strict=True)) or sum(copies) > MAX_REQUESTS:
        return None
    return copies


MAX_K = 50
"""Most passages one answer may use: every passage is one more chunk (up to 256 tokens) in the prompt."""


def check_k(k: object, *, name: str = "k") -> int:
    """`k` as an int within 1..MAX_K, or one ConfigError that says so (CLI, chain config and server alike)."""
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        from config.errors import ConfigError

        raise ConfigError(f"{name} must be a whole number from 1 to {MAX_K}, got {k!r}", f"e.g. {name}=5")
    return k


def get_settings(**overrides: object) -> Settings:
    """Read settings now (not at import time), with explicit overrides taking precedence.

    A bad value (RAG_K=abc, DEEPSEEK_TIMEOUT=-) is one ConfigError naming the variable, not pydantic's report.
    """
    from pydantic import ValidationError

    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        from config.errors import ConfigError

        error = exc.errors()[0]
        field = str(error["loc"][0]) if error.get("loc") else "a setting"
        alias = Settings.model_fields[field].validation_alias if field in Settings.model_fields else None
        name = alias if isinstance(alias, str) else field
        secret = Settings.model_fields.get(field) and "Secret" in str(Settings.model_fields[field].annotation)
        got = "" if secret else f" (got {error.get('input')!r})"
        raise ConfigError(
            f"{name} is invalid: {error['msg']}{got}",
            f"fix {name} in the environment or .env (see .env.example)",
        ) from None
