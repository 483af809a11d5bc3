"""The Milvus collection: how it is opened, what schema it has, and what it records about its vectors.

The schema is created here rather than by langchain-milvus so that it is fixed (no metadata key silently
dropped, string primary keys from the first insert on) and so that it records the embedding model: a
collection opened with another model is refused instead of silently mixing vectors.
"""

from __future__ import annotations

import logging
import os
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from config.errors import EmbeddingModelError, IndexLockedError, NoIndexError, StoreError
from config.secrets import redactor
from config.settings import Settings
from index.health import damage_error, damage_guard, display_uri, lock_holder, not_a_folder, warn_if_rows_lost

if TYPE_CHECKING:
    from langchain_core.embeddings import Embeddings
    from langchain_milvus import Milvus
    from pymilvus import MilvusClient

log = logging.getLogger(__name__)

PK, TEXT, VECTOR, SPARSE = "pk", "text", "vector", "sparse"
#: A vector of each chunk's heading path, written by earlier versions and no longer: see `CollectionInfo.outdated`.
LEGACY_HEADING_VECTOR = "heading_vector"
METADATA_VARCHAR = {"source": 1024, "title": 1024, "heading": 2048, "content_hash": 64}
METADATA_INT = ("chunk_index", "n_chunks")
METADATA_FIELDS = (*METADATA_VARCHAR, *METADATA_INT)
PROP_MODEL, PROP_DIM = "rag.embedding_model", "rag.dim"
CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class CollectionInfo:
    name: str
    embedding_model: str
    dim: int
    has_bm25: bool
    has_legacy_heading_vector: bool = False

    @property
    def outdated(self) -> bool:
        """Built by an earlier version with a heading vector that this one no longer fills: searches still work
        (they never read it), but an insert without it fails, so the next ingest rebuilds the collection once."""
        return self.has_legacy_heading_vector


def connection_args(settings: Settings) -> dict[str, Any]:
    if settings.uses_lite:
        return {"uri": str(settings.milvus_lite_path)}
    args: dict[str, Any] = {"uri": settings.milvus_uri, "timeout": CONNECT_TIMEOUT}
    if settings.milvus_token is not None:
        args["token"] = settings.milvus_token.get_secret_value()
    return args


#: Seconds a command waits for a Milvus Lite folder another process holds (another ask.py searching, an ingest
#: finishing) before it says who holds it.
LOCK_WAIT = 30.0


def open_client(settings: Settings, *, wait: float = 0.0) -> MilvusClient:
    """A connected client, or one clear error: folder locked, server unreachable, bad credentials.

    `wait`: seconds to keep trying while another process holds the Milvus Lite folder — one that holds it only
    while it searches (`ask.py`) lets go within a moment."""
    deadline = time.monotonic() + wait
    delay = 0.05
    while True:
        try:
            return _open_client(settings)
        except IndexLockedError:
            if time.monotonic() + delay > deadline:
                raise
            time.sleep(delay)
            delay = min(delay * 2, 0.5)


def _open_client(settings: Settings) -> MilvusClient:
    from pymilvus import MilvusClient

    if settings.uses_lite:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        problem = not_a_folder(settings)
        if problem is not None:
            raise problem
    try:
        return MilvusClient(**connection_args(settings))
    except Exception as exc:  # pymilvus raises several unrelated types here
        raise _connection_error(exc, settings) from None


def _connection_error(exc: BaseException, settings: Settings) -> StoreError:
    text = redactor([settings.milvus_token], min_substring=1)(f"{type(exc).__name__}: {exc}")
    where = display_uri(settings)
    if settings.uses_lite:
        if "lock" in text.lower() or "Open local milvus failed" in text:
            holder = lock_holder(settings.milvus_lite_path / "LOCK")
            who = holder.describe() if holder else "which one cannot be told from here"
            stop = f"stop it (kill {holder.pid})" if holder and holder.pid != os.getpid() else "stop it"
            return IndexLockedError(
                f"the index folder {where} is in use by another process ({who})",
                f"wait for that process to finish or {stop}, then run this again; "
                "or point RAG_DATA_DIR at another folder",
            )
        damaged = damage_error(exc, settings)
        if damaged is not None:
            return damaged
        return StoreError(
            f"cannot open the Milvus Lite index at {where} ({text.splitlines()[0][:200]})",
            "check that the folder is writable, or rebuild it: python scripts/ingest.py --rebuild",
        )
    if any(w in text.lower() for w in ("auth", "token", "credential", "permission", "denied")):
        return StoreError(f"Milvus at {where} refused the credentials", "check MILVUS_TOKEN (user:password or API key)")
    return StoreError(
        f"cannot reach Milvus at {where}",
        "start the server or fix MILVUS_URI; unset MILVUS_URI to use the local Milvus Lite index",
    )


def _version(client: MilvusClient) -> str:
    try:
        return str(client.get_server_version())
    except Exception:  # an old server may not answer this at all
        return ""


def _is_lite(client: MilvusClient) -> bool:
    return _version(client).startswith("milvus_lite")


