"""The chat model: `ChatOpenAI` pointed at DeepSeek, and what its failures mean to a user.

Why `ChatOpenAI` and not `langchain_deepseek.ChatDeepSeek`: the project pins the OpenAI-protocol client and
passes it the DeepSeek key and URL explicitly; `ChatOpenAI` drops `deepseek-reasoner`'s `reasoning_content`,
which is what the answer needs (the reasoning must never reach it, nor sit in every trace). Pass
`llm=ChatDeepSeek(...)` to `build_rag_chain` to keep the reasoning in `additional_kwargs` instead.

Retries are the openai SDK's own (408/409/429/5xx, exponential backoff, `max_retries`): nothing here loops.
"""

from __future__ import annotations

import os
import re
import socket
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import openai
from langchain_core.runnables import ConfigurableField, Runnable
from langchain_openai import ChatOpenAI, StreamChunkTimeoutError
from pydantic import BaseModel, SecretStr

from config.errors import ConfigError, LLMError
from config.settings import Settings, get_settings

KEY_FIX = "set DEEPSEEK_API_KEY (environment or .env) to a key from https://platform.deepseek.com/api_keys"
STATUS_FIX = "try again in a minute; https://status.deepseek.com shows DeepSeek's incidents"

# Headers the openai SDK adds from OPENAI_* environment variables; they describe an OpenAI account.
_OPENAI_ACCOUNT_HEADERS = frozenset({"openai-organization", "openai-project"})


def build_llm(settings: Settings | None = None) -> ChatOpenAI:
    """ChatOpenAI on DeepSeek, configured only from `settings` (never from OPENAI_* variables)."""
    settings = settings or get_settings()
    key = settings.deepseek_api_key
    if key is None or not key.get_secret_value().strip():
        raise ConfigError("DEEPSEEK_API_KEY is not set", KEY_FIX)
    request_hook, async_request_hook = _deepseek_only_headers(key, settings.deepseek_base_url)
    return ChatOpenAI(
        model=settings.deepseek_model,
        base_url=settings.deepseek_base_url,
        api_key=key,
        temperature=settings.deepseek_temperature,
        timeout=settings.deepseek_timeout,
        max_retries=settings.deepseek_max_retries,
        stream_usage=True,
        # DeepSeek speaks Chat Completions only, never the Responses API.
        use_responses_api=False,
        # A busy DeepSeek streams `: keep-alive` comments, which reset the HTTP read timeout forever;
        # this bounds the wait for actual content (async streaming only, a langchain-openai feature).
        stream_chunk_timeout=settings.deepseek_timeout,
        http_client=openai.DefaultHttpxClient(event_hooks={"request": [request_hook]}),
        http_async_client=openai.DefaultAsyncHttpxClient(event_hooks={"request": [async_request_hook]}),
    )


def _deepseek_only_headers(
    key: SecretStr, base_url: str
) -> tuple[Callable[[Any], None], Callable[[Any], Awaitable[None]]]:
    """Request hooks that keep OpenAI credentials out of requests to DeepSeek.

    The openai SDK reads OPENAI_ORG_ID / OPENAI_PROJECT_ID into headers, and OPENAI_CUSTOM_HEADERS into
    headers too, where an `Authorization` line even replaces the explicit `api_key`. Someone who uses
    OpenAI as well has those set; DeepSeek must see only its own key. Requests to any other origin (inside
    langchain-core's `langsmith_gateway()` the model talks to the gateway) are left alone, so the DeepSeek
    key never goes there.
    """
    deepseek = _origin(base_url)
    custom = os.environ.get("OPENAI_CUSTOM_HEADERS", "")
    dropped = _OPENAI_ACCOUNT_HEADERS | {
        line.partition(":")[0].strip().lower() for line in custom.splitlines() if ":" in line
    }
    bearer = f"Bearer {key.get_secret_value()}"

    def hook(request: Any) -> None:  # an httpx request, just before it is sent (retries included)
        if _origin(str(request.url)) != deepseek:
            return
        for name in dropped:
            request.headers.pop(name, None)
        request.headers["Authorization"] = bearer

    async def async_hook(request: Any) -> None:
        hook(request)

    return hook, async_hook


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port or {"http": 80, "https": 443}.get(parts.scheme)


def configurable_llm(llm: Runnable) -> Runnable:
    """Let callers switch model and temperature per call: `configurable={"model": ..., "temperature": ...}`.

    Applies to any pydantic chat model with `model_name`/`model` and `temperature` fields (ChatOpenAI,
    ChatDeepSeek, ...); other runnables are returned unchanged.
    """
    if not isinstance(llm, BaseModel) or not hasattr(llm, "configurable_fields"):
        return llm
    fields = type(llm).model_fields
    specs: dict[str, ConfigurableField] = {}
    model_field = next((name for name in ("model_name", "model") if name in fields), None)
    if model_field:
        specs[model_field] = ConfigurableField(id="model", name="Model", description="Chat model name")
    if "temperature" in fields:
        specs["temperature"] = ConfigurableField(
            id="temperature", name="Temperature", description="Sampling temperature"
        )
    return llm.configurable_fields(**specs) if specs else llm


