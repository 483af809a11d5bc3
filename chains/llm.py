"""The chat model: `ChatOpenAI` pointed at DeepSeek, and what its failures mean to a user.

Why `ChatOpenAI` and not `langchain_deepseek.ChatDeepSeek`: the project pins the OpenAI-protocol client and
passes it the DeepSeek key and URL explicitly; `ChatOpenAI` drops `deepseek-reasoner`'s `reasoning_content`,
which is what the answer needs (the reasoning must never reach it, nor sit in every trace). Pass
`llm=ChatDeepSeek(...)` to `build_rag_chain` to keep the reasoning in `additional_kwargs` instead.

Retries are the openai SDK's own (408/409/429/5xx, exponential backoff, `max_retries`): nothing here loops.
"""

from __future__ import annotations

import os
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import openai
from langchain_core.runnables import ConfigurableField, Runnable, RunnableBinding, RunnableConfig
from langchain_openai import ChatOpenAI, StreamChunkTimeoutError
from pydantic import BaseModel, SecretStr

from config.errors import ConfigError, LLMError
from config.secrets import redactor
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
#: What the chat endpoint raises through the openai SDK (and langchain-openai's stream watchdog).
MODEL_ERRORS: tuple[type[BaseException], ...] = (openai.APIError, StreamChunkTimeoutError)


class ProjectErrors(RunnableBinding):
    """The bound runnable, unchanged in streaming, batching, configuration and traces (a binding adds no run),
    whose model failures surface as `LLMError` — the CLI's one line, problem and fix — with the openai error
    chained: a host app catches one exception family, and its message never quotes DeepSeek's reply (a 401
    echoes the key's last characters)."""

    def _mapped(self, exc: BaseException) -> BaseException:
        return to_llm_error(exc) or exc

    def invoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None) -> Any:
        try:
            return super().invoke(input, config, **kwargs)
        except MODEL_ERRORS as exc:
            raise self._mapped(exc) from exc

    async def ainvoke(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None) -> Any:
        try:
            return await super().ainvoke(input, config, **kwargs)
        except MODEL_ERRORS as exc:
            raise self._mapped(exc) from exc

    def stream(self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None) -> Iterator[Any]:
        try:
            yield from super().stream(input, config, **kwargs)
        except MODEL_ERRORS as exc:
            raise self._mapped(exc) from exc

    async def astream(
        self, input: Any, config: RunnableConfig | None = None, **kwargs: Any | None
    ) -> AsyncIterator[Any]:
        try:
            async for chunk in super().astream(input, config, **kwargs):
                yield chunk
        except MODEL_ERRORS as exc:
            raise self._mapped(exc) from exc

    def transform(self, input: Iterator[Any], config: RunnableConfig | None = None, **kwargs: Any) -> Iterator[Any]:
        try:
            yield from super().transform(input, config, **kwargs)
        except MODEL_ERRORS as exc:
            raise self._mapped(exc) from exc

    async def atransform(
        self, input: AsyncIterator[Any], config: RunnableConfig | None = None, **kwargs: Any
    ) -> AsyncIterator[Any]:
        try:
            async for chunk in super().atransform(input, config, **kwargs):
                yield chunk
        except MODEL_ERRORS as exc:
            raise self._mapped(exc) from exc

    def batch(self, inputs: list[Any], config: Any = None, **kwargs: Any) -> list[Any]:
        try:
            return super().batch(inputs, config, **kwargs)
        except MODEL_ERRORS as exc:
            raise self._mapped(exc) from exc

    async def abatch(self, inputs: list[Any], config: Any = None, **kwargs: Any) -> list[Any]:
        try:
            return await super().abatch(inputs, config, **kwargs)
        except MODEL_ERRORS as exc:
            raise self._mapped(exc) from exc


def with_project_errors(runnable: Runnable) -> ProjectErrors:
    """`runnable` raising the project's `LLMError` for model failures (see `ProjectErrors`)."""
    return ProjectErrors(bound=runnable)


