"""The panel's front door, as one ASGI middleware: the ``Host`` check, request-body limits and the security
headers of every response.

Bodies: every request body is bounded *before* it is read. A ``Content-Length`` over the route's limit is
answered 413 at once; a chunked (or otherwise undeclared) body is counted as it streams in and answered 413
the moment it passes the limit, and the application then sees the client as gone, so nothing ever holds more
than the limit in memory (uvicorn itself stops reading a request whose body the application does not take).
After a 413 the rest of the body is read and thrown away (memory stays flat), within the request time
``[http] header_timeout`` gives a client (connections.py): closing at once would be cheaper, but closing a
socket with unread data makes the kernel send a reset, and a client still sending (httpx, browsers) then
loses the 413 and sees a broken connection instead. Requests whose method carries no body (GET, HEAD, ...)
may not send one at all.

Headers: a Content-Security-Policy that lets the panel load only its own files and talk only to its own
host, and no page may frame it (clickjacking); ``nosniff``; no Referer leaves the panel.

Why a raw ASGI middleware rather than Starlette's ``BaseHTTPMiddleware``: the latter cannot see or cut a
body while it streams, and it does not wrap WebSocket handshakes.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from typing import Any

from starlette.datastructures import Headers
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ui_bridge.settings import HttpSettings

from .hosts import HostAllowList, HostRefused
from .lograte import RateLimitedLog

log = logging.getLogger(__name__)

#: A login is a name and a password: anything bigger is not one.
LOGIN_BODY_BYTES = 4096
#: Per path, for the routes whose bodies are smaller than ``[http] max_body_bytes``.
SMALL_BODIES = {"/api/login": LOGIN_BODY_BYTES, "/api/logout": 1024}
_BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})

_HEADERS = [
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
]


def content_security_policy(host: str | None) -> bytes:
    """The panel is plain ES modules and a stylesheet from /static, no inline script or style; it talks to its
    own host only (``ws:``/``wss:`` named explicitly: 'self' covers them only in newer browsers)."""
    connect = "'self'" + (f" ws://{host} wss://{host}" if host else "")
    return (f"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
            f"connect-src {connect}; frame-ancestors 'none'; object-src 'none'; base-uri 'none'; "
            f"form-action 'self'").encode()


def _security_headers(host: str | None) -> list[tuple[bytes, bytes]]:
    return [(b"content-security-policy", content_security_policy(host)), *_HEADERS]


@dataclass(frozen=True, slots=True)
class BodyLimit:
    """A route whose bodies may be larger than ``[http] max_body_bytes`` (a complaint's file upload): the paths it
    covers, the bytes allowed, and the 413's message."""

    path: re.Pattern[str]
    max_bytes: int
    message: str


@dataclass
class _Refusal:
    status: int
    code: str
    message: str
    json: bool = True

    def body(self) -> bytes:
        if self.json:
            return json.dumps({"error": {"code": self.code, "message": self.message}}).encode()
        return self.message.encode()

    def headers(self, extra: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        kind = b"application/json" if self.json else b"text/plain; charset=utf-8"
        return [(b"content-type", kind), (b"content-length", str(len(self.body())).encode()), *extra]


@dataclass
class _BodyState:
    received: int = 0
    answered: bool = False  # the application has started its response
    refused: bool = False  # the body went over the limit: a 413 was sent instead


class EdgeMiddleware:
    def __init__(self, app: ASGIApp, settings: HttpSettings, refusals: RateLimitedLog | None = None,
                 large_bodies: tuple[BodyLimit, ...] = ()) -> None:
        self.app = app
        self.max_body = settings.max_body_bytes
        self.hosts = HostAllowList(settings.allowed_hosts)
        self.refusals = refusals or RateLimitedLog(log)
        self.large_bodies = large_bodies

    def body_limit(self, method: str, path: str) -> int:
        if method not in _BODY_METHODS:
            return 0
        return SMALL_BODIES.get(path, self.max_body)

    def _large(self, method: str, path: str) -> BodyLimit | None:
        if method != "POST":
            return None
        return next((b for b in self.large_bodies if b.path.fullmatch(path)), None)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        host = headers.get("host")
        try:
            await self.hosts.check(host)
        except HostRefused as exc:
            if scope["type"] == "http":  # a WebSocket's refusal is logged with the others (connections.py)
                client = scope.get("client")
                self.refusals(logging.WARNING, "host", "panel: refused a request from %s for host %r",
                              client[0] if client else "?", (host or "")[:100])
            status = 400 if exc.malformed else 421
            await self._refuse(scope, send, _Refusal(status, "bad_host", str(exc), json=False), None)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, self._secured(send, host))
            return
        await self._http(scope, receive, send, headers, host)

    async def _http(self, scope: Scope, receive: Receive, send: Send, headers: Headers, host: str | None) -> None:
        limit = self.body_limit(scope["method"], scope["path"])
        too_large = _Refusal(413, "too_large", f"request bodies here are limited to {limit} bytes"
                             if limit else "this request takes no body")
        large = self._large(scope["method"], scope["path"])
        if large is not None:  # an upload route: its own limit, its own words
            limit, too_large = large.max_bytes, _Refusal(413, "too_large", large.message)
        declared = headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            await self._refuse(scope, send, too_large, host)
            return
        if limit == 0 and "transfer-encoding" in headers:
            await self._refuse(scope, send, too_large, host)
            return
        secured = self._secured(send, host)
        body = _BodyState()

        async def counted_receive() -> Message:
            message = await receive()
            if message["type"] != "http.request" or body.answered:
                return message  # once the answer is on its way, the body no longer matters to anyone
            body.received += len(message.get("body", b""))
            if body.received > limit:
                body.refused = True
                await self._refuse(scope, send, too_large, host)
                return {"type": "http.disconnect"}  # the application stops reading: the client is "gone"
            return message

        async def guarded_send(message: Message) -> None:
            if body.refused:
                return  # the 413 went out instead
            if message["type"] == "http.response.start":
                body.answered = True
            await secured(message)

        try:
            await self.app(scope, counted_receive, guarded_send)
        except ClientDisconnect:  # gone mid-body (or cut off by us): nobody to answer, nothing went wrong here
            if not body.refused:
                log.debug("panel: %s %s: the client left before its body was in", scope["method"], scope["path"])

    def _secured(self, send: Send, host: str | None) -> Send:
        extra = _security_headers(host)

        async def secured(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.http.response.start"):
                message = {**message, "headers": [*message.get("headers", []), *extra]}
            await send(message)

        return secured

    async def _refuse(self, scope: Scope, send: Send, refusal: _Refusal, host: str | None) -> None:
        """Answer in the application's place."""
        extra = _security_headers(host)
        prefix = ""
        if scope["type"] == "websocket":
            if "websocket.http.response" not in scope.get("extensions", {}):
                await send({"type": "websocket.close", "code": 1008})
                return
            prefix = "websocket."
        start: dict[str, Any] = {"type": f"{prefix}http.response.start", "status": refusal.status,
                                 "headers": refusal.headers(extra)}
        await send(start)
        await send({"type": f"{prefix}http.response.body", "body": refusal.body()})
