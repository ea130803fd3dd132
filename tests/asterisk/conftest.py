"""Fixtures for the AMI-layer tests: the shared traces, a replay PBX on a free port, a raw AMI client.

The client is deliberately not the daemon's: it is our sans-I/O framer (:class:`AmiClientProtocol`) over
a plain ``asyncio.open_connection``, so these tests check the replay PBX against the wire, nothing else.
Every wait is bounded by a timeout in :data:`UNIT`\\s (``CTI_TEST_TIME_UNIT``, default 1.0): raise it on
a slow machine instead of editing the tests.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from asterisk.messages import AmiMessage, FrameError, action
from asterisk.protocol import AmiClientProtocol
from asterisk.replay import ReplayPbx
from tests.conftest import UNIT  # the suite's one time unit (CTI_TEST_TIME_UNIT)

TIMEOUT = 5.0 * UNIT

REPO = Path(__file__).resolve().parents[2]
TRACES = Path(os.environ.get("CTI_SHARED", REPO.parent / "shared")) / "ami-traces"


def trace_folders() -> list[Path]:
    """Every recorded scenario on disk: a folder added later is tested with no code change."""
    assert TRACES.is_dir(), f"AMI traces not found at {TRACES} (set CTI_SHARED)"
    return sorted(p for p in TRACES.iterdir() if (p / "ami.jsonl").is_file())


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """A test that takes ``trace_folder`` runs once per trace folder found on disk."""
    if "trace_folder" in metafunc.fixturenames:
        metafunc.parametrize("trace_folder", trace_folders(), ids=lambda p: p.name)


class RawAmiClient:
    """A bare AMI client: send actions, read frames, keep the events that arrive in between."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.protocol = AmiClientProtocol()
        self._inbox: deque[AmiMessage] = deque()
        #: Stream events that arrived while an action's answer was awaited, in arrival order.
        self.backlog: deque[AmiMessage] = deque()
        self.frame_errors: list[FrameError] = []

    @classmethod
    async def connect(cls, host: str, port: int) -> RawAmiClient:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(host, port), TIMEOUT)
        return cls(reader, writer)

    @property
    def banner(self) -> str | None:
        return self.protocol.banner

    async def _fill(self) -> bool:
        """Read once from the socket; False on EOF. Callers bound the wait with ``asyncio.timeout``."""
        data = await self.reader.read(65536)
        if not data:
            self.protocol.receive_eof()
            return False
        self.protocol.receive_data(data)
        for item in self.protocol.events_received():
            if isinstance(item, FrameError):
                self.frame_errors.append(item)
            else:
                self._inbox.append(item)
        return True

    async def _next_frame(self) -> AmiMessage:
        while not self._inbox:
            if not await self._fill():
                raise ConnectionError("connection closed by the PBX")
        return self._inbox.popleft()

    async def read_banner(self, within: float = TIMEOUT) -> str:
        async with asyncio.timeout(within):
            while self.protocol.banner is None:
                if not await self._fill():
                    raise ConnectionError("closed before the banner")
        return self.protocol.banner

    async def next_message(self, within: float = TIMEOUT) -> AmiMessage:
        """The next frame off the wire (events kept aside by :meth:`request` come first)."""
        if self.backlog:
            return self.backlog.popleft()
        async with asyncio.timeout(within):
            return await self._next_frame()

    async def send(self, message: AmiMessage) -> str:
        action_id = self.protocol.send_action(message)
        for data in self.protocol.data_to_send():
            self.writer.write(data)
        await self.writer.drain()
        return action_id

    async def request(self, message: AmiMessage, within: float = TIMEOUT) -> tuple[AmiMessage, list[AmiMessage]]:
        """Send an action; return its response and, for a list action, the items up to ``…Complete``.

        Anything else that arrives meanwhile (stream events) is kept for :meth:`next_message`.
        """
        action_id = await self.send(message)
        response: AmiMessage | None = None
        items: list[AmiMessage] = []
        async with asyncio.timeout(within):
            while True:
                msg = await self._next_frame()
                if msg.action_id != action_id:
                    self.backlog.append(msg)
                elif response is None and msg.response:
                    response = msg
                    if msg.get("EventList") != "start":
                        return response, items
                elif response is not None:
                    items.append(msg)
                    if msg.get("EventList") == "Complete":
                        return response, items
                else:
                    self.backlog.append(msg)

    async def login(self, events: str = "on", secret: str = "cti-secret") -> AmiMessage:
        await self.read_banner()
        response, _ = await self.request(action("Login", Username="cti", Secret=secret, Events=events))
        return response

    async def events(self, count: int, within: float = TIMEOUT) -> list[AmiMessage]:
        """The next ``count`` stream events, skipping this session's own login events."""
        out: list[AmiMessage] = []
        async with asyncio.timeout(within):
            while len(out) < count:
                msg = self.backlog.popleft() if self.backlog else await self._next_frame()
                if msg.event and msg.event not in ("FullyBooted", "SuccessfulAuth"):
                    out.append(msg)
        return out

    async def wait_closed(self, within: float = TIMEOUT) -> None:
        """Return once the PBX has closed the connection (reset or EOF); TimeoutError if it does not."""
        with contextlib.suppress(ConnectionError, OSError):
            async with asyncio.timeout(within):
                while await self._fill():
                    pass

    async def close(self) -> None:
        self.writer.close()
        with contextlib.suppress(ConnectionError, OSError):
            await self.writer.wait_closed()




@pytest.fixture
async def ami_client() -> AsyncIterator[Callable[[ReplayPbx], Awaitable[RawAmiClient]]]:
    """Connect raw clients to a replay PBX: ``client = await ami_client(pbx)``; closed after the test."""
    clients: list[RawAmiClient] = []

    async def connect(pbx: ReplayPbx) -> RawAmiClient:
        client = await RawAmiClient.connect(*pbx.address)
        clients.append(client)
        return client

    yield connect
    for client in clients:
        await client.close()


@pytest.fixture(params=["c", "python"])
def framer_impl(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Runs a framer test with the C fast path (``asterisk/_speedups.c``) and again with the pure-Python one.

    Both must give the same messages; the Python code is the reference. An installation without the C module
    fails the "c" run (never a silent second Python run): ``pip install -e .`` builds it with a C compiler.
    """
    import asterisk.protocol as protocol

    if request.param == "c":
        if not protocol.SPEEDUPS:
            pytest.fail("asterisk._speedups is not built: reinstall with a C compiler (pip install -e .)",
                        pytrace=False)
    else:
        monkeypatch.setattr(protocol, "_frame_dicts", None)  # every AmiFramer made in this test is pure Python
    return str(request.param)
