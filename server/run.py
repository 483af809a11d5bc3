"""Start the server: claim the port, open the index once, run uvicorn until SIGTERM / Ctrl-C.

The socket is bound here, before uvicorn starts, so that the URL (port 0 picks a free one) is known when the
app records it beside the index, and a port in use is one clear line instead of a uvicorn traceback.
"""

from __future__ import annotations

import logging
import socket
from typing import TYPE_CHECKING

from config.errors import ConfigError, RagError

if TYPE_CHECKING:
    from config.settings import Settings
    from server.settings import ServerSettings

log = logging.getLogger("server")


def bind(host: str, port: int) -> socket.socket:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise ConfigError(f"cannot resolve the host {host!r}", "use an address such as 127.0.0.1") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc})",
            f"stop what uses the port or pick another: --port {port + 1 if port else 8001}",
        ) from None
    return sock


def public_url(sock: socket.socket) -> str:
    """What a client on this machine connects to (a wildcard bind is reached over loopback)."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def serve(settings: Settings, server_settings: ServerSettings, *, access_log: bool = False) -> int:
    """Blocks until the server stops; in-flight requests finish first (up to `graceful_seconds`)."""
    import uvicorn

    from chains import redact_langsmith
    from server.app import create_app
    from server.discovery import find_server
    from server.logs import install_redaction
    from server.service import RagService

    install_redaction([settings.deepseek_api_key, settings.milvus_token, server_settings.token])
    redact_langsmith(settings)
    running = find_server(settings)
    if running is not None:
        raise RagError(
            f"a server (pid {running.pid}) already serves this index at {running.url}",
            "use that one, or stop it first",
        )
    if server_settings.host not in ("127.0.0.1", "localhost", "::1") and server_settings.token is None:
        log.warning("listening on %s without RAG_SERVER_TOKEN: anyone who can reach it can use your DeepSeek key",
                    server_settings.host)
    sock = bind(server_settings.host, server_settings.port)
    url = public_url(sock)
    service = RagService(settings, threads=server_settings.threads)
    try:
        if service.open():
            log.info("index open: collection %s", settings.collection)
        else:
            log.warning("serving without an index for now (/health says why); it is opened once it exists")
        if not service.has_key:
            log.warning("DEEPSEEK_API_KEY is not set: /api/ask returns passages only, /v1 answers 503")
        app = create_app(service, server_settings, url=url)
        config = uvicorn.Config(
            app,
            log_config=None,  # our logging setup (with secret redaction) handles uvicorn's lines too
            access_log=access_log,
            timeout_graceful_shutdown=server_settings.graceful_seconds,
            server_header=False,
            proxy_headers=False,
        )
        uvicorn.Server(config).run(sockets=[sock])
    finally:
        service.close()
        sock.close()
    return 0
