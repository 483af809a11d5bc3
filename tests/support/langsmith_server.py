"""A local stand-in for the LangSmith API that records what the real `langsmith` client sends.

api.smith.langchain.com is unreachable from the tests, so this server speaks the ingest side of its protocol
on 127.0.0.1: `GET /info` (which tells the client how to send), `POST /runs`, `PATCH /runs/{id}`,
`POST /runs/batch` and `POST /runs/multipart` (multipart/form-data, plain, gzip or zstd). Point
`LANGSMITH_ENDPOINT` at `url` and the client and LangChain's tracer run unchanged.

`/info` announces what the real service does by default (multipart ingest with zstd compression); pass
`multipart=False` for the JSON batch endpoint or `compression=False` for plain multipart. Every request is
kept (`requests`, with its raw and decoded body) so a test can assert on the exact bytes that left the
process, and `runs()` merges the create and update operations into one dict per run.

Requests without the expected `x-api-key` get 401, as from LangSmith. The server stops itself after
`max_lifetime` seconds in case a test forgets. Stdlib plus `zstandard` (a dependency of `langsmith`).
"""

from __future__ import annotations

import gzip
import io
import json
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from tests.support.net import LocalHTTPServer, QuietHandler

DEFAULT_API_KEY = "lsv2_pt_fake0123456789abcdef0123456789_0123456789"


