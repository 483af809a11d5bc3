"""A stand-in for the Hugging Face Hub on 127.0.0.1, speaking enough of its protocol for
`huggingface_hub.hf_hub_download`: HEAD and GET `/{repo}/resolve/{revision}/{filename}` with `X-Repo-Commit`,
`ETag` (the sha256 for weights, as the Hub does for LFS files), `Content-Length` and byte ranges, and the Hub's
`X-Error-Code` on a missing repo, revision or file; `/api/models/{repo}/revision/{rev}` for `snapshot_download`.

Faults a test can ask for, per file name: `corrupt` (different bytes under the real hash), `hold` (send half the
body, set `half_sent`, wait for `release`), `fail_next` (close the connection mid-body on the next N GETs).
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from tests.support.net import LocalHTTPServer, QuietHandler

COMMIT = "1110a243fdf4706b3f48f1d95db1a4f5529b4d41"
LFS_SUFFIXES = (".safetensors", ".bin", ".onnx")


@dataclass
class Repo:
    """A model repository: file name -> bytes, at one commit (also served as `main`)."""

    files: dict[str, bytes]
    commit: str = COMMIT


@dataclass
class Faults:
    corrupt: set[str] = field(default_factory=set)
    hold: set[str] = field(default_factory=set)
    fail_next: dict[str, int] = field(default_factory=dict)


def repo_from_folder(folder: Path, names: list[str] | None = None, commit: str = COMMIT) -> Repo:
    """Every file of a model folder (or the named ones), read once."""
    folder = Path(folder)
    paths = [folder / n for n in names] if names else [p for p in folder.rglob("*") if p.is_file()]
    return Repo({p.relative_to(folder).as_posix(): p.read_bytes() for p in paths if p.is_file()}, commit)


class FakeHub(LocalHTTPServer):
    def __init__(self, repos: dict[str, Repo]) -> None:
        self.repos = repos
        self.faults = Faults()
        self.requests: list[tuple[str, str]] = []
        self.half_sent = threading.Event()
        self.release = threading.Event()
        self._lock = threading.Lock()

    def start(self) -> FakeHub:
        self._serve(_handler(self))
        return self

    @property
    def url(self) -> str:
        return self._base_url()

    def stop(self) -> None:
        self.release.set()  # never leave a held response hanging
        super().stop()

    def downloads(self, name: str) -> int:
        """GETs of a file so far (HEADs not counted)."""
        return sum(1 for method, path in self.requests if method == "GET" and path.endswith("/" + name))

    # -- what the handler asks ---------------------------------------------------------------------

    def lookup(self, repo_id: str, revision: str, filename: str) -> tuple[int, dict[str, str], bytes | None]:
        repo = self.repos.get(repo_id)
        if repo is None:
            return 404, {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"}, None
        if revision not in (repo.commit, "main"):
            return 404, {"X-Error-Code": "RevisionNotFound", "X-Error-Message": "Invalid rev id"}, None
        data = repo.files.get(filename)
        headers = {"X-Repo-Commit": repo.commit}
        if data is None:
            return 404, {**headers, "X-Error-Code": "EntryNotFound", "X-Error-Message": "Entry not found"}, None
        if filename.endswith(LFS_SUFFIXES):
            etag = hashlib.sha256(data).hexdigest()  # the Hub's ETag of an LFS file is its sha256
        else:
            etag = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()  # a git blob id
        headers["ETag"] = f'"{etag}"'
        if filename in self.faults.corrupt:
            data = bytes(b ^ 0x5A for b in data[:4096]) + data[4096:]
        return 200, headers, data

    def take_failure(self, filename: str) -> bool:
        with self._lock:
            left = self.faults.fail_next.get(filename, 0)
            if left > 0:
                self.faults.fail_next[filename] = left - 1
            return left > 0


def _handler(hub: FakeHub) -> type[QuietHandler]:
    class Handler(QuietHandler):
        def handle(self) -> None:
            try:
                super().handle()
            except (ConnectionResetError, BrokenPipeError):
                pass  # a client that hung up on a kept-alive connection (or was killed mid-download)

        def do_HEAD(self) -> None:  # noqa: N802 - stdlib naming
            self._answer(body=False)

        def do_GET(self) -> None:  # noqa: N802 - stdlib naming
            self._answer(body=True)

        def _answer(self, *, body: bool) -> None:
            path = unquote(urlsplit(self.path).path)
            hub.requests.append((self.command, path))
            if path.startswith("/api/models/"):
                self._model_info(path[len("/api/models/") :])
                return
            if "/resolve/" not in path:
                self.send_json(404, {"error": "not found"})
                return
            repo_id, rest = path.lstrip("/").split("/resolve/", 1)
            revision, _, filename = rest.partition("/")
            status, headers, data = hub.lookup(repo_id, revision, filename)
            if data is None:
                self.send_json(status, {"error": headers.get("X-Error-Message", "")}, headers=headers)
                return
            start = _range_start(self.headers.get("Range"))
            part = data[start:]
            self.send_response(206 if start else 200)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(part)))
            if start:
                self.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
            self.end_headers()
            if not body:
                return
            self._send_body(filename, part)

        def _send_body(self, filename: str, part: bytes) -> None:
            try:
                if filename in hub.faults.hold:
                    self.wfile.write(part[: len(part) // 2])
                    self.wfile.flush()
                    hub.half_sent.set()
                    hub.release.wait(timeout=120)
                    self.close_connection = True
                    return
                if hub.take_failure(filename):
                    self.wfile.write(part[: len(part) // 3])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                self.wfile.write(part)
                self.wfile.flush()
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True

        def _model_info(self, rest: str) -> None:
            repo_id, _, revision = rest.partition("/revision/")
            repo = hub.repos.get(repo_id)
            if repo is None:
                self.send_json(404, {"error": "Repository not found"}, headers={"X-Error-Code": "RepoNotFound"})
                return
            info: dict[str, Any] = {
                "id": repo_id,
                "modelId": repo_id,
                "sha": repo.commit,
                "siblings": [{"rfilename": name} for name in sorted(repo.files)],
            }
            self.send_json(200, info, headers={"X-Repo-Commit": repo.commit})

    return Handler


def _range_start(header: str | None) -> int:
    if not header or not header.startswith("bytes="):
        return 0
    first = header[len("bytes=") :].split(",")[0].split("-")[0]
    return int(first) if first.isdigit() else 0
