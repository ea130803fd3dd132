"""Shared by the tests of the panel's HTTP/WebSocket edge: a panel with any ``[http]`` settings, raw half-sent
requests from chosen loopback addresses, the daemon's memory, and the "no traceback in the log" check.

Every loopback address (127.0.0.0/8) reaches the panel listening on 127.0.0.1, so one test can play several
peers: an attacker on 127.0.0.1, an agent on 127.0.0.2, a reverse proxy on 127.0.0.3.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import pytest

from tests.daemon.conftest import UNIT
from tests.panel_env import PanelEnv, panel_env

TRANSFER = "13-blind-transfer-redirect"


@asynccontextmanager
async def edge_env(http: str = "", traces: tuple[str, ...] = (TRANSFER,)) -> AsyncIterator[PanelEnv]:
    """``tests.panel_env.panel_env`` with ``http`` ("key = value" lines) in its ``[http]`` section."""
    async with panel_env(list(traces), http_extra=http) as env:
        yield env


def port_of(env: PanelEnv) -> int:
    return int(env.url.rsplit(":", 1)[1])


def http_from(env: PanelEnv, source: str) -> httpx.AsyncClient:
    """An HTTP client of the panel whose connections come from ``source`` (a loopback address)."""
    return httpx.AsyncClient(base_url=env.url, transport=httpx.AsyncHTTPTransport(local_address=source))


class RawConnection:
    """A TCP connection to the panel that sends what the test says, byte for byte."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.opened = asyncio.get_running_loop().time()

    @classmethod
    async def open(cls, env: PanelEnv, source: str = "127.0.0.1", send: bytes = b"") -> RawConnection:
        reader, writer = await asyncio.open_connection("127.0.0.1", port_of(env), local_addr=(source, 0))
        conn = cls(reader, writer)
        if send:
            writer.write(send)
            await writer.drain()
        return conn

    async def closed_within(self, seconds: float) -> bytes | None:
        """Everything the server sent before closing, or None if it is still open after ``seconds``."""
        received = b""
        try:
            async with asyncio.timeout(seconds):
                while chunk := await self.reader.read(65536):
                    received += chunk
        except TimeoutError:
            return None
        except ConnectionResetError:
            pass
        return received

    def close(self) -> None:
        self.writer.close()


def half_sent_request(env: PanelEnv) -> bytes:
    """A request whose headers never end (a slowloris client)."""
    return f"GET /login HTTP/1.1\r\nHost: 127.0.0.1:{port_of(env)}\r\nX-Slow: ".encode()


def rss_bytes() -> int:
    """Resident memory of this process (the daemon runs in the test's own process)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS in /proc/self/status")


def assert_no_tracebacks(caplog: pytest.LogCaptureFixture) -> None:
    """Hostile input is normal input: nothing about it may be logged as an error or with a traceback."""
    records = caplog.get_records("setup") + caplog.get_records("call")  # called from a fixture's teardown
    bad = [f"{r.levelname} {r.name}: {r.getMessage()}" for r in records
           if r.levelno >= logging.ERROR or r.exc_info is not None]
    assert not bad, "errors or tracebacks in the log:\n" + "\n".join(bad)


def scaled(seconds: float) -> float:
    return seconds * UNIT
