"""A real HTTP server on 127.0.0.1 serving the docs zip and the ways a download goes wrong.

Routes: /docs.zip (the real zip), /missing.zip (404), /slow.zip (answers only after the test's short
timeout), /truncated.zip (a well-formed response carrying half a zip), /short.zip (announces the full
length, sends half, hangs up), /corrupt.zip (one byte of member data flipped: CRC mismatch),
/evil.zip (a member named ../evil.txt), /page.html (not a zip). Everything is served from memory.
"""

from __future__ import annotations

import socket
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.loaders.support import corrupt_copy, zip_bytes
from tests.support.net import LocalHTTPServer, QuietHandler

SLOW_SECONDS = 3.0  # the slow route's delay; tests use a timeout well below it


@dataclass
class DocsServer(LocalHTTPServer):
    """The routes above from memory, on the tests' shared server lifecycle (free port, watchdog)."""

    docs: bytes = b""
    hits: Counter[str] = field(default_factory=Counter)
    released: threading.Event = field(default_factory=threading.Event)

    def start(self) -> DocsServer:
        docs, hits, released = self.docs, self.hits, self.released
        routes = {
            "/docs.zip": docs,
            "/truncated.zip": docs[: len(docs) // 2],
            "/corrupt.zip": corrupt_copy(docs),
            "/evil.zip": zip_bytes({"en/ok.md": b"# fine\n", "../evil.txt": b"escaped\n"}),
            "/page.html": b"<html><body>not a zip</body></html>",
        }

        class Handler(QuietHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                route = self.path.split("?", 1)[0]
                hits[route] += 1
                if route == "/slow.zip":
                    released.wait(SLOW_SECONDS)
                    route = "/docs.zip"
                if route == "/short.zip":
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(docs)))
                    self.end_headers()
                    self.wfile.write(docs[: len(docs) // 2])
                    self.wfile.flush()
                    self.close_connection = True
                    return
                body = routes.get(route)
                if body is None:
                    self.send_error(404, "Not Found")
                    return
                self.send_response(200)
                self.send_header("Content-Type", "application/zip")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                try:
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

        self._serve(Handler)
        return self

    def stop(self) -> None:
        self.released.set()
        super().stop()

    def url(self, route: str) -> str:
        return f"{self._base_url()}/{route.lstrip('/')}"


@pytest.fixture(scope="session")
def docs_bytes(docs_zip: Path) -> bytes:
    return docs_zip.read_bytes()


@pytest.fixture
def docs_server(docs_bytes: bytes, monkeypatch: pytest.MonkeyPatch) -> Iterator[DocsServer]:
    # A proxy configured in the environment must not swallow requests to the test server.
    for var in ("NO_PROXY", "no_proxy"):
        monkeypatch.setenv(var, "127.0.0.1,localhost")
    with DocsServer(docs=docs_bytes) as server:
        yield server


@pytest.fixture
def refused_url() -> str:
    """A URL on 127.0.0.1 where nothing listens: the port was free a moment ago."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/docs.zip"