def server_supports_bm25(client: MilvusClient) -> bool:
    """BM25 functions arrived in Milvus 2.5; Milvus Lite (`milvus_lite-3.x`) has them.

    The embedded server of the PyPI package `milvus` reports `v2.3.5-lite`: a 2.3 server, without them.
    """
    version = _version(client)
    if version.startswith("milvus_lite"):
        return True
    match = re.search(r"(\d+)\.(\d+)", version)
    return bool(match) and (int(match.group(1)), int(match.group(2))) >= (2, 5)


def create_collection(client: MilvusClient, name: str, *, dim: int, embedding_model: str, bm25: bool) -> CollectionInfo:
    """The project's collection; `bm25` adds the sparse field Milvus fills from the text (Milvus >= 2.5)."""
    from pymilvus import DataType, Function, FunctionType

    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(PK, DataType.VARCHAR, is_primary=True, max_length=64)
    text_opts: dict[str, Any] = {"enable_analyzer": True} if bm25 else {}
    schema.add_field(TEXT, DataType.VARCHAR, max_length=65535, **text_opts)
    schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dim)
    for field, length in METADATA_VARCHAR.items():
        schema.add_field(field, DataType.VARCHAR, max_length=length)
    for field in METADATA_INT:
        schema.add_field(field, DataType.INT64)
    index = client.prepare_index_params()
    index.add_index(VECTOR, index_type="FLAT" if _is_lite(client) else "AUTOINDEX", metric_type="IP")
    if bm25:
        schema.add_field(SPARSE, DataType.SPARSE_FLOAT_VECTOR)
        schema.add_function(
            Function(
                name="text_bm25",
                function_type=FunctionType.BM25,
                input_field_names=[TEXT],
                output_field_names=[SPARSE],
            )
        )
        index.add_index(SPARSE, index_type="SPARSE_INVERTED_INDEX", metric_type="BM25")
    client.create_collection(
        name,
        schema=schema,
        consistency_level="Strong",
        properties={PROP_MODEL: embedding_model, PROP_DIM: str(dim)},
    )
    # pymilvus polls a new index every 0.5 s; an empty collection's index has nothing to build.
    client.create_index(name, index, sync=False)
    client.load_collection(name)
    return CollectionInfo(name, embedding_model, dim, bm25)


def describe(client: MilvusClient, name: str) -> CollectionInfo | None:
    """What a collection records about itself, or None when it does not exist."""
    if not client.has_collection(name):
        return None
    desc = client.describe_collection(name)
    props = desc.get("properties") or {}
    fields = {f["name"] for f in desc.get("fields", [])}
    if PROP_MODEL not in props or not {PK, TEXT, VECTOR, *METADATA_FIELDS} <= fields:
        raise StoreError(
            f"collection '{name}' was not created by this project (it lacks the expected fields)",
            "choose another name with MILVUS_COLLECTION, or drop that collection yourself",
        )
    return CollectionInfo(
        name, props[PROP_MODEL], int(props.get(PROP_DIM, 0)), SPARSE in fields, LEGACY_HEADING_VECTOR in fields
    )


def check_model(info: CollectionInfo, embedding_model: str, dim: int) -> None:
    if info.embedding_model != embedding_model or info.dim != dim:
        raise EmbeddingModelError(
            f"collection '{info.name}' holds vectors of {info.embedding_model} ({info.dim} dims), "
            f"but the configured embedding is {embedding_model} ({dim} dims)",
            "rebuild the index with this model: python scripts/ingest.py --rebuild "
            "(or set RAG_EMBEDDING back to the model the index was built with)",
        )


def ensure_loaded(client: MilvusClient, name: str) -> None:
    state = str(client.get_load_state(name).get("state", ""))
    if "Loaded" not in state:
        client.load_collection(name)


def open_vectorstore(
    settings: Settings,
    embeddings: Embeddings,
    *,
    embedding_model: str,
    dim: int,
    client: MilvusClient | None = None,
) -> Milvus:
    """langchain-milvus over the existing collection, after checking it was built with this model."""
    client = client or open_client(settings)
    with damage_guard(settings):
        info = describe(client, settings.collection)
        if info is None:
            raise NoIndexError(
                f"no index yet: collection '{settings.collection}' does not exist at {display_uri(settings)}",
                "build it first: python scripts/ingest.py",
            )
        check_model(info, embedding_model, dim)
        ensure_loaded(client, settings.collection)
        warn_if_rows_lost(client, settings)
    from langchain_milvus import Milvus

    try:
        return Milvus(
            embedding_function=embeddings,
            collection_name=settings.collection,
            connection_args=connection_args(settings),
            consistency_level="Strong",
            primary_field=PK,
            text_field=TEXT,
            vector_field=VECTOR,
            search_params={"metric_type": "IP", "params": {}},
        )
    except Exception as exc:
        raise _connection_error(exc, settings) from None


def release(settings: Settings, *clients: Any) -> None:
    """Close clients and, for Milvus Lite, stop its in-process server so another process can open the folder.

    Milvus Lite keeps serving a database folder (and holding its lock) until the process exits, even after
    every client is closed; a long-lived app that ingests and then lets `ask.py` run must let go explicitly.
    """
    for client in clients:
        try:
            client.close()
        except Exception:  # closing is best effort; the lock release below is what matters
            log.debug("closing a Milvus client failed", exc_info=True)
    if settings.uses_lite:
        try:
            from milvus_lite.server_manager import server_manager_instance
        except ImportError:
            return
        server_manager_instance.release_server(str(settings.milvus_lite_path))
