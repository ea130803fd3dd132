"""A test client of the panel: logs in over HTTP, then speaks the WebSocket protocol, as a thin client would."""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from typing import Any

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

from tests.daemon.conftest import UNIT
from tests.panel_env import PanelEnv

_ids = itertools.count(1)


async def login(env: PanelEnv, name: str, password: str | None = None) -> httpx.Response:
    # A login hashes the password with scrypt (slow on purpose): on a loaded machine that outlasts httpx's 5 s default.
    async with httpx.AsyncClient(base_url=env.url, timeout=10 * UNIT) as http:
        return await http.post("/api/login", json={"name": name, "password": password or env.users[name][0]})


async def session_cookie(env: PanelEnv, name: str) -> str:
    response = await login(env, name)
    assert response.status_code == 200, response.text
    cookie = response.cookies.get("cti_session")
    assert cookie
    return cookie


class WsClient:
    """Keeps every message received, stamped with its arrival time, for later assertions."""

    def __init__(self, conn: ClientConnection) -> None:
        self.conn = conn
        self.received: list[tuple[float, dict[str, Any]]] = []
        self._new = asyncio.Event()
        self._reader = asyncio.create_task(self._read())
        self.closed: websockets.ConnectionClosed | None = None

    @classmethod
    async def connect(cls, env: PanelEnv, name: str, **kw: Any) -> WsClient:
        cookie = await session_cookie(env, name)
        conn = await websockets.connect(env.ws_url, additional_headers={"Cookie": f"cti_session={cookie}"},
                                        max_size=None, **kw)
        return cls(conn)

    async def _read(self) -> None:
        try:
            async for frame in self.conn:
                self.received.append((time.monotonic(), json.loads(frame)))
                self._new.set()
        except websockets.ConnectionClosed as exc:
            self.closed = exc
        self._new.set()

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [msg for _, msg in self.received if msg["type"] == kind]

    def types(self) -> list[str]:
        return [msg["type"] for _, msg in self.received]

    async def wait_for(self, kind: str, timeout: float = 10, **match: Any) -> dict[str, Any]:
        async with asyncio.timeout(timeout * UNIT):
            while True:
                for _, msg in self.received:
                    if msg["type"] == kind and all(msg.get(k) == v for k, v in match.items()):
                        return msg
                if self.closed is not None:
                    raise AssertionError(f"connection closed ({self.closed}) before a {kind} {match}")
                self._new.clear()
                await self._new.wait()

    async def request(self, message: dict[str, Any], timeout: float = 10) -> dict[str, Any]:
        """Send a request with a fresh id; return its reply or error."""
        request_id = f"r{next(_ids)}"
        await self.conn.send(json.dumps({**message, "id": request_id}, ensure_ascii=False))
        async with asyncio.timeout(timeout * UNIT):
            while True:
                for _, msg in self.received:
                    if msg["type"] in ("reply", "error") and msg.get("id") == request_id:
                        return msg
                if self.closed is not None:
                    raise AssertionError(f"connection closed ({self.closed}) before the reply")
                self._new.clear()
                await self._new.wait()

    async def close(self) -> None:
        await self.conn.close()
        self._reader.cancel()
