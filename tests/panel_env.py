"""A whole running system for panel tests: replay PBX → daemon → panel, on loopback, with known users.

``async with panel_env(["13-blind-transfer-redirect"]) as env:`` — the replay PBX holds its event stream
until ``env.start_calls()``, so a test can log in first and then watch the calls arrive; or, held,
``await env.serve_through(match)`` takes the PBX at once to the moment a test wants (a phone ringing).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from asterisk.messages import AmiMessage
from asterisk.replay import ReplayPbx, Trace, load_trace
from store.repository import Role, Store, User
from tests.daemon.conftest import POLL_SECONDS, UNIT, RunningDaemon, serve_through, settings_for
from tests.traces import TRACES
from ui_bridge.auth import hash_password

#: name → (password, role, extension, display name)
USERS: dict[str, tuple[str, Role, str | None, str | None]] = {
    "anna": ("anna-password-1", "agent", "101", "Анна Смирнова"),
    "oleg": ("oleg-password-1", "agent", "102", "Олег Петров"),
    "dmitry": ("dmitry-password-1", "agent", "104", "Дмитрий Соколов"),
    "admin": ("admin-password-1", "admin", None, "Администратор"),
    "qa": ("qa-password-1", "qa", None, "Контроль качества"),
    # A master (the employee role): logs in to see their call-back reminders only (the script's master 105).
    "elena": ("elena-password-1", "employee", "105", "Елена Попова"),
}
_HASHES: dict[str, str] = {}


def password_hash(name: str) -> str:
    """Hashed once per test session: scrypt is slow on purpose."""
    if name not in _HASHES:
        _HASHES[name] = hash_password(USERS[name][0])
    return _HASHES[name]


async def add_users(store: Store, names: list[str] | None = None) -> None:
    for name in names or list(USERS):
        _password, role, ext, display = USERS[name]
        await store.add_user(User(name=name, role=role, extension=ext, display_name=display,
                                  password_hash=await asyncio.to_thread(password_hash, name)))


@dataclass
class PanelEnv:
    url: str
    ws_url: str
    replay: ReplayPbx
    running: RunningDaemon
    config: Path
    tmp: Path
    users: dict[str, tuple[str, Role, str | None, str | None]] = field(default_factory=lambda: dict(USERS))
    #: The replay's events in the order it serves them (one pass).
    events: list[AmiMessage] = field(default_factory=list)

    @property
    def store(self) -> Store:
        store = self.running.daemon.store
        assert store is not None
        return store

    def start_calls(self) -> None:
        self.replay.resume()

    async def serve_through(self, match: Callable[[AmiMessage], bool], what: str = "the event asked for"
                            ) -> AmiMessage:
        """The held PBX taken at once up to the next event ``match`` holds for (:func:`serve_through`)."""
        return await serve_through(self.replay, self.events, match, what)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 10.0, what: str = "a condition") -> None:
        async with asyncio.timeout(timeout * UNIT):
            while not predicate():
                await asyncio.sleep(POLL_SECONDS)


@asynccontextmanager
async def panel_env(traces: list[str], *, speed: float = 1.0, loop: bool = False, http_extra: str = "",
                    users: list[str] | None = None, ami_extra: str = "", directory_extra: str = "",
                    replay_options: dict[str, Any] | None = None,
                    sections: dict[str, str] | None = None) -> AsyncIterator[PanelEnv]:
    with tempfile.TemporaryDirectory(prefix="cti-panel-") as tmp_name:
        tmp = Path(tmp_name)
        loaded: list[Trace] = [load_trace(TRACES / t) for t in traces]
        replay = ReplayPbx(loaded, speed=speed, loop=loop, rebase_time=True, **(replay_options or {}))
        replay.pause()
        await replay.start("127.0.0.1", 0)
        try:
            settings = settings_for(tmp, replay.address[1], http_extra=http_extra, extra_ami=ami_extra,
                                    directory_extra=directory_extra, sections=sections)
            async with RunningDaemon(settings) as running:
                daemon = running.daemon
                assert daemon.store is not None and daemon.panel_server is not None
                await add_users(daemon.store, users)
                url = daemon.panel_server.url
                yield PanelEnv(url=url, ws_url=url.replace("http", "ws", 1) + "/ws", replay=replay,
                               running=running, config=tmp / "config.toml", tmp=tmp,
                               events=[e.message for t in loaded for e in t.events])
        finally:
            await replay.close()
