"""The outermost checks, before any route runs: the bearer token and the body size.

Plain ASGI rather than FastAPI dependencies so that nothing (not even JSON parsing of a 50 MB body) happens
for a request that is refused.
"""

from __future__ import annotations

import hmac
import json
from typing import Any

from pydantic import SecretStr


class Guard:
    def __init__(self, app: Any, *, token: SecretStr | None, max_body: int) -> None:
        self.app = app
        self.token = token.get_secret_value().encode() if token is not None else None
        self.max_body = max_body

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        if self.token is not None and not _public(scope["path"]) and not self._authorized(headers):
            message = "a bearer token is required — send the header Authorization: Bearer $RAG_SERVER_TOKEN"
            await _reply(send, 401, message, "invalid_token", extra=[(b"www-authenticate", b"Bearer")])
            return
        length = headers.get(b"content-length")
        if length is not None:
            try:
                too_big = int(length) > self.max_body
            except ValueError:
                await _reply(send, 400, "the Content-Length header is not a number", "bad_request")
                return
            if too_big:
                await _reply(send, 413, self._too_big(), "body_too_large")
                return
        if scope.get("method") not in ("POST", "PUT", "PATCH"):
            await self.app(scope, receive, send)
            return
        body = bytearray()
        while True:  # read it all (bounded), so a chunked upload is held to the limit too
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            body += message.get("body", b"")
            if len(body) > self.max_body:
                await _reply(send, 413, self._too_big(), "body_too_large")
                return
            if not message.get("more_body"):
                break
        replayed = False

        async def replay() -> dict[str, Any]:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": bytes(body), "more_body": False}
            return await receive()  # from here on: the disconnect a streaming response listens for

        await self.app(scope, replay, send)

    def _authorized(self, headers: dict[bytes, bytes]) -> bool:
        scheme, _, credentials = headers.get(b"authorization", b"").partition(b" ")
        return scheme.lower() == b"bearer" and hmac.compare_digest(credentials.strip(), self.token or b"")

    def _too_big(self) -> str:
        return f"the request body is larger than {self.max_body // 1_000_000} MB — send a shorter question and history"


def _public(path: str) -> bool:
    """A load balancer's probe, and the page itself: static files holding no data. A browser cannot send a
    bearer header when it opens a URL; the page asks for the token and sends it with every API call."""
    return path in ("/health", "/") or path.startswith("/static/")


async def _reply(send: Any, status: int, message: str, code: str, extra: list[tuple[bytes, bytes]] = ()) -> None:
    kind = "authentication_error" if status == 401 else "invalid_request_error"
    body = json.dumps({"error": {"message": message, "type": kind, "code": code}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *extra]
    if status == 413:
        headers.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