# --- errors a user can act on ---
_SECRETS = re.compile(r"sk-[A-Za-z0-9_-]+|\*{2,}\S*|Bearer\s+\S+", re.IGNORECASE)


def to_llm_error(exc: BaseException) -> LLMError | None:
    """The `LLMError` (one line + fix) for a failure of the chat endpoint, or None if `exc` is something else.

    Looks through `__cause__`/`__context__`, so wrapped errors map too. Messages name the endpoint host and
    DeepSeek's status, never the key nor DeepSeek's error text (a 401 body echoes the key's last characters);
    only 400/422 quote DeepSeek's hint, with anything key-like removed.
    """
    for error in _causes(exc):
        if isinstance(error, openai.APIStatusError):
            return _status_error(error)
        if isinstance(error, openai.APITimeoutError | StreamChunkTimeoutError):
            return LLMError(
                f"the DeepSeek API{_at(error)} did not answer in time",
                "try again, or raise DEEPSEEK_TIMEOUT (seconds) if answers are long",
            )
        if isinstance(error, openai.APIConnectionError):
            return _connection_error(error)
        if isinstance(error, openai.APIResponseValidationError):
            return LLMError(
                f"the endpoint{_at(error)} did not answer like an OpenAI-style chat completions API",
                "check that DEEPSEEK_BASE_URL points at DeepSeek (https://api.deepseek.com)",
            )
        if isinstance(error, openai.APIError):
            # An error event inside a stream that had already started.
            return LLMError(f"the DeepSeek API{_at(error)} failed in the middle of the answer", STATUS_FIX)
    return None


def _status_error(error: openai.APIStatusError) -> LLMError:
    status = error.status_code
    where = _at(error)
    if status == 401:
        return LLMError(f"the DeepSeek API{where} rejected the API key (401 Authentication Fails)", KEY_FIX)
    if status == 402:
        return LLMError(
            f"the DeepSeek account has insufficient balance (402){where}",
            "top up at https://platform.deepseek.com/top_up",
        )
    if status in (400, 422):
        kind = "Invalid Format" if status == 400 else "Invalid Parameters"
        hint = _hint(error)
        return LLMError(
            f"the DeepSeek API{where} rejected the request ({status} {kind}{': ' + hint if hint else ''})",
            "check DEEPSEEK_MODEL (deepseek-chat or deepseek-reasoner) and DEEPSEEK_TEMPERATURE (0 to 2)",
        )
    if status == 404:
        return LLMError(
            f"no chat completions endpoint{where} (404)",
            "check DEEPSEEK_BASE_URL (https://api.deepseek.com)",
        )
    if status == 429:
        return LLMError(
            f"the DeepSeek API{where} is still rate limiting after retries (429 Rate Limit Reached)",
            "wait a minute and try again, send fewer requests at once, or raise DEEPSEEK_MAX_RETRIES",
        )
    if status == 503:
        return LLMError(f"the DeepSeek API{where} is overloaded, even after retries (503)", STATUS_FIX)
    if status >= 500:
        return LLMError(
            f"the DeepSeek API{where} had a server error, even after retries ({status})", STATUS_FIX
        )
    return LLMError(
        f"the DeepSeek API{where} refused the request ({status})", KEY_FIX if status == 403 else ""
    )


def _connection_error(error: openai.APIConnectionError) -> LLMError:
    host = _host(error)
    causes = list(_causes(error))
    if any(isinstance(c, socket.gaierror) for c in causes):
        return LLMError(
            f"cannot resolve the host of DEEPSEEK_BASE_URL ({host})",
            "check DEEPSEEK_BASE_URL for typos, and your network or DNS",
        )
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return LLMError(
            f"connection refused by {host}",
            "check DEEPSEEK_BASE_URL (https://api.deepseek.com) and that the server is running",
        )
    return LLMError(
        f"cannot connect to {host} ({type(causes[-1]).__name__})",
        "check your network, proxy settings and DEEPSEEK_BASE_URL",
    )


def _causes(exc: BaseException):
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _host(error: BaseException) -> str:
    """scheme://host[:port] of the failed request: no path, query or credentials."""
    request = getattr(error, "request", None)
    url = getattr(request, "url", None)
    if url is None:
        return "the DeepSeek API"
    port = f":{url.port}" if url.port else ""
    return f"{url.scheme}://{url.host}{port}"


def _at(error: BaseException) -> str:
    host = _host(error)
    return f" at {host}" if host.startswith("http") else ""


def _hint(error: openai.APIStatusError) -> str:
    body = error.body  # the SDK already unwrapped DeepSeek's {"error": {...}}
    message = body.get("message") if isinstance(body, dict) else None
    if not isinstance(message, str):
        return ""
    return _SECRETS.sub("[redacted]", " ".join(message.split()))[:200]
