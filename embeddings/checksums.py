"""File hashes and crash-safe writes for the model cache: weights are only used after their sha256 is known,
and a half-written file is never mistaken for a whole one."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any

TMP_MARK = ".tmp-"
#: Where checked hashes are remembered, per cache folder.
RECORD_FILE = "verified.json"
# A temp file or folder this old was left by a process that died mid-write; younger ones may be a live writer's.
STALE_SECONDS = 3600


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_atomic(path: Path, data: bytes) -> None:
    """Temp file + fsync + rename: readers see the old file or the whole new one, never a part."""
    tmp = path.with_name(f"{path.name}{TMP_MARK}{os.getpid()}-{threading.get_ident()}")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def remembered_sha256(path: Path, record_dir: Path) -> str:
    """The file's sha256, hashed again only when its size or mtime changed since the last check.

    Hashing 90 MB costs ~0.2 s on every start otherwise. The record lives in `record_dir` (a cache folder),
    keyed by the resolved path, so a copy elsewhere or a file modified in place (new mtime) is hashed again.
    """
    path = Path(path)
    stat = path.stat()
    key = str(path.resolve())
    record_path = Path(record_dir) / RECORD_FILE
    record = read_json(record_path)
    seen = record.get(key)
    if isinstance(seen, dict) and seen.get("size") == stat.st_size and seen.get("mtime_ns") == stat.st_mtime_ns:
        digest = seen.get("sha256")
        if isinstance(digest, str) and len(digest) == 64:
            return digest
    digest = sha256_file(path)
    record[key] = {"size": stat.st_size, "mtime_ns": stat.st_mtime_ns, "sha256": digest}
    try:
        record_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(record_path, json.dumps(record, indent=1, sort_keys=True).encode())
    except OSError:
        pass  # only an optimisation: the file will be hashed again next time
    return digest


def clear_stale(folder: Path, pattern: str = f"*{TMP_MARK}*") -> None:
    """Remove what a crashed writer left (files or folders matching `pattern`, older than STALE_SECONDS)."""
    now = time.time()
    for leftover in Path(folder).glob(pattern):
        try:
            if now - leftover.stat().st_mtime <= STALE_SECONDS:
                continue
            if leftover.is_dir() and not leftover.is_symlink():
                shutil.rmtree(leftover, ignore_errors=True)
            else:
                leftover.unlink()
        except OSError:
            pass
