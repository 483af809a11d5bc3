"""Every failure as JSON with the CLI's one-line message, in OpenAI's error shape, never a traceback.

`{"error": {"message": ..., "type": ..., "code": ...}}` on every endpoint: the openai client reads it on /v1,
and one shape is simpler for everyone else. The status says whose fault it is: the request (400; 422 for an
ingest source the server cannot read; 409 for a second ingest at once), the index (503), DeepSeek (502, or 504
when it did not answer in time), the server itself (500).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from config.errors import ConfigError, EmbeddingModelError, LLMError, NoIndexError, RagError, SourceError, StoreError

log = logging.getLogger(__name__)


@dataclass(eq=False)
class ApiError(Exception):
    status: int
    message: str
    type: str = "invalid_request_error"
    code: str | None = None

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "code": self.code}}


def bad_request(problem: str, fix: str = "", code: str = "bad_request") -> ApiError:
    return ApiError(400, ConfigError(problem, fix).one_line(), "invalid_request_error", code)


def to_api_error(exc: BaseException) -> ApiError:
    """What a failed request tells its client; unexpected errors are logged (the log redacts secrets)."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, RagError):
        return _from_rag_error(exc, exc)
    from chains import to_llm_error

    llm_error = to_llm_error(exc)
    if llm_error is not None:
        return _from_rag_error(llm_error, exc)
    log.error("request failed unexpectedly (%s)", type(exc).__name__, exc_info=exc)
    return ApiError(500, "the server failed to answer this request — see the server log", "server_error", "internal")


def _from_rag_error(error: RagError, original: BaseException) -> ApiError:
    message = error.one_line()
    if isinstance(error, ConfigError):
        return ApiError(400, message, "invalid_request_error", "bad_request")
    if isinstance(error, LLMError):
        if _timed_out(original):
            return ApiError(504, message, "upstream_error", "upstream_timeout")
        return ApiError(502, message, "upstream_error", "upstream_failed")
    if isinstance(error, SourceError):  # an ingest's corpus: the request named something the server cannot read
        return ApiError(422, message, "invalid_request_error", "source_unreadable")
    if isinstance(error, NoIndexError):
        return ApiError(503, message, "service_unavailable", "no_index")
    if isinstance(error, StoreError | EmbeddingModelError):
        return ApiError(503, message, "service_unavailable", "index_unavailable")
    return ApiError(500, message, "server_error", "internal")


def _timed_out(exc: BaseException) -> bool:
    import openai
    from langchain_openai import StreamChunkTimeoutError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, openai.APITimeoutError | StreamChunkTimeoutError):
            return True
        current = current.__cause__ or current.__context__
    return False
