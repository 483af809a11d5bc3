"""The ASGI app: an OpenAI-compatible chat endpoint, the project's own /api/ask and /api/ingest, /health and
a web page.

Handlers are async and drive the chain's `ainvoke` / `astream`, so one slow DeepSeek answer never holds a
thread; the blocking parts run in the service's bounded pool. A stream is started only once the first piece
of the answer exists: a failure before it (a refused key, a bad filter, no index) still gets a real status
code and a JSON body instead of a broken stream.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response, StreamingResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from config.errors import RagError
from server.discovery import remove_record, write_record
from server.errors import ApiError, bad_request, to_api_error
from server.guard import Guard
from server.ingest import IngestRequest, describe_options, ingest_options, report_payload
from server.service import NO_KEY_NOTICE, RagService
from server.settings import MAX_BODY_BYTES, MAX_K, MAX_QUESTION_CHARS, ServerSettings

log = logging.getLogger(__name__)

STATIC = Path(__file__).parent / "static"
PAGE_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
ROLES = {"user": "human", "human": "human", "assistant": "ai", "ai": "ai"}
INGEST_FROM_AFAR = (
    "ingests are accepted only from the server's own machine while it has no token — run ingest.py there, "
    "or start the server with RAG_SERVER_TOKEN set and send the token"
)


# --- request bodies ---
class Turn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    role: Literal["user", "assistant", "human", "ai"]
    content: str


class AskRequest(BaseModel):
    """POST /api/ask: what `ask.py` takes on its command line."""

    model_config = ConfigDict(extra="forbid")

    question: str
    chat_history: list[Turn | tuple[Literal["user", "assistant", "human", "ai"], str]] = Field(default_factory=list)
    k: int | None = None
    filter: str | None = None
    stream: bool = False
    retrieve_only: bool = False


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None


class ChatCompletionRequest(BaseModel):
    """POST /v1/chat/completions: OpenAI's body; fields this server has no use for are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    stream: bool = False


# --- checks with the CLI's messages ---
def check_question(question: str) -> str:
    question = question.strip()
    if not question:
        raise bad_request("the question is empty", "send a question, e.g. How is data stored in milvus?")
    if len(question) > MAX_QUESTION_CHARS:
        raise bad_request(
            f"the question is {len(question)} characters long; the limit is {MAX_QUESTION_CHARS}",
            "shorten it to the question itself",
        )
    return question


def check_k(k: int | None, default: int) -> int:
    if k is None:
        return default
    if not 1 <= k <= MAX_K:
        raise bad_request(f"k must be between 1 and {MAX_K}, got {k}", "ask for fewer passages")
    return k


def split_messages(messages: list[ChatMessage]) -> tuple[str, list[tuple[str, str]]]:
    """The last user message is the question; earlier user and assistant turns are the conversation (system
    prompts from chat front ends are left out: the chain has its own)."""
    last = messages[-1]
    if last.role != "user":
        raise bad_request(f"the last message has role {last.role!r}", "end the messages with the user's question")
    history = [
        (ROLES[m.role], _text(m.content)) for m in messages[:-1] if m.role in ROLES and _text(m.content).strip()
    ]
    return _text(last.content), history


def _text(content: str | list[dict[str, Any]] | None) -> str:
    if isinstance(content, list):
        return "\n".join(str(part.get("text", "")) for part in content if part.get("type") == "text")
    return content or ""


# --- responses ---
def error_response(exc: BaseException) -> JSONResponse:
    error = to_api_error(exc)
    return JSONResponse(error.body(), status_code=error.status)


def sse(data: Any, event: str | None = None) -> bytes:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(data, ensure_ascii=False)}\n\n".encode()


async def prefetch(stream: AsyncIterator[dict[str, Any]]) -> AsyncIterator[dict[str, Any]]:
    """Run the chain up to its first answer piece, then hand back an iterator over everything.

    Errors before that point raise here, while a JSON error with the right status can still be sent."""
    buffered: list[dict[str, Any]] = []
    try:
        async for chunk in stream:
            buffered.append(chunk)
            if "answer" in chunk:
                break
    except BaseException:
        await stream.aclose()  # type: ignore[attr-defined]
        raise

    async def replay() -> AsyncIterator[dict[str, Any]]:
        try:
            for chunk in buffered:
                yield chunk
            async for chunk in stream:
                yield chunk
        finally:
            await stream.aclose()  # type: ignore[attr-defined]

    return replay()


