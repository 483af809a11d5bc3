"""Offline traces in LangSmith's shape, and the tags and metadata the chain's top run carries.

`JsonlTracer` is a LangChain tracer (`BaseTracer`), so it sees exactly the run tree LangSmith would get:
the same ids, parent links, names, run types, times, inputs, outputs and errors. It appends each finished
trace to a JSONL file, one run per line, for people who cannot or will not send traces to LangSmith;
`scripts/trace_view.py` prints such a file as a tree.

Secrets never reach the file: `SecretStr` values are written masked, and any string containing the
configured DeepSeek key, Milvus token or LangSmith key is redacted, wherever it sits (a question someone
pasted a key into, an error message, a repr). `redact_langsmith()` applies the same redaction to what the
LangSmith client uploads.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from langchain_core.documents import Document
from langchain_core.tracers.base import BaseTracer
from pydantic import BaseModel, SecretBytes, SecretStr

from config.errors import ConfigError
from config.secrets import redactor, secret_text

if TYPE_CHECKING:
    from langchain_core.tracers.schemas import Run

    from config.settings import Settings

log = logging.getLogger(__name__)

MASKED = "**********"
#: The project tag every run of the chain carries, so its traces can be filtered in LangSmith.
PROJECT_TAG = "milvus-deepseek-rag"
#: Fields of one JSONL line, in the order they are written.
FIELDS = (
    "id",
    "parent_run_id",
    "trace_id",
    "dotted_order",
    "name",
    "run_type",
    "start_time",
    "end_time",
    "inputs",
    "outputs",
    "error",
    "tags",
    "metadata",
)
# Environment variables that hold credentials, beyond what Settings knows.
_SECRET_ENV = ("DEEPSEEK_API_KEY", "MILVUS_TOKEN", "LANGSMITH_API_KEY", "LANGCHAIN_API_KEY", "OPENAI_API_KEY")
# Values under these keys are credentials whatever they look like.
_SECRET_KEYS = frozenset({"api_key", "openai_api_key", "deepseek_api_key", "milvus_token", "token", "password"})
class JsonlTracer(BaseTracer):
    """Appends every finished trace to `path` as JSON lines, one run per line, parents before children.

    Pass it as a callback: `chain.invoke(inputs, config={"callbacks": [JsonlTracer("trace.jsonl")]})`.
    `secrets` are extra strings to redact; the configured ones (DEEPSEEK_API_KEY, MILVUS_TOKEN,
    LANGSMITH_API_KEY, from `settings` or the environment) are always redacted.
    """

    name: str = "jsonl_tracer"

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        settings: Settings | None = None,
        secrets: Iterable[str | SecretStr | None] = (),
        **kwargs: Any,
    ) -> None:
        # "original+chat": chat model runs keep their messages, as LangChain's own LangSmith tracer records them.
        kwargs.setdefault("_schema_format", "original+chat")
        super().__init__(**kwargs)
        self.path = Path(path).expanduser()
        if self.path.is_dir():
            raise ConfigError(f"the trace file {self.path} is a folder", "pass a file name, e.g. --trace trace.jsonl")
        if not self.path.parent.is_dir():
            raise ConfigError(
                f"cannot write the trace file {self.path}: the folder {self.path.parent} does not exist",
                "create the folder or pass a path in an existing one",
            )
        self._anonymize = secret_anonymizer([*configured_secrets(settings), *secrets])
        self._lock = threading.Lock()

    def _persist_run(self, run: Run) -> None:
        """Called by LangChain when a root run ends: the whole tree is complete now."""
        lines = [json.dumps(self.record(r), ensure_ascii=False) + "\n" for r in walk(run)]
        try:
            with self._lock, self.path.open("a", encoding="utf-8") as file:
                file.write("".join(lines))
        except OSError as exc:
            # A tracer must not break the answer it traces; LangChain would only log it anyway.
            log.warning("could not append the trace to %s: %s", self.path, exc.strerror or exc)

    def record(self, run: Run) -> dict[str, Any]:
        """One run as written: LangSmith's field names, JSON values, secrets redacted."""
        return {
            "id": str(run.id),
            "parent_run_id": str(run.parent_run_id) if run.parent_run_id else None,
            "trace_id": str(run.trace_id) if run.trace_id else str(run.id),
            "dotted_order": run.dotted_order or None,
            "name": run.name,
            "run_type": "llm" if run.run_type == "chat_model" else run.run_type,  # LangSmith has no chat_model
            "start_time": _iso(run.start_time),
            "end_time": _iso(run.end_time),
            "inputs": self._anonymize(to_jsonable(run.inputs)),
            "outputs": self._anonymize(to_jsonable(run.outputs)),
            "error": self._anonymize(run.error) if run.error else None,
            "tags": list(run.tags or []),
            "metadata": self._anonymize(to_jsonable(dict(run.metadata or {}))),
        }


def redact_langsmith(settings: Settings | None = None, *, secrets: Iterable[str | SecretStr | None] = ()) -> bool:
    """When LangSmith tracing is on, make the client LangChain traces through redact secrets before upload.

    LangChain never puts the keys into runs itself, but text that passes through can hold them: a key pasted
    into a question, or DeepSeek's 401 reply, which quotes the key's last characters ("****cdef") and lands in
    the failed model run's output and error. This installs, as LangSmith's global client (`langsmith.configure`,
    so `wait_for_all_tracers()` still flushes it), a `Client` whose anonymizer applies the same redaction as
    `JsonlTracer` to inputs, outputs, errors and metadata (it replaces a client set earlier with
    `langsmith.configure`). Call it once, before the first traced run; it is a no-op (returns False) when
    tracing is off.
    """
    from langsmith import Client, configure
    from langsmith.utils import tracing_is_enabled

    if not tracing_is_enabled():
        return False
    configure(client=Client(anonymizer=secret_anonymizer([*configured_secrets(settings), *secrets])))
    return True


