"""`server.json` beside the Milvus Lite index: where a running server can be reached.

Milvus Lite lets one process hold a data folder. While `scripts/serve.py` holds it, a CLI that finds the
folder locked reads this file and asks the server instead of failing. The file names the collection too,
because one folder can hold several and the server serves one. A record whose pid is gone (a server killed
with SIGKILL, a crash) is stale and ignored; the next server overwrites it.
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from config.settings import Settings

RECORD_NAME = "server.json"


@dataclass(frozen=True)
class ServerRecord:
    url: str
    pid: int
    collection: str


def record_path(settings: Settings) -> Path:
    return settings.data_dir / RECORD_NAME


def write_record(settings: Settings, url: str) -> Path:
    """Written atomically (rename), so a CLI never reads half a file."""
    path = record_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {"url": url, "pid": os.getpid(), "collection": settings.collection}
    fd, tmp = tempfile.mkstemp(prefix=".server-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(payload, handle)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def remove_record(settings: Settings) -> None:
    """Only our own record: a second server's file (another collection, a restart) is left alone."""
    record = read_record(settings)
    if record is not None and record.pid == os.getpid():
        record_path(settings).unlink(missing_ok=True)


def read_record(settings: Settings) -> ServerRecord | None:
    try:
        data = json.loads(record_path(settings).read_text(encoding="utf-8"))
        return ServerRecord(url=str(data["url"]), pid=int(data["pid"]), collection=str(data["collection"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def find_server(settings: Settings, *, any_collection: bool = False) -> ServerRecord | None:
    """The live server that serves this index and collection, or None. `any_collection`: whatever collection
    it serves, since it holds the whole folder (an ingest into another collection goes through it too)."""
    if not settings.uses_lite:
        return None
    record = read_record(settings)
    if record is None or not pid_alive(record.pid):
        return None
    if record.collection != settings.collection and not any_collection:
        return None
    return record


def pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, someone else's
        return True
    return True
