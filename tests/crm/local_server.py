"""A CRM's HTTP API on loopback, served by uvicorn in the test's own event loop (issue 16's tests).

Each CRM's test server (``tests/crm/*_server.py``) is a Starlette app implementing that CRM's documented contract;
this serves it. ``stop()`` and ``start()`` keep the port, so a test can take the CRM down for a while and bring it
back where the daemon expects it ("the CRM down for a minute"). Nothing here fakes a socket: the daemon's httpx
client talks to a real server over TCP.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from typing import Any

import uvicorn


class LocalServer:
    """``app`` on ``http://127.0.0.1:<port>``; the port is chosen at the first start and kept."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self._task is not None

    async def start(self) -> None:
        if self._task is not None:
            return
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(self.app, log_level="warning", lifespan="off", access_log=False)
        server = uvicorn.Server(config)
        server.install_signal_handlers = lambda: None  # type: ignore[method-assign,unused-ignore]  # the loop keeps its own
        self._server = server
        self._task = asyncio.create_task(server.serve(sockets=[sock]), name=f"crm-server-{self.port}")
        while not server.started:
            if self._task.done():
                self._task.result()  # raises what stopped it
            await asyncio.sleep(0.005)

    async def stop(self) -> None:
        """Down: the port refuses connections until :meth:`start` (open connections are closed)."""
        if self._task is None or self._server is None:
            return
        self._server.should_exit = True
        self._server.force_exit = True
        with suppress(asyncio.CancelledError):
            await self._task
        self._task = None
        self._server = None


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[LocalServer]:
    server = LocalServer(app)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