class Collected:
    """What a streamed answer added up to."""

    def __init__(self, question: str) -> None:
        self.question = question
        self.sources: list[dict[str, Any]] = []
        self._query: list[str] = []

    def take(self, chunk: dict[str, Any]) -> str:
        """Record sources / search query; return the answer piece (possibly empty)."""
        if "sources" in chunk:
            self.sources = [dict(s) for s in chunk["sources"]]
        if isinstance(chunk.get("search_query"), str):
            self._query.append(chunk["search_query"])
        piece = chunk.get("answer")
        return piece if isinstance(piece, str) else ""

    @property
    def search_query(self) -> str:
        return "".join(self._query) or self.question


def chain_config(k: int, filter: str | None) -> dict[str, Any]:
    configurable: dict[str, Any] = {"k": k}
    if filter is not None and filter.strip():
        configurable["filter"] = filter
    return {"configurable": configurable}


def history_turns(turns: list[Any]) -> list[tuple[str, str]]:
    pairs = [(t.role, t.content) if isinstance(t, Turn) else (t[0], t[1]) for t in turns]
    return [(ROLES[role], content) for role, content in pairs]


# --- the app ---
def create_app(service: RagService, server_settings: ServerSettings, *, url: str | None = None) -> FastAPI:
    """The app over an opened (or not yet openable) service. With `url`, the server records it beside a
    Milvus Lite index while it runs, so CLIs that find the folder locked come here instead."""
    settings = service.settings

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        asyncio.get_running_loop().set_default_executor(service.pool)  # LangChain's sync steps run there too
        if url is not None and settings.uses_lite:
            write_record(settings, url)
        if url is not None:
            log.info("serving the Milvus docs on %s (open it in a browser, or point an OpenAI client at %s/v1)",
                     url, url)
        try:
            yield
        finally:
            if url is not None and settings.uses_lite:
                remove_record(settings)
            service.close()  # after uvicorn let in-flight requests finish
            log.info("index closed")
            flush_traces()

    app = FastAPI(
        title="Milvus docs RAG",
        lifespan=lifespan,
        docs_url=None,  # Swagger UI loads from a CDN; the schema stays at /openapi.json
        redoc_url=None,
    )
    app.add_middleware(Guard, token=server_settings.token, max_body=MAX_BODY_BYTES)
    if server_settings.cors_origins:
        from fastapi.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=server_settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["authorization", "content-type"],
        )

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        return JSONResponse(validation_error(exc).body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found" if exc.status_code == 404 else "http_error"
        message = f"{exc.detail} ({request.method} {request.url.path})"
        error = ApiError(exc.status_code, message, "invalid_request_error", kind)
        return JSONResponse(error.body(), status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.get("/health")
    async def health() -> JSONResponse:
        try:
            return JSONResponse(await service.health())
        except RagError as exc:
            body = {"status": "unavailable", "reason": exc.one_line(), "collection": settings.collection}
            return JSONResponse(body, status_code=503)
        except Exception as exc:  # noqa: BLE001 - the reason goes to the caller as one line
            return JSONResponse({"status": "unavailable", "reason": to_api_error(exc).message}, status_code=503)

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [
                {"id": settings.deepseek_model, "object": "model", "created": 0, "owned_by": "milvus-deepseek-rag"}
            ],
        }

    @app.post("/api/ask", response_model=None)
    async def ask(body: AskRequest) -> Response | dict[str, Any]:
        try:
            question = check_question(body.question)
            k = check_k(body.k, settings.k)
            if body.retrieve_only or not service.has_key:
                sources = await service.retrieve(question, k=k, filter=body.filter)
                payload: dict[str, Any] = {
                    "question": question, "answer": None, "sources": sources, "search_query": question,
                }
                if not body.retrieve_only:
                    payload["notice"] = NO_KEY_NOTICE
                if body.stream:
                    event = {key: payload[key] for key in ("sources", "search_query", "notice") if key in payload}
                    return StreamingResponse(_once(sse(event, "sources")), media_type="text/event-stream",
                                             headers=SSE_HEADERS)
                return payload
            chain = await service.ready_chain()
            inputs = {"question": question, "chat_history": history_turns(body.chat_history)}
            config = chain_config(k, body.filter)
            if not body.stream:
                result = await chain.ainvoke(inputs, config=config)
                return {
                    "question": question,
                    "answer": result["answer"],
                    "sources": [dict(s) for s in result["sources"]],
                    "search_query": result.get("search_query") or question,
                }
            events = await prefetch(chain.astream(inputs, config=config))
        except Exception as exc:  # noqa: BLE001 - every failure becomes JSON with its one-line message
            return error_response(exc)
        return StreamingResponse(_ask_events(events, question), media_type="text/event-stream", headers=SSE_HEADERS)

    @app.post("/api/ingest", response_model=None)
    async def ingest(body: IngestRequest, request: Request) -> Response | dict[str, Any]:
        """`ingest.py` sends its ingest here while this server holds the Milvus Lite folder; answered when done."""
        try:
            if server_settings.token is None and not _loopback(request):
                raise ApiError(403, INGEST_FROM_AFAR, "permission_error", "ingest_needs_token")
            options = ingest_options(body, settings)
            what = describe_options(options)
            service.ingest_claim.claim(what)
            try:
                job = asyncio.get_running_loop().run_in_executor(service.pool, partial(service.ingest, **options))
            except BaseException:
                service.ingest_claim.release()  # never queued, so nothing else gives it back
                raise
            log.info("ingest started: %s", what)
            report = await job
        except Exception as exc:  # noqa: BLE001 - one line to the caller (and the log), never a traceback
            error = to_api_error(exc)
            if error.status != 409:
                log.warning("ingest failed: %s", error.message)
            return JSONResponse(error.body(), status_code=error.status)
        for note in report.notes:
            log.info("ingest: %s", note)
        log.info("ingest finished: %s", report.summary())
        return report_payload(report)

    @app.post("/v1/chat/completions", response_model=None)
    async def chat_completions(body: ChatCompletionRequest) -> Response | dict[str, Any]:
        model = body.model or settings.deepseek_model
        try:
            question, history = split_messages(body.messages)
            question = check_question(question)
            chain = await service.ready_chain()
            inputs = {"question": question, "chat_history": history}
            config = chain_config(settings.k, None)
            if not body.stream:
                result = await chain.ainvoke(inputs, config=config)
                return completion(model, result["answer"], [dict(s) for s in result["sources"]])
            events = await prefetch(chain.astream(inputs, config=config))
        except Exception as exc:  # noqa: BLE001
            return error_response(exc)
        return StreamingResponse(
            _completion_chunks(events, model, question), media_type="text/event-stream", headers=SSE_HEADERS
        )

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    return app


def _loopback(request: Request) -> bool:
    """An ingest reads files and URLs as the server: without a token, only this machine may ask for one (the
    server warns when it listens elsewhere without a token; questions stay open, reading files does not)."""
    import ipaddress

    host = request.client.host if request.client is not None else ""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def flush_traces() -> None:
    """LangSmith uploads run in the background; uvicorn ends the process by re-raising SIGTERM right after
    this shutdown, so wait for them here."""
    import sys

    if "langchain_core.tracers.langchain" in sys.modules:
        from langchain_core.tracers.langchain import wait_for_all_tracers

        wait_for_all_tracers()


def validation_error(exc: RequestValidationError) -> ApiError:
    """Pydantic's 422 as a 400 with one readable line."""
    errors = exc.errors()
    first = errors[0] if errors else {}
    if first.get("type") == "json_invalid":
        return bad_request("the request body is not valid JSON", "send a JSON object", code="invalid_json")
    where = ".".join(str(part) for part in first.get("loc", ()) if part != "body") or "body"
    return bad_request(
        f"invalid request body: {where}: {first.get('msg', 'invalid value')}",
        'send JSON like {"question": "How is data stored in milvus?"}',
        code="invalid_body",
    )


async def _once(data: bytes) -> AsyncIterator[bytes]:
    yield data


async def _ask_events(events: AsyncIterator[dict[str, Any]], question: str) -> AsyncIterator[bytes]:
    """`token` events ({"text"}), then one `sources` event ({"sources", "search_query"}); `error` on failure."""
    collected = Collected(question)
    try:
        async for chunk in events:
            piece = collected.take(chunk)
            if piece:
                yield sse({"text": piece}, "token")
        yield sse({"sources": collected.sources, "search_query": collected.search_query}, "sources")
    except Exception as exc:  # noqa: BLE001 - the status is sent already: the error travels as an event
        error = to_api_error(exc)
        log.warning("an answer failed mid-stream: %s", error.message)
        yield sse(error.body(), "error")


def completion(model: str, answer: str, sources: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": answer}, "logprobs": None, "finish_reason": "stop"}
        ],
        "sources": sources,
    }


async def _completion_chunks(
    events: AsyncIterator[dict[str, Any]], model: str, question: str
) -> AsyncIterator[bytes]:
    """OpenAI's chunk stream; the last chunk before `[DONE]` carries finish_reason and the sources."""
    envelope = {"id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion.chunk", "created": int(time.time()),
                "model": model}

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
        return sse({**envelope, "choices": [choice], **extra})

    collected = Collected(question)
    try:
        yield chunk({"role": "assistant", "content": ""})
        async for part in events:
            piece = collected.take(part)
            if piece:
                yield chunk({"content": piece})
        yield chunk({}, "stop", sources=collected.sources)
        yield b"data: [DONE]\n\n"
    except Exception as exc:  # noqa: BLE001 - OpenAI clients raise on an `error` object in the stream
        error = to_api_error(exc)
        log.warning("an answer failed mid-stream: %s", error.message)
        yield sse(error.body())