def walk(run: Run) -> Iterator[Run]:
    """The run and its descendants, depth first, siblings in the order they started."""
    yield run
    for child in sorted(run.child_runs, key=lambda r: (r.dotted_order or "", r.start_time)):
        yield from walk(child)


def secret_anonymizer(secrets: Iterable[str | SecretStr | SecretBytes | None]) -> Callable[[Any], Any]:
    """LangSmith's anonymizer (`langsmith.anonymizer.create_anonymizer`) with the project's rule for each string:
    a configured secret anywhere in it, a short one only as the whole string (as a substring it would eat
    ordinary words: "root:Milvus" holds "Milvus"), the key tail a provider quotes after "api key", and any
    value under a credential's key (`api_key`, `token`, ...)."""
    from langsmith.anonymizer import create_anonymizer

    redact = redactor(secrets)

    def replace(text: str, path: list[str | int]) -> str:
        if path and str(path[-1]).lower() in _SECRET_KEYS:
            return MASKED
        return redact(text)

    return create_anonymizer(replace, max_depth=50)


def to_jsonable(value: Any) -> Any:
    """Traced values as JSON values: documents as text + metadata (the sources), secrets masked, the rest as
    their JSON form or repr."""
    return json.loads(json.dumps(value, default=_json_default, ensure_ascii=False))


def _json_default(value: Any) -> Any:
    if isinstance(value, SecretStr | SecretBytes):
        return MASKED
    if isinstance(value, Document):
        return {"page_content": value.page_content, "metadata": value.metadata}
    if isinstance(value, BaseModel):
        return value.model_dump()
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, UUID | Path):
        return str(value)
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, bytes | bytearray):
        return f"<{len(value)} bytes>"
    if isinstance(value, set | frozenset):
        return list(value)
    if isinstance(value, BaseException):
        return f"{type(value).__name__}: {value}"
    return repr(value)


def configured_secrets(settings: Settings | None = None) -> list[str]:
    """The credentials this process is configured with: from `settings` (read now if not given) and the env."""
    found: list[str] = [os.environ.get(name, "") for name in _SECRET_ENV]
    if settings is None:
        try:
            from config.settings import get_settings

            settings = get_settings()
        except Exception:  # a broken setting is reported where it is used, not by the tracer
            settings = None
    if settings is not None:
        found += [secret_text(settings.deepseek_api_key), secret_text(settings.milvus_token)]
    return [s.strip() for s in found if s and s.strip()]


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


# --- the top run's tags and metadata ------------------------------------------------------------------------------


def chain_trace_config(settings: Settings, *, k: int, retriever: Any, llm: Any) -> dict[str, Any]:
    """`tags` and `metadata` for the chain's top run, so a trace says what produced the answer.

    Metadata: `k`, `llm_model`, `retriever` (its class) and, when the retriever is the project's Milvus
    retriever, `collection`, `retrieval_mode`, `embedding_model` (and `filter` if set); nothing is guessed
    for other retrievers.
    They are the chain's defaults: a per-call `configurable={"model": ...}` shows up as LangChain's own
    `model` key beside them; a per-call `k` shows only in how many documents `retrieve` returned. LangChain
    copies the top run's tags and metadata onto every run below it.
    """
    metadata: dict[str, Any] = {"k": k}
    model = _model_name(llm)
    if model:
        metadata["llm_model"] = model
    metadata["retriever"] = retriever.get_name() if hasattr(retriever, "get_name") else type(retriever).__name__
    store = getattr(retriever, "store", None)
    mode = getattr(retriever, "mode", None)
    if (store is not None or hasattr(retriever, "embeddings")) and isinstance(mode, str):
        metadata["collection"] = getattr(store, "collection_name", None) or settings.collection
        metadata["retrieval_mode"] = mode
        embeddings = getattr(store, "embeddings", None) or getattr(retriever, "embeddings", None)
        metadata["embedding_model"] = _embedding_name(embeddings) or settings.embedding
        if isinstance(getattr(retriever, "filter", None), str):
            metadata["filter"] = retriever.filter
        if getattr(retriever, "reranker", None) is not None:
            metadata["reranker"] = settings.reranker or type(retriever.reranker).__name__
    tags = [PROJECT_TAG]
    if "retrieval_mode" in metadata:
        tags.append(f"retrieval:{metadata['retrieval_mode']}")
    return {"tags": tags, "metadata": metadata}


def _model_name(llm: Any) -> str | None:
    llm = getattr(llm, "default", llm)  # unwrap configurable_fields
    for field in ("model_name", "model"):
        value = getattr(llm, field, None)
        if isinstance(value, str) and value:
            return value
    return None


def _embedding_name(embeddings: Any) -> str | None:
    if embeddings is None:
        return None
    try:
        name = getattr(embeddings, "model_id", None) or getattr(embeddings, "model", None)
    except Exception:  # a property that needs the model loaded
        name = None
    return name if isinstance(name, str) and name else type(embeddings).__name__
