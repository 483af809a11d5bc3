"""Small socket helpers for tests that start or need servers on 127.0.0.1."""

from __future__ import annotations

import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ThreadedServer(ThreadingHTTPServer):
    daemon_threads = True
    # 50 clients connecting at once must not overflow the listen backlog (default 5).
    request_queue_size = 256


class QuietHandler(BaseHTTPRequestHandler):
    """HTTP/1.1 keep-alive like the real services, and no request log on stderr."""

    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass

    def send_json(
        self, status: int, payload: Any, *, headers: dict[str, str] | None = None, prefix: bytes = b""
    ) -> None:
        """A JSON reply; a client that already hung up is not an error of the server's."""
        data = prefix + json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        try:
            self.wfile.write(data)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass


class LocalHTTPServer:
    """What the fake servers share: a threaded HTTP server on 127.0.0.1 (a free port) in a daemon thread,
    stopped by `stop()`, by leaving the `with` block, or by a watchdog after `max_lifetime` seconds, so a test
    that forgets it never leaves it running."""

    max_lifetime: float = 300.0
    _httpd: ThreadingHTTPServer | None = None
    _watchdog: threading.Timer | None = None

    def _serve(self, handler: type[BaseHTTPRequestHandler]) -> None:
        httpd = ThreadedServer(("127.0.0.1", 0), handler)
        self._httpd = httpd
        threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self._watchdog = threading.Timer(self.max_lifetime, self.stop)
        self._watchdog.daemon = True
        self._watchdog.start()

    def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
        httpd, self._httpd = self._httpd, None
        if httpd is not None:
            httpd.shutdown()
            httpd.server_close()

    def start(self) -> Any:
        raise NotImplementedError

    def __enter__(self) -> Any:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _base_url(self) -> str:
        if self._httpd is None:
            raise RuntimeError(f"the {type(self).__name__} server is not running")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"
