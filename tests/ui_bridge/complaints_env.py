"""The whole system for the complaints' API tests: replay PBX → daemon → panel on loopback, with ``[complaints]`` (and
``[mail]`` when a test points it at a real local SMTP server), users with e-mail addresses, a call in the journal of a
client the directory knows, and an HTTP client per user.

``async with complaints_env() as env:`` then ``await env.as_("oleg").post(...)``: each user's client carries their
session cookie and the panel's own ``Origin`` (a write from the panel's page).
"""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from asterisk.replay import ReplayPbx, load_trace
from companion.config import load_config
from cti.directory import Contact, Vehicle
from tests.conftest import UNIT
from tests.daemon.conftest import RunningDaemon, write_config
from tests.panel_env import PanelEnv, add_users
from tests.store.builders import make_call
from tests.traces import TRACES
from tests.ui_bridge.wsclient import session_cookie
from ui_bridge.complaints import ComplaintDesk

TRACE = "13-blind-transfer-redirect"  # never started: the journal holds the call the tests register from
#: The call a complaint is registered from: 101's (anna's) answered inbound call from Пётр Петров's phone.
CALL = "k1.1"
CLIENT_PHONE = "79161234567"
EMAILS = {"anna": "anna@service.example.ru", "oleg": "oleg@service.example.ru",
          "dmitry": "dmitry@service.example.ru", "admin": "boss@service.example.ru"}
#: ``[complaints]`` of the tests: oleg answers for complaints by default; the managers are the admins.
COMPLAINTS = """
default_responsible = "oleg"
departments = ["Цех ремонта", "Запчасти"]
"""


class Clock:
    """The desk's clock in a test: time moves when the test says (never slept)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class ComplaintsEnv:
    panel: PanelEnv
    folder: Path
    clients: dict[str, httpx.AsyncClient] = field(default_factory=dict)
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    @property
    def desk(self) -> ComplaintDesk:
        panel = self.panel.running.daemon.panel
        assert panel is not None
        return panel.complaints

    async def as_(self, name: str) -> httpx.AsyncClient:
        """An HTTP client logged in as ``name`` (from the panel's own page), made once."""
        if name not in self.clients:
            http = await self.stack.enter_async_context(httpx.AsyncClient(
                base_url=self.panel.url, timeout=10 * UNIT, headers={"Origin": self.panel.url}))
            http.cookies.set("cti_session", await session_cookie(self.panel, name))
            self.clients[name] = http
        return self.clients[name]


@asynccontextmanager
async def complaints_env(*, complaints: str = COMPLAINTS, sections: dict[str, str] | None = None
                         ) -> AsyncIterator[ComplaintsEnv]:
    with tempfile.TemporaryDirectory(prefix="cti-complaints-") as tmp_name:
        tmp = Path(tmp_name)
        folder = tmp / "complaint-files"
        trace = load_trace(TRACES / TRACE)
        replay = ReplayPbx([trace], rebase_time=True)
        replay.pause()
        await replay.start("127.0.0.1", 0)
        try:
            path = write_config(tmp, replay.address[1], sections=sections)
            path.write_text(path.read_text(encoding="utf-8")
                            + f'\n[complaints]\nattachments_folder = "{folder}"\n{complaints}\n', encoding="utf-8")
            async with RunningDaemon(load_config(path)) as running:
                daemon = running.daemon
                assert daemon.store is not None and daemon.panel_server is not None
                store = daemon.store
                await add_users(store)
                for name, email in EMAILS.items():
                    await store.update_user(name, email=email)
                await store.add_contact(Contact(
                    name="Петров Пётр", phones=(CLIENT_PHONE,), email="petrov@client.example.ru",
                    vehicles=(Vehicle(make="Skoda", model="Octavia", plate="А123ВС777"),)))
                store.stage_call(make_call(CALL, caller=CLIENT_PHONE, answered=True, answered_by="101",
                                           caller_name="Петров"), None, [])
                await store.flush()
                url = daemon.panel_server.url
                panel = PanelEnv(url=url, ws_url=url.replace("http", "ws", 1) + "/ws", replay=replay,
                                 running=running, config=path, tmp=tmp)
                env = ComplaintsEnv(panel, folder)
                async with env.stack:
                    yield env
        finally:
            await replay.close()


def error_of(response: httpx.Response) -> dict[str, Any]:
    body = response.json()
    assert "error" in body, body
    error: dict[str, Any] = body["error"]
    return error
