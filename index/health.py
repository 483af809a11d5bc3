"""What the project knows about its own index beyond what Milvus says: damage, lost rows, who holds the lock.

Milvus Lite keeps a collection as plain files (`schema.json`, `manifest.json`, parquet segments, `.idx`
indexes). A half-written file makes every open fail with a raw pymilvus error, and a damaged `manifest.json`
is silently replaced by `manifest.json.prev`, so the index rolls back to an older state without a word.
Neither can be seen from inside the database alone, so:

- failures while opening, loading or counting are classified (`damage_error`) rather than every file being
  checked up front: the normal path pays nothing for it;
- every finished ingest leaves a small record beside the database (`ingest-record-<collection>.json`: row
  count, which source each file came from, when), so that a later open can tell that rows went missing
  (one count query, about a millisecond) and an ingest from another source can tell its files from ours;
- a damaged collection is moved aside with a timestamp, never deleted, before a fresh one is built.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from config.errors import DamagedIndexError, RagError, StoreError
from config.settings import Settings

if TYPE_CHECKING:
    from pymilvus import MilvusClient

log = logging.getLogger(__name__)

RECORD_VERSION = 1
# Words of the errors Milvus Lite raises for half-written or garbled files (checked on milvus-lite 3.2.2):
# "Parquet magic bytes not found", "schema file ... is not valid JSON", "Failed to read all data for array
# ... (file seems not fully written?)", ManifestCorruptedError, WALCorruptedError.
_DAMAGE = re.compile(
    r"parquet|not valid json|corrupt|not fully written|magic bytes|manifest|\bwal\b|schema file|"
    r"failed to read|unexpected end|truncated|arrow|deserializ|no such file",
    re.I,
)


# ---- the ingest record ----------------------------------------------------------------------------------


@dataclass
class IngestRecord:
    """What the last ingest left behind. `files` maps each indexed file to the source it came from."""

    collection: str
    rows: int = 0
    files: dict[str, str] = field(default_factory=dict)
    source: str = ""
    glob: list[str] = field(default_factory=list)
    finished: str = ""
    state: str = "done"  # "running" while an ingest is under way: a record left so means it did not finish
    pid: int = 0
    version: int = RECORD_VERSION

    def command(self) -> str:
        """The ingest that rebuilds what this record describes."""
        parts = ["python scripts/ingest.py"]
        if self.source:
            parts.append(f"--source {_quote(self.source)}")
        from loaders.sources import ALL_GLOB

        if tuple(self.glob) == (ALL_GLOB,):
            parts.append("--all")
        elif self.glob:
            parts.append(f"--glob {_quote(self.glob[0])}")
        return " ".join(parts)


def _quote(text: str) -> str:
    return text if re.fullmatch(r"[\w./:@%+=,-]+", text) else "'" + text.replace("'", "'\\''") + "'"


def display_uri(settings: Settings) -> str:
    """The store's location for messages: a server URI without any credentials in it."""
    if settings.uses_lite:
        return str(settings.milvus_lite_path)
    return re.sub(r"//[^/@]*@", "//", settings.milvus_uri or "")


def record_path(settings: Settings) -> Path:
    """Beside the database; for a server, one record per server and collection."""
    if settings.uses_lite:
        return settings.data_dir / f"ingest-record-{settings.collection}.json"
    from hashlib import sha256

    digest = sha256(display_uri(settings).encode()).hexdigest()[:10]
    return settings.data_dir / f"ingest-record-{settings.collection}-{digest}.json"


def read_record(settings: Settings) -> IngestRecord | None:
    """The record, or None when there is none or it cannot be read (it is advice, never a reason to fail)."""
    path = record_path(settings)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return IngestRecord(
            collection=str(data["collection"]),
            rows=int(data.get("rows", 0)),
            files={str(k): str(v) for k, v in dict(data.get("files", {})).items()},
            source=str(data.get("source", "")),
            glob=[str(g) for g in data.get("glob", [])],
            finished=str(data.get("finished", "")),
            state=str(data.get("state", "done")),
            pid=int(data.get("pid", 0)),
        )
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        log.warning("the ingest record %s cannot be read (%s); the next ingest writes a new one", path, exc)
        return None


def write_record(settings: Settings, record: IngestRecord) -> None:
    """Written to a temporary file and renamed, so that a crash leaves the old record or the new one."""
    path = record_path(settings)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps(asdict(record), indent=1, sort_keys=True), encoding="utf-8")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def source_id(source: str | os.PathLike[str]) -> str:
    """One name per source however it was typed: an absolute path, or a URL without credentials."""
    from loaders.sources import display_url, is_url

    if is_url(source):
        return display_url(str(source))
    text = os.fspath(source)
    if text.lower().startswith("file://"):
        import urllib.parse
        import urllib.request

        text = urllib.request.url2pathname(urllib.parse.urlsplit(text).path)
    return str(Path(text).expanduser().resolve())


def count_rows(client: MilvusClient, collection: str) -> int:
    rows = client.query(collection, filter="", output_fields=["count(*)"])
    return int(rows[0]["count(*)"]) if rows else 0


def rows_lost(settings: Settings, rows: int, record: IngestRecord | None, *, ingesting: bool = False) -> str | None:
    """Why the index holds less than the last ingest left (a rolled-back or half-restored database, an
    unfinished ingest), with what to run; None when it holds what it should."""
    if record is None:
        return None
    if record.state == "running":
        return (
            f"the last ingest into '{settings.collection}' (pid {record.pid}) did not finish, so the index may "
            "be incomplete"
            + (": this run finishes it" if ingesting else f" — finish it: {record.command()}")
        )
    if rows >= record.rows:
        return None
    what = (
        f"the index '{settings.collection}' holds {rows:,} chunks, but the last ingest ({record.finished}) "
        f"left {record.rows:,}: part of it was lost (a damaged or rolled-back database)"
    )
    if ingesting:
        return what + f"; this run adds back what is missing from the files it reads (all of it: {record.command()})"
    return what + f" — answers come from a partial index; restore it: {record.command()}"


