"""A running server, as `ask.py` and `ingest.py` use it when the server holds the Milvus Lite folder.

Milvus Lite lets one process open an index; while `scripts/serve.py` has it, a CLI would fail with "in use
by another process". Instead it finds the server's `server.json` beside the index and sends the question to
`/api/ask`. `RemoteRetriever` and `RemoteChain` answer the calls `ask.py` makes of a retriever (`invoke`) and
of the chain (`invoke`, `stream`), so the CLI prints exactly what it prints for a local index. Errors come
back as the server's one-line messages, raised as the same `RagError` classes (and exit codes) as locally.
`remote_ingest` takes `run_ingest`'s arguments and returns its report, so `ingest.py` prints the same lines.

Light on purpose: httpx loads only when a server is found.
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from config.errors import ConfigError, LLMError, RagError, SourceError, StoreError
from server.discovery import ServerRecord, find_server

if TYPE_CHECKING:
    from collections.abc import Sequence

    import httpx
    from langchain_core.documents import Document

    from config.settings import Settings
    from index.ingest import IngestReport

TIMEOUT = 300.0  # a long answer streams for a while; DEEPSEEK_TIMEOUT bounds the server's own wait
CONNECT_TIMEOUT = 30.0  # an ingest is then waited for as long as it takes, like one run here would be


def remote_retriever(settings: Settings, *, k: int | None = None, filter: str | None = None) -> RemoteRetriever | None:
    """The server that holds this index, or None when no live server is recorded beside it."""
    record = find_server(settings)
    return RemoteRetriever(record, k=k, filter=filter) if record is not None else None


class RemoteRetriever:
    """`invoke(question)` → the passages as Documents (metadata: source, heading, score), like MilvusRetriever."""

    remote = True

    def __init__(self, record: ServerRecord, *, k: int | None = None, filter: str | None = None) -> None:
        self.record = record
        self.k = k
        self.filter = filter

    def invoke(self, question: str, config: dict[str, Any] | None = None, **_: Any) -> list[Document]:
        from langchain_core.documents import Document

        body = self._body(question, config, retrieve_only=True)
        sources = _post(self.record, body)["sources"]
        return [
            Document(page_content=s["text"], metadata={key: s[key] for key in ("source", "heading", "score")})
            for s in sources
        ]

    def remote_chain(self) -> RemoteChain:
        return RemoteChain(self)

    def _body(self, question: str, config: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
        k = ((config or {}).get("configurable") or {}).get("k") or self.k
        body: dict[str, Any] = {"question": question, **extra}
        if k:
            body["k"] = k
        if self.filter:
            body["filter"] = self.filter
        return body


class RemoteChain:
    """The chain's `invoke` / `stream` contract over `/api/ask`: `{"answer", "sources"}`; streamed as answer
    pieces, then the sources."""

    def __init__(self, retriever: RemoteRetriever) -> None:
        self.retriever = retriever

    def invoke(self, inputs: dict[str, Any], config: dict[str, Any] | None = None, **_: Any) -> dict[str, Any]:
        body = self.retriever._body(inputs["question"], config, chat_history=_history(inputs))
        result = _post(self.retriever.record, body)
        return {key: result[key] for key in ("answer", "sources", "search_query") if key in result}

    def stream(self, inputs: dict[str, Any], config: dict[str, Any] | None = None, **_: Any) -> Iterator[dict]:
        body = self.retriever._body(inputs["question"], config, chat_history=_history(inputs), stream=True)
        record = self.retriever.record
        with _client(record) as client:
            try:
                with client.stream("POST", "/api/ask", json=body) as response:
                    if response.status_code != 200:
                        response.read()
                        raise _error(record, response.status_code, response.content)
                    for event, data in _events(response.iter_lines()):
                        if event == "token":
                            yield {"answer": data["text"]}
                        elif event == "sources":
                            yield {key: data[key] for key in ("sources", "search_query") if key in data}
                        elif event == "error":
                            raise _error(record, 502, json.dumps(data).encode())
            except RagError:
                raise
            except Exception as exc:
                raise _unreachable(record, exc) from None


def _history(inputs: dict[str, Any]) -> list[tuple[str, str]]:
    turns = []
    for turn in inputs.get("chat_history") or []:
        role, content = (turn["role"], turn["content"]) if isinstance(turn, dict) else turn
        turns.append((str(role), str(content)))
    return turns


def ingest_server(settings: Settings) -> ServerRecord | None:
    """The live server holding this Milvus Lite folder, whichever collection it serves; None without one."""
    return find_server(settings, any_collection=True)


def remote_ingest(
    record: ServerRecord,
    settings: Settings,
    *,
    source: str | None = None,
    glob: str | Sequence[str] | None = None,
    rebuild: bool = False,
    progress: bool = True,
    prune: bool = False,
    repair: bool = False,
) -> IngestReport:
    """`index.pipeline.run_ingest` run by the server; the defaults (source, glob, collection) are this process's
    settings, and a relative path is made absolute here, where it was typed (the server reads it: the same
    machine, since it recorded itself beside this index). No progress bars: the server logs start and end."""
    import httpx

    from index.health import source_id
    from loaders.sources import is_url
    from server.ingest import report_from_payload

    source = source or settings.source
    glob = glob or settings.glob
    body = {
        "source": source if is_url(source) else source_id(source),
        "glob": glob if isinstance(glob, str) else list(glob),
        "rebuild": rebuild,
        "prune": prune,
        "repair": repair,
        "collection": settings.collection,
    }
    timeout = httpx.Timeout(CONNECT_TIMEOUT, read=None)
    try:
        return report_from_payload(_post(record, body, path="/api/ingest", timeout=timeout))
    except KeyboardInterrupt:
        print(
            f"the server at {record.url} goes on with the ingest (stopping here does not stop it); its log shows "
            "the summary",
            file=sys.stderr,
        )
        raise


def _client(record: ServerRecord, timeout: httpx.Timeout | float = TIMEOUT) -> httpx.Client:
    import httpx

    token = os.environ.get("RAG_SERVER_TOKEN", "").strip()
    if not token:  # the server reads it from .env too
        from server.settings import get_server_settings

        secret = get_server_settings().token
        token = secret.get_secret_value() if secret is not None else ""
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=record.url, headers=headers, timeout=timeout, trust_env=False)


def _post(
    record: ServerRecord, body: dict[str, Any], *, path: str = "/api/ask", timeout: Any = TIMEOUT
) -> dict[str, Any]:
    with _client(record, timeout) as client:
        try:
            response = client.post(path, json=body)
        except Exception as exc:
            raise _unreachable(record, exc) from None
    if response.status_code != 200:
        raise _error(record, response.status_code, response.content)
    return response.json()


def _events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    event, data = "message", []
    for line in lines:
        if not line:
            if data:
                yield event, json.loads("\n".join(data))
            event, data = "message", []
        elif line.startswith("event:"):
            event = line[6:].strip()
        elif line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))


def _error(record: ServerRecord, status: int, content: bytes) -> RagError:
    """The server's one-line message, as the error class the CLI would have raised itself."""
    try:
        message = json.loads(content)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = f"the server at {record.url} answered {status}"
    if status == 401:
        return ConfigError(
            f"the server at {record.url} (which holds the index) needs its token",
            "set RAG_SERVER_TOKEN to the token the server was started with",
        )
    if status in (400, 413):
        return ConfigError(message)
    if status == 422:
        return SourceError(message)
    if status in (502, 504):
        return LLMError(message)
    if status == 503:
        return StoreError(message)
    return RagError(message)


def _unreachable(record: ServerRecord, exc: BaseException) -> StoreError:
    return StoreError(
        f"the index is held by a server (pid {record.pid}) at {record.url}, which does not answer "
        f"({type(exc).__name__})",
        "wait for it to start or stop it, then run this again",
    )
