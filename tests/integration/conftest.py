"""Fixtures for the integration tests: the replay PBX on a real loopback port, a recording sink.

Nothing is patched and no socket is faked: the client under test talks TCP to ``asterisk.replay``.
Every wait is bounded by a timeout counted in :data:`UNIT` (``CTI_TEST_TIME_UNIT``, default 1.0): raise it on
a slow machine instead of editing the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from asterisk.connection import AmiClient
from asterisk.messages import AmiMessage
from asterisk.replay import ReplayPbx
from companion.config import AmiSettings
from tests.conftest import UNIT  # the suite's one time unit (CTI_TEST_TIME_UNIT)
from tests.traces import TRACES


def trace(name: str) -> Path:
    path = TRACES / name
    if not (path / "ami.jsonl").is_file():
        raise RuntimeError(f"AMI trace {name} not found under {TRACES}; set CTI_SHARED to the shared/ folder")
    return path


class Recorder:
    """The sink under test: keeps every message it is given, and lets a test wait for one."""

    def __init__(self) -> None:
        self.messages: list[AmiMessage] = []
        self._changed = asyncio.Event()
        #: Called with each message after it is recorded (a test's way to act at an exact point).
        self.hook: Callable[[AmiMessage], None] | None = None

    def __call__(self, msg: AmiMessage) -> None:
        self.messages.append(msg)
        self._changed.set()
        if self.hook is not None:
            self.hook(msg)

    def named(self, event: str) -> list[AmiMessage]:
        return [m for m in self.messages if m.event == event]

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait until ``predicate()`` holds; it is checked after every new message."""
        async with asyncio.timeout(timeout * UNIT):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


async def until(predicate: Callable[[], bool], timeout: float = 5.0) -> None:
    """Poll a condition on the replay PBX's side (it has no event to wait on)."""
    async with asyncio.timeout(timeout * UNIT):
        while not predicate():
            await asyncio.sleep(0.005)


def ami_settings(pbx: ReplayPbx, **overrides: Any) -> AmiSettings:
    """Settings for a test client of ``pbx``: every event class, quick back-off, slow pings."""
    host, port = pbx.address
    values: dict[str, Any] = {
        "host": host,
        "port": port,
        "username": "cti",
        "secret": "cti-secret",
        "events": "on",
        "ping_interval": 5.0 * UNIT,
        "ping_timeout": 2.0 * UNIT,
        "action_timeout": 2.0 * UNIT,
        "connect_timeout": 2.0 * UNIT,
        "reconnect_min": 0.05 * UNIT,
        "reconnect_max": 0.5 * UNIT,
        "max_frame_size": 4096,
    }
    values.update(overrides)
    return AmiSettings(**values)


@contextlib.asynccontextmanager
async def running(client: AmiClient, *, wait: bool = True) -> AsyncIterator[asyncio.Task[None]]:
    """``client.run()`` in a task for the body of the block (logged in first, unless ``wait=False``)."""
    task = asyncio.create_task(client.run(), name="ami-client-under-test")
    try:
        if wait:
            await client.wait_connected(5.0 * UNIT)
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task




@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