def to_llm_error(exc: BaseException, *, base_url: str | None = None) -> LLMError | None:
    """The `LLMError` (one line + fix) for a failure of the chat endpoint, or None if `exc` is something else.

    Looks through `__cause__`/`__context__`, so wrapped errors map too. Messages name the endpoint host and
    DeepSeek's status, never the key nor DeepSeek's error text (a 401 body echoes the key's last characters);
    only 400/422 quote DeepSeek's hint, with anything key-like removed. Fixes name `base_url` (the configured
    DEEPSEEK_BASE_URL) when given.
    """
    for error in _causes(exc):
        if isinstance(error, LLMError):
            return error
        if isinstance(error, openai.APIStatusError):
            return _status_error(error, _url_fix(error, base_url))
        if isinstance(error, openai.APITimeoutError | StreamChunkTimeoutError):
            return LLMError(
                f"the DeepSeek API{_at(error)} did not answer in time",
                "try again, or raise DEEPSEEK_TIMEOUT (seconds) if answers are long",
            )
        if isinstance(error, openai.APIConnectionError):
            return _connection_error(error, _url_fix(error, base_url))
        if isinstance(error, openai.APIResponseValidationError):
            return LLMError(
                f"the endpoint{_at(error)} did not answer like an OpenAI-style chat completions API",
                _url_fix(error, base_url),
            )
        if isinstance(error, openai.APIError):
            # An error event inside a stream that had already started.
            return LLMError(f"the DeepSeek API{_at(error)} failed in the middle of the answer", STATUS_FIX)
    return None


DEFAULT_BASE_URL = "https://api.deepseek.com"


def _url_fix(error: BaseException, base_url: str | None) -> str:
    """Points at the URL actually configured: a message naming the default would send a user the wrong way."""
    configured = base_url or _host(error)
    if not configured.startswith("http"):
        return f"check DEEPSEEK_BASE_URL (DeepSeek's is {DEFAULT_BASE_URL})"
    if configured.rstrip("/") == DEFAULT_BASE_URL:
        return f"check DEEPSEEK_BASE_URL ({configured}) and your network"
    return f"check DEEPSEEK_BASE_URL (set to {configured}; DeepSeek's is {DEFAULT_BASE_URL})"


def _speaks_the_api(error: openai.APIStatusError) -> bool:
    """DeepSeek (and every OpenAI-compatible server) answers errors with JSON; an HTML page or an empty body
    at another status than a gateway's means the URL points at something else."""
    if error.status_code in (429, 502, 503, 504):
        return True
    content_type = error.response.headers.get("content-type", "") if error.response is not None else ""
    return "json" in content_type.lower() and isinstance(error.body, dict)


def _status_error(error: openai.APIStatusError, url_fix: str) -> LLMError:
    status = error.status_code
    where = _at(error)
    if not _speaks_the_api(error):
        return LLMError(
            f"the endpoint{where} does not speak the DeepSeek API (HTTP {status}, not an OpenAI-style JSON error)",
            url_fix,
        )
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
        return LLMError(f"no chat completions endpoint{where} (404)", url_fix)
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


def _connection_error(error: openai.APIConnectionError, url_fix: str) -> LLMError:
    host = _host(error)
    causes = list(_causes(error))
    if any(isinstance(c, socket.gaierror) for c in causes):
        return LLMError(f"cannot resolve the host of DEEPSEEK_BASE_URL ({host})", f"{url_fix}, and your DNS")
    if any(isinstance(c, ConnectionRefusedError) for c in causes):
        return LLMError(f"connection refused by {host}", f"{url_fix}, and that the server is running")
    return LLMError(
        f"cannot connect to {host} ({type(causes[-1]).__name__})", f"{url_fix}; check proxy settings"
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
    return redactor(key_like=True)(" ".join(message.split()))[:200]