@dataclass
class CapturedRequest:
    """One request as received: `raw` is the body on the wire, `body` after decompression."""

    method: str
    path: str
    headers: dict[str, str]
    raw: bytes
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass
class FakeLangSmith(LocalHTTPServer):
    """The server; use as a context manager or call start()/stop()."""

    api_key: str = DEFAULT_API_KEY
    multipart: bool = True
    compression: bool = True
    max_lifetime: float = 300.0
    requests: list[CapturedRequest] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._ops: list[tuple[str, dict[str, Any]]] = []

    # --- lifecycle ---
    def start(self) -> FakeLangSmith:
        self._serve(type("Handler", (_Handler,), {"fake": self}))
        return self

    @property
    def url(self) -> str:
        """What LANGSMITH_ENDPOINT should be."""
        return self._base_url()

    def info(self) -> dict[str, Any]:
        """The `/info` document: the shape the real service returns."""
        return {
            "version": "0.10.0",
            "license_expiration_time": None,
            "batch_ingest_config": {
                "use_multipart_endpoint": self.multipart,
                "scale_up_qsize_trigger": 1000,
                "scale_up_nthreads_limit": 16,
                "scale_down_nempty_trigger": 4,
                "size_limit": 100,
                "size_limit_bytes": 20_971_520,
            },
            "instance_flags": {"zstd_compression_enabled": self.compression},
        }

    # --- what tests read ---
    def ingest_requests(self) -> list[CapturedRequest]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith("/runs")]

    def payload_bytes(self) -> bytes:
        """Every run payload as sent and as decoded: where a leaked secret would be."""
        with self._lock:
            return b"\n".join(part for r in self.requests for part in (r.raw, r.body))

    def decoded_bytes(self) -> bytes:
        """Every run payload as decoded: where to look for a short fragment, which compressed bytes may hold
        by chance."""
        with self._lock:
            return b"\n".join(r.body for r in self.requests)

    def runs(self) -> dict[str, dict[str, Any]]:
        """Run id -> the run as the server would store it: the create merged with its updates."""
        with self._lock:
            return self._merged()

    def wait_for(self, predicate: Any, timeout: float = 20.0) -> dict[str, dict[str, Any]]:
        """`runs()` once `predicate(runs)` holds; fails the test after `timeout` seconds."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not predicate(runs := self._merged()):
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"LangSmith did not receive the expected runs in {timeout}s: {_names(runs)}")
                self._changed.wait(remaining)
            return runs

    # --- internals ---
    def _merged(self) -> dict[str, dict[str, Any]]:
        merged: dict[str, dict[str, Any]] = {}
        for kind, op in sorted(self._ops, key=lambda item: item[0] != "post"):  # creates before updates
            run = merged.setdefault(str(op["id"]), {})
            run.update({k: v for k, v in op.items() if v is not None or kind == "post"})
        return merged

    def _record(self, request: CapturedRequest, ops: list[tuple[str, dict[str, Any]]]) -> None:
        with self._changed:
            self.requests.append(request)
            self._ops.extend(ops)
            self._changed.notify_all()


def _names(runs: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(str(r.get("name")) for r in runs.values())



class _Handler(QuietHandler):
    fake: FakeLangSmith
    server_version = "fake-langsmith"

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def do_PATCH(self) -> None:
        self._handle("PATCH")

    def _handle(self, method: str) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        raw = self._read_body(headers)
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            body = _decompress(raw, headers.get("content-encoding", ""))
        except Exception as exc:  # noqa: BLE001 - a broken body is the client's bug: tell it
            self.send_json(400, {"detail": f"cannot decode body: {exc}"})
            return
        request = CapturedRequest(method, path, headers, raw, body)
        if method == "GET" and path == "/info":  # the client asks before it authenticates anything
            self.fake._record(request, [])
            self.send_json(200, self.fake.info())
            return
        if headers.get("x-api-key") != self.fake.api_key:
            self.fake._record(request, [])
            self.send_json(401, {"detail": "Invalid token"})
            return
        try:
            ops = _operations(method, path, headers, body)
        except ValueError as exc:
            self.fake._record(request, [])
            self.send_json(422, {"detail": str(exc)})
            return
        self.fake._record(request, ops or [])
        if ops is None:
            self.send_json(404, {"detail": "Not Found"})
        else:
            self.send_json(202 if path == "/runs/multipart" else 200, {})

    def _read_body(self, headers: dict[str, str]) -> bytes:
        if headers.get("transfer-encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        return self.rfile.read(int(headers.get("content-length") or 0))



def _decompress(raw: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if not encoding or encoding == "identity":
        return raw
    if encoding == "gzip":
        return gzip.decompress(raw)
    if encoding == "zstd":
        import zstandard

        reader = zstandard.ZstdDecompressor().stream_reader(io.BytesIO(raw), read_across_frames=True)
        return reader.read()
    raise ValueError(f"unsupported content-encoding {encoding!r}")


def _operations(method: str, path: str, headers: dict[str, str], body: bytes) -> list[tuple[str, dict]] | None:
    """The run operations in one request, as ("post" | "patch", run dict); None for an unknown endpoint."""
    if method == "POST" and path == "/runs":
        return [("post", json.loads(body))]
    if method == "PATCH" and path.startswith("/runs/"):
        return [("patch", {**json.loads(body), "id": path.rsplit("/", 1)[1]})]
    if method == "POST" and path == "/runs/batch":
        batch = json.loads(body)
        return [(kind, op) for kind in ("post", "patch") for op in batch.get(kind) or []]
    if method == "POST" and path == "/runs/multipart":
        return _multipart_operations(headers.get("content-type", ""), body)
    return None


def _multipart_operations(content_type: str, body: bytes) -> list[tuple[str, dict]]:
    """Parts are named `post.<id>` / `patch.<id>` (the run) and `post.<id>.inputs` etc. (its big fields)."""
    match = re.search(r'boundary="?([^";]+)"?', content_type)
    if not content_type.startswith("multipart/form-data") or match is None:
        raise ValueError(f"expected multipart/form-data with a boundary, got {content_type!r}")
    delimiter = b"--" + match.group(1).encode()
    runs: dict[tuple[str, str], dict[str, Any]] = {}
    for chunk in body.split(delimiter)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, data = chunk.removeprefix(b"\r\n").partition(b"\r\n\r\n")
        name = re.search(rb'name="([^"]+)"', head)
        if name is None:
            raise ValueError("a multipart part has no name")
        kind, run_id, *rest = name.group(1).decode().split(".")
        if kind == "attachment":
            continue
        if kind not in ("post", "patch"):
            raise ValueError(f"unknown multipart part {name.group(1).decode()!r}")
        run = runs.setdefault((kind, run_id), {"id": run_id})
        value = json.loads(data.removesuffix(b"\r\n"))
        if rest:
            run[rest[0]] = value
        else:
            run.update(value)
    return [(kind, run) for (kind, _), run in runs.items()]