_warned: set[str] = set()


def warn_if_rows_lost(client: MilvusClient, settings: Settings) -> None:
    """The cheap check `ask.py` makes on every open: one count query and a small file read. A process that
    opens the index for each question (an interactive `ask.py`) says the same thing once."""
    record = read_record(settings)
    if record is None:
        return
    message = rows_lost(settings, count_rows(client, settings.collection), record)
    if message and message not in _warned:
        _warned.add(message)
        log.warning(message)


# ---- damage ---------------------------------------------------------------------------------------------


def damage_error(exc: BaseException, settings: Settings) -> DamagedIndexError | None:
    """The one-line error for a Milvus Lite failure that comes from its files, or None for any other."""
    if isinstance(exc, RagError) or not settings.uses_lite:
        return None
    text = str(getattr(exc, "message", "") or exc)
    lite_path = str(settings.milvus_lite_path)
    if not (_DAMAGE.search(text) or lite_path in text) or re.search(r"permission denied|read-only", text, re.I):
        return None  # a folder this user cannot write is not repaired by moving it
    detail = " ".join(text.split())
    detail = detail.replace(lite_path + os.sep, "").replace(lite_path, "")
    if len(detail) > 160:
        detail = detail[:157] + "..."
    record = read_record(settings)
    rebuild = record.command() if record is not None else "python scripts/ingest.py [--source S]"
    return DamagedIndexError(
        f"the Milvus Lite index at {settings.milvus_lite_path} is damaged ({detail})",
        f"repair it: {rebuild} --repair (the damaged collection is moved aside with a timestamp, "
        "not deleted, and a fresh one is built)",
    )


@contextlib.contextmanager
def damage_guard(settings: Settings) -> Iterator[None]:
    """Turn a failure caused by damaged index files into `DamagedIndexError` (the original chained)."""
    try:
        yield
    except Exception as exc:
        error = damage_error(exc, settings)
        if error is None:
            raise
        raise error from exc


def not_a_folder(settings: Settings) -> StoreError | None:
    """`milvus.db` exists but is not a folder (a file copied over it, say): Milvus Lite's own error would
    read as a lock held by another process."""
    path = settings.milvus_lite_path
    if settings.uses_lite and path.exists() and not path.is_dir():
        return DamagedIndexError(
            f"{path} is a file, not a Milvus Lite index folder",
            "move it away, or run: python scripts/ingest.py --repair (it moves the file aside, "
            "not deleted, and builds a fresh index); or point RAG_DATA_DIR at another folder",
        )
    return None


def move_aside(settings: Settings, *, whole_database: bool = False) -> Path:
    """Rename the collection's folder (or the whole database) to `<name>.damaged-<time>` beside the database.

    Milvus Lite must not be serving the folder (`index.store.release` first). Nothing is deleted: the
    damaged files stay for inspection or for `milvus-lite dump`.
    """
    stamp = time.strftime("%Y%m%d-%H%M%S")
    db = settings.milvus_lite_path
    folder = db / "collections" / settings.collection
    if whole_database or not db.is_dir() or not folder.is_dir():
        source, name = db, db.name
    else:
        source, name = folder, f"{settings.collection}"
    target = settings.data_dir / f"{name}.damaged-{stamp}"
    n = 1
    while target.exists():
        n += 1
        target = settings.data_dir / f"{name}.damaged-{stamp}-{n}"
    shutil.move(str(source), str(target))
    log.debug("moved the damaged %s to %s", source, target)
    return target


# ---- who holds the lock ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class LockHolder:
    pid: int
    program: str  # "ingest.py", "ask.py", "milvus-rag ingest", "python" ...

    @property
    def is_ingest(self) -> bool:
        return "ingest" in self.program

    def describe(self) -> str:
        if self.pid == os.getpid():
            return f"this process (pid {self.pid}) still holds it: release it first (index.store.release)"
        kind = "an ingest" if self.is_ingest else "not an ingest"
        return f"pid {self.pid}, {self.program} ({kind})"


def lock_holder(lock_file: Path) -> LockHolder | None:
    """The process holding Milvus Lite's `LOCK` (an flock), from /proc/locks on Linux; None elsewhere or
    when it cannot be told. Only the program's name is kept: its arguments may hold anything."""
    try:
        inode = os.stat(lock_file).st_ino
        lines = Path("/proc/locks").read_text().splitlines()
    except OSError:
        return None
    for line in lines:
        parts = line.split()
        if len(parts) < 6 or "->" in parts or parts[1] != "FLOCK":
            continue
        pid, where = parts[4], parts[5]
        if not pid.isdigit() or where.rsplit(":", 1)[-1] != str(inode):
            continue
        return LockHolder(int(pid), _program(int(pid)))
    return None


def _program(pid: int) -> str:
    try:
        argv = [a.decode(errors="replace") for a in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0") if a]
    except OSError:
        return "unknown program"
    if not argv:
        return "unknown program"
    names = [os.path.basename(a) for a in argv]
    i = 1 if names[0].startswith("python") and len(argv) > 1 else 0
    while i < len(argv) - 1 and argv[i].startswith("-"):
        if argv[i] in ("-m", "-c"):
            return f"python {argv[i]} {argv[i + 1]}" if argv[i] == "-m" else "python -c"
        i += 1
    program = names[i] if not argv[i].startswith("-") else names[0]
    if program.startswith("milvus-rag") and i + 1 < len(argv):
        program += f" {names[i + 1]}"
    return program
