"""Where the corpus comes from: a folder, a local `.zip`, or an http(s) URL to a zip.

Zips are read member by member in memory and never extracted, so a hostile archive (`../` or absolute
member paths) cannot write anywhere; such an archive is refused outright rather than half-read. A URL is
downloaded once into `<cache_dir>/downloads/`: to a temporary file first, renamed into place only after
the whole file is verified, so an interrupted or corrupt download is never mistaken for the corpus.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import re
import stat
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zipfile
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType

from config.errors import SourceError

logger = logging.getLogger(__name__)

#: The `--all` glob: every markdown and JSON file of the corpus.
ALL_GLOB = "**/*.{md,json}"

_SOURCE_FIX = "set RAG_SOURCE (or --source) to a docs folder, a .zip file or an http(s) URL of a zip"
_CHUNK_BYTES = 1 << 16
_USER_AGENT = "milvus-deepseek-rag (+https://github.com/milvus-io/milvus-docs)"


# --------------------------------------------------------------------------------------------------------
# Corpora
# --------------------------------------------------------------------------------------------------------


class Corpus(ABC):
    """A read-only set of files addressed by POSIX paths relative to the corpus root."""

    #: How the corpus is named in messages (a path or a URL without credentials).
    description: str

    @abstractmethod
    def paths(self) -> list[str]:
        """Every file in the corpus, sorted; hidden files and folders (`.git`, `__MACOSX`) are left out."""

    @abstractmethod
    def size(self, path: str) -> int:
        """The file's size in bytes, known without reading it."""

    @abstractmethod
    def read(self, path: str) -> bytes:
        """The file's bytes; `SourceError` when the corpus itself turns out to be damaged."""

    def has(self, path: str) -> bool:
        return path in self._path_set()

    def special(self, path: str) -> str | None:
        """Why `path` is not a regular file (a FIFO, a socket, a device), or None. Reading a FIFO waits for
        a writer forever, so such files are skipped, not read."""
        return None

    def _path_set(self) -> frozenset[str]:
        cached = getattr(self, "_paths_cache", None)
        if cached is None:
            cached = frozenset(self.paths())
            self._paths_cache = cached
        return cached

    def close(self) -> None:  # noqa: B027 - folders hold nothing open
        """Release what the corpus holds open."""

    def __enter__(self) -> Corpus:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


def _hidden(parts: Iterable[str]) -> bool:
    return any(p.startswith(".") or p == "__MACOSX" for p in parts)


