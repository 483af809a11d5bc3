"""The server's own settings, read from the environment (and `.env`) like the project's `Settings`.

Kept apart from `config.settings.Settings` because only the server reads them, and a CLI that never serves
should not learn about tokens and origins.
"""

from __future__ import annotations

import os
from typing import Annotated

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
MAX_BODY_BYTES = 1_000_000
MAX_QUESTION_CHARS = 2000
MAX_K = 50


def _default_threads() -> int:
    # Blocking work (embedding, Milvus, LCEL's sync steps) runs here; a few more threads than cores keeps the
    # cores busy while one thread waits on Milvus Lite's socket, without letting 50 requests each grab one.
    return min(8, (os.cpu_count() or 2) + 2)


class ServerSettings(BaseSettings):
    """`RAG_SERVER_*` variables; the command line (`scripts/serve.py --host/--port`) wins over them."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore", populate_by_name=True)

    host: str = Field(default=DEFAULT_HOST, validation_alias="RAG_SERVER_HOST")
    port: int = Field(default=DEFAULT_PORT, ge=0, le=65535, validation_alias="RAG_SERVER_PORT")
    token: SecretStr | None = Field(default=None, validation_alias="RAG_SERVER_TOKEN")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias="RAG_SERVER_CORS_ORIGINS"
    )
    threads: int = Field(default_factory=_default_threads, ge=1, le=64, validation_alias="RAG_SERVER_THREADS")
    graceful_seconds: float = Field(default=30.0, ge=0, validation_alias="RAG_SERVER_GRACEFUL_SECONDS")

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        """Comma- or space-separated, as people write them in a shell."""
        if isinstance(value, str):
            return [o.strip().rstrip("/") for o in value.replace(",", " ").split() if o.strip()]
        return value

    @field_validator("token", mode="after")
    @classmethod
    def _blank_token_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        return value if value is not None and value.get_secret_value().strip() else None


def get_server_settings(**overrides: object) -> ServerSettings:
    """Read now (not at import time); explicit overrides that are not None win."""
    return ServerSettings(**{k: v for k, v in overrides.items() if v is not None})
