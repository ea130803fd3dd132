"""The real system for the property-based fuzz: replay PBX → daemon → panel, served from a background thread.

Why a thread: Hypothesis drives synchronous test functions and replays examples many times; mixed with
pytest-asyncio's per-test loops it fights over the event loop. So the whole system (``tests/panel_env.py``)
runs on its own event loop in a thread for the module, and the tests talk to it as any client would, over
loopback (``httpx.Client``, ``websockets.sync.client``, raw sockets).

Why a log watch: "no traceback in the log" is a property of every example. A handler on the root logger keeps
every record at ERROR or above and every record that carries an exception, from any thread (the daemon's,
uvicorn's, the websockets library's); each example takes what appeared since the one before.
"""

from __future__ import annotations

import asyncio
import json
import logging
import tempfile
import threading
import traceback
from collections.abc import Coroutine, Iterator
from concurrent.futures import Future
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from hypothesis.configuration import set_hypothesis_home_dir
from websockets.sync.client import ClientConnection, connect

from cti.effects import CallAnswered
from tests.daemon.conftest import UNIT, leg_event
from tests.panel_env import PanelEnv, panel_env
from tests.traces import TRACES

T = TypeVar("T")

# Hypothesis keeps caches (Unicode tables, the constants it finds in the code) in ./.hypothesis: put them
# outside the working tree. The fuzz keeps no example database at all (``fuzzing.fuzz_settings``).
set_hypothesis_home_dir(Path(tempfile.gettempdir()) / "cti-companion-hypothesis")

#: The trace the fuzzed system holds mid-call: agent 101 talking to a customer.
LIVE_CALL_TRACE = "13-blind-transfer-redirect"
LIVE_LINKEDIDS: tuple[str, ...] = tuple(
    c["linkedid"] for c in json.loads((TRACES / LIVE_CALL_TRACE / "truth.json").read_text(encoding="utf-8"))["calls"])
#: The fuzz sends hundreds of commands a second: lift the per-user command rate limit (tested on its own
#: elsewhere), or most hostile commands would stop at ``rate_limited`` instead of reaching the AMI link.
FUZZ_HTTP = "command_burst = 1000000\ncommand_rate = 1000000.0"
#: A marker no real action or header carries: if the replay PBX ever receives it, a value split an action.
INJECTED = "FuzzInjected"

#: The user whose pings on a fresh socket show the server is still alive; the fuzz itself never uses it.
WATCHER = "oleg"


class LogWatch(logging.Handler):
    """Collects the records a user of the daemon would read as "it crashed": ERROR and above, or a traceback."""

    def __init__(self) -> None:
        super().__init__(level=logging.NOTSET)
        self._records: list[logging.LogRecord] = []
        self._guard = threading.Lock()

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR or record.exc_info is not None:
            with self._guard:
                self._records.append(record)

    def take(self) -> list[str]:
        """The records since the last call, formatted with their tracebacks (for an assertion message)."""
        with self._guard:
            records, self._records = self._records, []
        return [_describe(r) for r in records]


def _describe(record: logging.LogRecord) -> str:
    text = f"{record.levelname} {record.name}: {record.getMessage()}"
    if record.exc_info is not None and record.exc_info[1] is not None:
        lines = traceback.format_exception(record.exc_info[1])
        text += "\n" + "".join(lines[-6:])  # the end of the traceback names the failing line
    return text


