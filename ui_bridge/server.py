"""Runs the panel's ASGI app on uvicorn, inside the daemon's TaskGroup.

Why Starlette on uvicorn: the panel needs static files, a small JSON API, cookies and a WebSocket on one
port, and none of that should be hand-rolled. uvicorn's ``websockets-sansio`` protocol runs the WebSocket
on the ``websockets`` library's sans-I/O core (the design brief's WebSocket library) and honours
transport flow control, so a send to a client that does not read waits instead of buffering without end:
that is what makes the hub's per-client bound real.

Why the protocol subclasses (``ui_bridge/connections.py``): uvicorn has no header timeout and no bound on
connections per address, and ASGI gives an application no way to abort a TCP connection whose peer stopped
reading. The h11 protocol is chosen explicitly (not "auto"), so the bounds hold whatever else is installed.

Why not ``Server.serve()``: it installs its own SIGINT/SIGTERM handlers; the daemon owns those. The public
``startup`` / ``main_loop`` / ``shutdown`` steps are run instead.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import ssl
from typing import Any

import uvicorn

from ui_bridge.settings import HttpSettings

from .connections import ConnectionGuard, protocol_classes
from .lograte import RateLimitedLog, quiet_uvicorn

log = logging.getLogger(__name__)

#: Frames larger than this close the connection (1009) inside uvicorn; below it, the bridge's own
#: ``max_message_bytes`` answers an error and keeps the connection.
HARD_FRAME_LIMIT = 1024 * 1024


def listening_socket(host: str, port: int) -> socket.socket:
    """Bound here, not by uvicorn (which would sys.exit() on a busy port).

    The socket is made with ``proto=IPPROTO_TCP`` on purpose: asyncio turns Nagle's algorithm off
    (TCP_NODELAY) only on accepted sockets whose protocol says TCP, and ``socket.create_server`` leaves it
    0. With Nagle on, a pop written right after another message waited for the client's delayed ACK:
    40 ms (bench/popfanout.py found it).
    """
    info = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP,
                              flags=socket.AI_PASSIVE)[0]
    family, kind, proto, _, address = info
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


class PanelError(Exception):
    """The panel cannot start (its port is taken, its TLS files are unreadable...)."""


class PanelServer:
    def __init__(self, app: Any, settings: HttpSettings) -> None:
        quiet_uvicorn()
        #: Refused handshakes and connections, logged a few lines a minute per kind (``ui_bridge/lograte.py``).
        self.refusals = RateLimitedLog(logging.getLogger("ui_bridge.edge"))
        self.guard = ConnectionGuard(settings.max_connections, settings.max_connections_per_address,
                                     settings.trusted_proxies)
        http, ws = protocol_classes(self.guard, settings.header_timeout, self.refusals)
        config = uvicorn.Config(
            app, host=settings.host, port=settings.port, http=http, ws=ws, ws_max_size=HARD_FRAME_LIMIT,
            ws_ping_interval=20.0, ws_ping_timeout=20.0, lifespan="off", log_config=None, access_log=False,
            server_header=False, proxy_headers=False, timeout_graceful_shutdown=3,
            ssl_certfile=str(settings.tls_cert) if settings.tls_cert else None,
            ssl_keyfile=str(settings.tls_key) if settings.tls_key else None,
        )
        self.tls = settings.tls_cert is not None
        self.server = uvicorn.Server(config)
        self.started = asyncio.Event()
        self.address: tuple[str, int] | None = None

    @property
    def url(self) -> str:
        assert self.address is not None, "the server has not started"
        host, port = self.address
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{host}:{port}"

    async def run(self) -> None:
        """Serve until cancelled; connections get a 1012 close and up to 3 s to finish."""
        server = self.server
        server.config.setup_event_loop = lambda: None  # type: ignore[method-assign]
        if not server.config.loaded:
            try:
                server.config.load()
            except (OSError, ssl.SSLError) as exc:
                raise PanelError(f"the panel's TLS certificate or key cannot be used: {exc}") from None
        server.lifespan = server.config.lifespan_class(server.config)
        host, port = server.config.host, server.config.port
        try:
            sock = listening_socket(host, port)
        except OSError as exc:
            raise PanelError(f"the panel cannot listen on {host}:{port}: {exc.strerror or exc}") from None
        sock.set_inheritable(True)
        self.address = sock.getsockname()[:2]
        await server.startup(sockets=[sock])
        log.info("panel: %s", self.url)
        self.started.set()
        try:
            await server.main_loop()
        finally:
            server.should_exit = True
            await asyncio.shield(server.shutdown())
