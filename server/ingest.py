"""An ingest run inside the server, which holds the Milvus Lite folder, while questions keep being answered.

Milvus Lite lets one process open a data folder, so while `serve.py` runs, `ingest.py` sends its ingest here
(`POST /api/ingest`) instead of failing with "in use by another process". The server runs
`index.pipeline.run_ingest` in its bounded pool with its own client, which the ingest leaves open: releasing
it would stop the server's in-process Milvus Lite. One ingest at a time; a second one gets a 409 at once.

A question asked meanwhile reads the old rows or the new ones. The one moment a search can fail is the end
of a `--rebuild`, which renames the new collection into place: for an instant the name is missing or not yet
loaded. `IngestGate` tells a search that failed then to wait for the ingest to finish and search again.

Light on purpose: the app imports this module at startup; Milvus and LangChain load only when used.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from config.errors import RagError, StoreError
from server.errors import ApiError, bad_request

if TYPE_CHECKING:
    from pymilvus import MilvusClient

    from config.settings import Settings
    from index.ingest import IngestReport

#: How long a search that failed during an ingest waits for it to finish before giving up (the swap that
#: makes it fail comes last, so the wait is normally a fraction of a second).
SETTLE_SECONDS = 120.0
_COLLECTION_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,254}")


class IngestRequest(BaseModel):
    """POST /api/ingest: what `ingest.py` takes on its command line. Paths are read by the server."""

    model_config = ConfigDict(extra="forbid")

    source: str | None = None
    glob: str | list[str] | None = None
    all: bool = False
    rebuild: bool = False
    prune: bool = False
    repair: bool = False
    collection: str | None = None


class IngestGate:
    """Whether an ingest is under way, and a count of ingest starts and ends that searches compare."""

    def __init__(self, current: Callable[[], Any]) -> None:
        self._current = current
        self._settled = threading.Condition()
        self.running = False
        self.generation = 0
        self._searching = 0
        self._swapping = False

    @contextlib.contextmanager
    def searching(self) -> Iterator[None]:
        """Held by each search: a `--rebuild` renames collections only while no search is reading them (Milvus
        Lite moves their folders, and a search in between can leave files where the new one must go)."""
        with self._settled:
            self._settled.wait_for(lambda: not self._swapping)
            self._searching += 1
        try:
            yield
        finally:
            with self._settled:
                self._searching -= 1
                self._settled.notify_all()

    @contextlib.contextmanager
    def swapping(self) -> Iterator[None]:
        """Held by the ingest around the rename: new searches wait, running ones finish first."""
        with self._settled:
            self._swapping = True
            self._settled.wait_for(lambda: self._searching == 0)
        try:
            yield
        finally:
            with self._settled:
                self._swapping = False
                self._settled.notify_all()

    def begin(self) -> None:
        with self._settled:
            self.running = True
            self.generation += 1

    def end(self) -> None:
        with self._settled:
            self.running = False
            self.generation += 1
            self._settled.notify_all()

    def disturbed_since(self, generation: int) -> bool:
        """An ingest ran during a call that started at `generation`: its failure may be the swap's doing."""
        return self.running or self.generation != generation

    def wait_settled(self, timeout: float = SETTLE_SECONDS) -> bool:
        with self._settled:
            return self._settled.wait_for(lambda: not self.running, timeout)

    def current(self) -> Any:
        """The retriever the service serves now (after an ingest: the one over the new collection)."""
        return self._current()


class IngestClaim:
    """One ingest at a time. Claimed on the event loop, so that a second request is refused at once instead of
    queueing behind the first; given back by the pool thread that ran the ingest, whenever it ends."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.what = ""
        self.since = ""

    def claim(self, what: str) -> None:
        if not self._lock.acquire(blocking=False):
            message = RagError(
                f"an ingest is already running on this server ({self.what}, since {self.since})",
                "wait for it to finish (the server logs its summary), then run this again",
            ).one_line()
            raise ApiError(409, message, "invalid_request_error", "ingest_running")
        self.what, self.since = what, time.strftime("%H:%M:%S")

    def release(self) -> None:
        self._lock.release()


def ingest_options(body: IngestRequest, settings: Settings) -> dict[str, Any]:
    """`run_ingest`'s keywords (plus `collection`), or a 400 naming the problem and the fix."""
    from loaders.sources import ALL_GLOB, is_url

    source = (body.source or "").strip() or None
    if source is not None and not is_url(source) and not os.path.isabs(os.path.expanduser(source)):
        raise bad_request(
            f"the source {source!r} is a relative path, and the server cannot tell relative to what",
            "send an absolute path (on the server's machine) or an http(s) URL of a zip",
        )
    if body.all and body.glob:
        raise bad_request("both glob and all are set", "send one of them")
    collection = (body.collection or "").strip() or settings.collection
    if not _COLLECTION_NAME.fullmatch(collection):
        raise bad_request(
            f"the collection name {collection!r} is not valid",
            "use letters, digits and underscores, starting with a letter or underscore",
        )
    return {
        "source": source,
        "glob": ALL_GLOB if body.all else body.glob,
        "rebuild": body.rebuild,
        "prune": body.prune,
        "repair": body.repair,
        "collection": collection,
    }


def describe_options(options: dict[str, Any]) -> str:
    """For the server log and the 409: what is being ingested (URLs without credentials)."""
    from loaders.sources import display_url, is_url

    source = options["source"]
    shown = "the default source" if source is None else display_url(source) if is_url(source) else source
    glob = options["glob"]
    words = [f"{shown}, glob {glob if glob is None or isinstance(glob, str) else ' '.join(glob)}"]
    words += [flag for flag in ("rebuild", "prune", "repair") if options[flag]]
    return " ".join(words) + f" into '{options['collection']}'"


def refuse_damaged(client: MilvusClient, settings: Settings, pid: int) -> None:
    """`--repair` / `--rebuild` move a damaged collection aside, which cannot happen under a running server."""
    from index import health
    from index.repair import probe

    try:
        with health.damage_guard(settings):
            probe(client, settings)
    except health.DamagedIndexError as exc:
        raise StoreError(
            f"{exc.problem}; moving it aside cannot happen while this server (pid {pid}) holds it",
            "stop the server, run python scripts/ingest.py --repair, then start the server again",
        ) from None


def report_payload(report: IngestReport) -> dict[str, Any]:
    """The report's fields (what `ingest.py` prints comes from them), plus its summary line for curl users."""
    return {"summary": report.summary(), **dataclasses.asdict(report)}


def report_from_payload(payload: dict[str, Any]) -> IngestReport:
    from index.ingest import IngestReport

    names = {f.name for f in dataclasses.fields(IngestReport)}
    fields = {key: value for key, value in payload.items() if key in names}
    fields["skipped"] = [(str(path), str(reason)) for path, reason in fields.get("skipped", [])]
    return IngestReport(**fields)