class LivePanel:
    """The running system, its addresses, a logged-in cookie per user and the log watch."""

    def __init__(self) -> None:
        self.log = LogWatch()
        self.cookies: dict[str, str] = {}
        self._actions_checked = 0
        self._env: PanelEnv | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._failed: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="cti-fuzz-panel", daemon=True)

    # -- life -------------------------------------------------------------------------------------------

    def start(self) -> None:
        self._thread.start()
        if not self._ready.wait(60 * UNIT):
            raise TimeoutError("the panel did not start")
        if self._failed is not None:
            raise RuntimeError("the panel did not start") from self._failed
        with httpx.Client(base_url=self.url, timeout=10 * UNIT) as http:
            for name, (password, *_rest) in self.env.users.items():
                response = http.post("/api/login", json={"name": name, "password": password})
                assert response.status_code == 200, response.text
                self.cookies[name] = response.cookies["cti_session"]
        self.log.take()  # what start-up logged is not the fuzz's business

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30 * UNIT)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start(); a thread must not die silently
            self._failed = exc
            self._ready.set()

    async def _main(self) -> None:
        """Held mid-call: agent 101 is talking to the customer, so hang-ups, transfers and contact attachments
        on its linkedid reach the PBX link and the caller card."""
        async with panel_env([LIVE_CALL_TRACE], speed=0, http_extra=FUZZ_HTTP) as env:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            waiting = asyncio.ensure_future(env.running.wait_for_effect(CallAnswered, timeout=30))
            await asyncio.sleep(0)  # it listens before the answer is served
            await env.serve_through(leg_event("BridgeEnter", "PJSIP/101-"), "101 answering")  # and held there
            answered = await waiting
            assert isinstance(answered, CallAnswered) and answered.linkedid in LIVE_LINKEDIDS
            self._env = env
            self._ready.set()
            await self._stop.wait()

    # -- what the tests use -----------------------------------------------------------------------------

    @property
    def env(self) -> PanelEnv:
        assert self._env is not None, "the panel is not running"
        return self._env

    @property
    def url(self) -> str:
        return self.env.url

    @property
    def address(self) -> tuple[str, int]:
        host, _, port = self.url.rpartition("//")[2].rpartition(":")
        return host, int(port)

    @property
    def max_message_bytes(self) -> int:
        return self.env.running.daemon.settings.http.max_message_bytes

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run a coroutine on the system's own loop (to read the store, say) and wait for its result."""
        assert self._loop is not None
        future: Future[T] = asyncio.run_coroutine_threadsafe(coro, self._loop)
        return future.result(30 * UNIT)

    def injected_actions(self) -> list[str]:
        """Actions the replay PBX received since the last look that a hostile value made: named ``INJECTED``, or
        with such a header."""
        received_actions = list(self.env.replay.received_actions)
        new, self._actions_checked = received_actions[self._actions_checked:], len(received_actions)
        found = []
        for received in new:
            keys = [key.strip() for key, _value in received.message.headers]
            if received.message.action == INJECTED or INJECTED in keys:
                found.append(repr(received.message.headers))
        return found

    def settle(self) -> None:
        """Wait until no request or WebSocket handler of the panel runs, so what they log is in the log.

        A client has its answer before the handler that sent it has finished (and logged its traceback); a
        client that hung up mid-request has no answer at all. uvicorn keeps its handlers' tasks in
        ``server_state.tasks``: wait for those to end.
        """
        server = self.env.running.daemon.panel_server
        assert server is not None
        tasks: set[asyncio.Task[None]] = server.server.server_state.tasks

        async def settled() -> None:
            async with asyncio.timeout(10 * UNIT):
                while any(not task.done() for task in list(tasks)):
                    await asyncio.sleep(0.005)

        try:
            self.run(settled())
        except TimeoutError:
            raise AssertionError(f"{len(tasks)} handlers still run 10 s after the example") from None

    @contextmanager
    def example(self) -> Iterator[None]:
        """Around one example: afterwards, no traceback or error in the log and no action split by a value.

        When the example fails otherwise, what the server logged meanwhile is added to the failure (and so
        not blamed on the next example).
        """
        try:
            yield
        except BaseException as exc:
            self.settle()
            logged, injected = self.log.take(), self.injected_actions()
            if logged or injected:
                exc.add_note("meanwhile the server logged:\n" + "\n".join(logged) + "".join(
                    f"\nand the PBX received a split action: {a}" for a in injected))
            raise
        self.settle()
        logged = self.log.take()
        assert not logged, "the server logged:\n" + "\n".join(logged)
        injected = self.injected_actions()
        assert not injected, f"a value split an AMI action: {injected}"

    @contextmanager
    def websocket(self, user: str) -> Iterator[ClientConnection]:
        """A WebSocket logged in as ``user`` with the cookie of their login."""
        with connect(self.env.ws_url, additional_headers={"Cookie": f"cti_session={self.cookies[user]}"},
                     max_size=None, open_timeout=10 * UNIT, close_timeout=5 * UNIT) as ws:
            yield ws


@pytest.fixture(scope="module")
def live_panel() -> Iterator[LivePanel]:
    """One running system per fuzz module; the log watch is on the root logger for as long as it runs."""
    root = logging.getLogger()
    live = LivePanel()
    level = root.level
    root.addHandler(live.log)
    root.setLevel(min(level, logging.INFO))  # a traceback logged at INFO or WARNING counts too
    try:
        live.start()
        yield live
        live.settle()
        late = live.log.take()
        assert not late, "the server logged after the last example:\n" + "\n".join(late)
    finally:
        live.stop()
        root.removeHandler(live.log)
        root.setLevel(level)