class FolderCorpus(Corpus):
    """A folder on disk (for instance an unzipped docs release or a milvus-docs checkout)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.description = str(root)
        files: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not _hidden((d,))]
            rel = Path(dirpath).relative_to(root).as_posix()
            for name in filenames:
                if not _hidden((name,)):
                    files.append(name if rel == "." else f"{rel}/{name}")
        self._files = sorted(files)

    def paths(self) -> list[str]:
        return list(self._files)

    def special(self, path: str) -> str | None:
        try:
            mode = (self.root / path).stat().st_mode
        except OSError:
            return None  # size() and read() say what is wrong with it
        if stat.S_ISREG(mode):
            return None
        kinds = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"))
        kind = next((name for test, name in kinds if test(mode)), "a block device" if stat.S_ISBLK(mode) else "")
        return f"{kind or 'a special file'}, not a regular file"

    def size(self, path: str) -> int:
        try:
            return (self.root / path).stat().st_size
        except OSError as exc:
            raise self._unreadable(path, exc) from exc

    def read(self, path: str) -> bytes:
        try:
            return (self.root / path).read_bytes()
        except OSError as exc:
            raise self._unreadable(path, exc) from exc

    def _unreadable(self, path: str, exc: OSError) -> SourceError:
        return SourceError(
            f"cannot read {self.root / path}: {exc.strerror or exc}",
            "check the file's permissions, or leave it out with a narrower RAG_GLOB / --glob",
        )


def unsafe_member(name: str) -> bool:
    """True for zip member names that would escape an extraction folder (absolute, drive, or `..`)."""
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name) or "\0" in name:
        return True
    return any(part == ".." for part in re.split(r"[/\\]", name))


def _bad_zip(where: str, detail: str, fix: str) -> SourceError:
    return SourceError(f"{where} is not a valid zip file ({detail})", fix)


def _check_members(zf: zipfile.ZipFile, where: str) -> None:
    for info in zf.infolist():
        if unsafe_member(info.filename):
            raise SourceError(
                f"{where} contains an unsafe member path {info.filename!r} (absolute or with '..'); "
                "refusing to read it",
                "use the official Milvus docs zip, or a folder you have checked",
            )


_ZIP_FIX = "download it again, or pass the unzipped folder instead"
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, ValueError, NotImplementedError)


def check_zip(path: Path, *, where: str | None = None) -> None:
    """Refuse truncated or corrupt zips (every member's CRC is checked) and zips with unsafe member paths."""
    where = where or str(path)
    try:
        with zipfile.ZipFile(path) as zf:
            _check_members(zf, where)
            bad = zf.testzip()
    except _ZIP_ERRORS as exc:
        raise _bad_zip(where, f"truncated or corrupt: {exc}", _ZIP_FIX) from exc
    if bad is not None:
        raise _bad_zip(where, f"CRC check failed for {bad}", _ZIP_FIX)


class ZipCorpus(Corpus):
    """A zip archive read in memory, member by member; nothing is ever extracted."""

    def __init__(self, path: Path, *, description: str | None = None) -> None:
        self.path = path
        self.description = description or str(path)
        try:
            self._zf = zipfile.ZipFile(path)
        except _ZIP_ERRORS as exc:
            raise _bad_zip(self.description, f"truncated or corrupt: {exc}", _ZIP_FIX) from exc
        try:
            _check_members(self._zf, self.description)
        except SourceError:
            self._zf.close()
            raise
        self._infos = {
            i.filename: i
            for i in self._zf.infolist()
            if not i.is_dir() and not _hidden(i.filename.split("/"))
        }
        self._files = sorted(self._infos)

    def paths(self) -> list[str]:
        return list(self._files)

    def size(self, path: str) -> int:
        return self._infos[path].file_size

    def read(self, path: str) -> bytes:
        try:
            return self._zf.read(self._infos[path])
        except _ZIP_ERRORS as exc:
            raise _bad_zip(self.description, f"member {path}: {exc}", _ZIP_FIX) from exc

    def close(self) -> None:
        self._zf.close()


# --------------------------------------------------------------------------------------------------------
# Opening a source string
# --------------------------------------------------------------------------------------------------------


def is_url(source: str | os.PathLike[str]) -> bool:
    return isinstance(source, str) and source.lower().startswith(("http://", "https://"))


def display_url(url: str) -> str:
    """The URL as it may appear in messages: without user:password and with the query string elided."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    shown = f"{parts.scheme}://{host}{parts.path}"
    return shown + ("?…" if parts.query else "")


def open_corpus(
    source: str | os.PathLike[str],
    *,
    cache_dir: Path | None = None,
    download_timeout: float = 30.0,
    progress: bool | None = True,
) -> Corpus:
    """Open a folder, a `.zip` or a URL of a zip (downloaded once, then read from the cache).

    `progress`: True shows a download bar on stderr, False hides it, None shows it only on a terminal.
    """
    if is_url(source):
        url = str(source)
        if cache_dir is None:
            from config.settings import get_settings

            cache_dir = get_settings().cache_dir
        local = download_zip(url, cache_dir, timeout=download_timeout, progress=progress)
        return _non_empty(ZipCorpus(local, description=display_url(url)))

    text = os.fspath(source)
    if text.lower().startswith("file://"):
        text = urllib.request.url2pathname(urllib.parse.urlsplit(text).path)
    if not text.strip():
        raise SourceError("the corpus source is empty", _SOURCE_FIX)
    path = Path(text).expanduser()
    if not path.exists():
        raise SourceError(f"the corpus source {path} does not exist", _SOURCE_FIX)
    if path.is_dir():
        corpus: Corpus = FolderCorpus(path)
        if not corpus.paths():
            raise SourceError(
                f"the corpus folder {path} has no files",
                "point RAG_SOURCE (or --source) at the docs folder (the one that holds en/)",
            )
        return corpus
    if not zipfile.is_zipfile(path):
        if path.suffix.lower() == ".zip":
            raise _bad_zip(str(path), "truncated or corrupt", _ZIP_FIX)
        raise SourceError(f"the corpus source {path} is neither a folder nor a .zip file", _SOURCE_FIX)
    return _non_empty(ZipCorpus(path))


def _non_empty(corpus: ZipCorpus) -> ZipCorpus:
    if not corpus.paths():
        corpus.close()
        raise SourceError(f"the zip {corpus.description} has no files", _SOURCE_FIX)
    return corpus


# --------------------------------------------------------------------------------------------------------
# Globs
# --------------------------------------------------------------------------------------------------------


def as_patterns(glob: str | Sequence[str]) -> tuple[str, ...]:
    patterns = (glob,) if isinstance(glob, str) else tuple(glob)
    patterns = tuple(p for p in (p.strip() for p in patterns) if p)
    if not patterns:
        raise SourceError("the glob is empty", f"set RAG_GLOB (or --glob), e.g. en/faq/*.md, or {ALL_GLOB}")
    return patterns


def match_paths(paths: Iterable[str], glob: str | Sequence[str]) -> list[str]:
    """The paths matching any of the globs, in their original order. A leading `/` means the corpus root.

    wcmatch: `*` and `?` stay within one folder, `**/` spans any number of folders (none too), `{a,b}` picks,
    `[...]` is a character class; POSIX separators on every OS, and dot-files match too (the corpora leave
    them out themselves).
    """
    from wcmatch import glob as wcglob

    flags = wcglob.GLOBSTAR | wcglob.BRACE | wcglob.DOTGLOB | wcglob.FORCEUNIX
    matcher = wcglob.compile([p.lstrip("/") for p in as_patterns(glob)], flags=flags)
    return [p for p in paths if matcher.match(p)]


def select(corpus: Corpus, glob: str | Sequence[str]) -> list[str]:
    """The corpus files the globs pick; `SourceError` naming the corpus size when none match."""
    patterns = as_patterns(glob)
    paths = corpus.paths()
    chosen = match_paths(paths, patterns)
    if not chosen:
        shown = ", ".join(repr(p) for p in patterns)
        example = next((p for p in paths if p.endswith(".md")), paths[0] if paths else "")
        raise SourceError(
            f"the glob {shown} matched none of the {len(paths)} files in {corpus.description}",
            f"globs are relative to the corpus root (e.g. {example}): fix RAG_GLOB / --glob, "
            "or use --all to load every .md and .json file",
        )
    return chosen


# --------------------------------------------------------------------------------------------------------
# Downloads
# --------------------------------------------------------------------------------------------------------


def cached_download_path(url: str, cache_dir: Path) -> Path:
    """Where the zip of `url` lives once downloaded: one file per URL, named after it."""
    name = Path(urllib.parse.urlsplit(url).path).name or "corpus.zip"
    name = re.sub(r"[^A-Za-z0-9._-]", "_", name)
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:12]
    return Path(cache_dir) / "downloads" / f"{digest}-{name}"


def download_zip(url: str, cache_dir: Path, *, timeout: float = 30.0, progress: bool | None = True) -> Path:
    """The verified local copy of the zip at `url`, downloaded only when no verified copy is cached."""
    shown = display_url(url)
    dest = cached_download_path(url, cache_dir)
    if dest.is_file():
        try:
            check_zip(dest, where=str(dest))
            logger.debug("using the cached download %s of %s", dest, shown)
            return dest
        except SourceError as exc:
            logger.warning("the cached download is damaged (%s); downloading %s again", exc.problem, shown)
            dest.unlink(missing_ok=True)
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise SourceError(
            f"cannot create the download folder {dest.parent}: {exc.strerror or exc}",
            "set RAG_CACHE_DIR to a writable folder",
        ) from exc
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".part", dir=dest.parent)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            _fetch(url, out, timeout=timeout, progress=progress, desc=dest.name.split("-", 1)[-1])
        check_zip(tmp, where=f"the download of {shown}")
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return dest


def _download_fix(timeout: float | None = None) -> str:
    more = f"raise RAG_DOWNLOAD_TIMEOUT (now {timeout:g} s), " if timeout is not None else ""
    return (
        f"check the URL and your network, {more}or download the zip yourself and set RAG_SOURCE "
        "(or --source) to its path"
    )


def _fetch(url: str, out: object, *, timeout: float, progress: bool | None, desc: str) -> None:
    from tqdm import tqdm

    shown = display_url(url)
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            length_header = response.headers.get("Content-Length")
            expected = int(length_header) if length_header and length_header.isdigit() else None
            received = 0
            with tqdm(
                total=expected,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=f"Downloading {desc}",
                file=sys.stderr,
                disable=None if progress is None else not progress,
                leave=False,
            ) as bar:
                while True:
                    block = response.read(_CHUNK_BYTES)
                    if not block:
                        break
                    out.write(block)  # type: ignore[attr-defined]
                    received += len(block)
                    bar.update(len(block))
    except urllib.error.HTTPError as exc:
        raise SourceError(
            f"downloading {shown} failed: HTTP {exc.code} {exc.reason}", _download_fix()
        ) from exc
    except (TimeoutError, urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError) or "timed out" in str(reason):
            raise SourceError(
                f"downloading {shown} timed out after {timeout:g} s", _download_fix(timeout)
            ) from exc
        if isinstance(reason, ConnectionRefusedError):
            raise SourceError(
                f"cannot download {shown}: connection refused by {urllib.parse.urlsplit(url).netloc}",
                _download_fix(),
            ) from exc
        if isinstance(exc, http.client.IncompleteRead):
            raise SourceError(f"the download of {shown} stopped early", _download_fix()) from exc
        detail = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
        raise SourceError(f"cannot download {shown}: {detail}", _download_fix()) from exc
    if expected is not None and received != expected:
        raise SourceError(
            f"the download of {shown} is incomplete ({received} of {expected} bytes)", _download_fix()
        )
