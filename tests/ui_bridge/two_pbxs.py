"""Two replay PBXs serving the same traces → one daemon (``[[pbxs]]`` msk and spb) → one panel, on loopback.

The hardest case for keeping PBXs apart: every linkedid, channel name and extension of one PBX is also one of the
other's (two real PBXs collide more rarely, but they do). Both PBXs are held until a test serves them
(:meth:`TwoPbxs.serve_through`) or lets them play (:meth:`TwoPbxs.start_calls`). Users belong to one PBX or to
both (``User.pbxs``); the names say which.
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from asterisk.messages import AmiMessage
from asterisk.replay import ReplayPbx, Trace, load_trace
from companion.config import load_config
from store.repository import Role, Store, User
from tests.daemon.conftest import RunningDaemon, serve_through, write_pbxs_config
from tests.panel_env import PanelEnv
from tests.traces import TRACES
from ui_bridge.auth import hash_password

PBXS = ("msk", "spb")

#: name → (password, role, extension, display name, PBXs: empty = every PBX)
USERS: dict[str, tuple[str, Role, str | None, str | None, tuple[str, ...]]] = {
    "anna-msk": ("anna-msk-password", "agent", "101", "Анна (Москва)", ("msk",)),
    "anna-spb": ("anna-spb-password", "agent", "101", "Анна (Петербург)", ("spb",)),
    "boss-msk": ("boss-msk-password", "admin", None, "Начальник (Москва)", ("msk",)),
    "boss": ("boss-password-123", "admin", None, "Начальник сети", ()),
    "qa-spb": ("qa-spb-password-1", "qa", None, "Контроль (Петербург)", ("spb",)),
}
_HASHES: dict[str, str] = {}


def _hash(name: str) -> str:
    if name not in _HASHES:  # scrypt is slow on purpose: once per test process
        _HASHES[name] = hash_password(USERS[name][0])
    return _HASHES[name]


async def add_users(store: Store) -> None:
    for name, (_password, role, extension, display, pbxs) in USERS.items():
        await store.add_user(User(name=name, role=role, extension=extension, display_name=display,
                                  password_hash=await asyncio.to_thread(_hash, name), pbxs=pbxs))


@dataclass
class TwoPbxs:
    """The panel's side (a :class:`PanelEnv` whose ``replay`` is msk's, for the WebSocket client) and both PBXs."""

    env: PanelEnv
    replays: dict[str, ReplayPbx]
    events: list[AmiMessage]

    async def serve_through(self, pbx: str, match: Callable[[AmiMessage], bool], what: str) -> AmiMessage:
        """PBX ``pbx`` taken at once to the next event ``match`` holds for, and held there."""
        return await serve_through(self.replays[pbx], self.events, match, f"{pbx}: {what}")

    def start_calls(self) -> None:
        for replay in self.replays.values():
            replay.resume()

    def actions(self, pbx: str, name: str) -> list[AmiMessage]:
        """The AMI actions named ``name`` PBX ``pbx`` received."""
        return [a.message for a in self.replays[pbx].received_actions if a.message.action == name]


@asynccontextmanager
async def two_pbxs(traces: list[str]) -> AsyncIterator[TwoPbxs]:
    with tempfile.TemporaryDirectory(prefix="cti-two-pbxs-") as tmp_name:
        tmp = Path(tmp_name)
        loaded: list[Trace] = [load_trace(TRACES / t) for t in traces]
        replays = {pbx: ReplayPbx(loaded, speed=0, rebase_time=True) for pbx in PBXS}
        try:
            for replay in replays.values():
                replay.pause()
                await replay.start("127.0.0.1", 0)
            config = write_pbxs_config(tmp, {pbx: r.address[1] for pbx, r in replays.items()})
            async with RunningDaemon(load_config(config)) as running:
                daemon = running.daemon
                assert daemon.store is not None and daemon.panel_server is not None
                await add_users(daemon.store)
                url = daemon.panel_server.url
                env = PanelEnv(url=url, ws_url=url.replace("http", "ws", 1) + "/ws", replay=replays["msk"],
                               running=running, config=config, tmp=tmp,
                               users={n: u[:4] for n, u in USERS.items()})
                yield TwoPbxs(env, replays, [e.message for t in loaded for e in t.events])
        finally:
            for replay in replays.values():
                await replay.close()
