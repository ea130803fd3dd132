"""Two panel nodes on one PostgreSQL: node A a whole daemon following the replay PBX ``msk``, node B a panel that
follows no PBX (its handles of ``msk`` and ``spb`` say ``following()`` False), as a node of a cluster does for the
PBXs another node holds the lease of. Both over real parts: the replay PBX over TCP, each node's own store instance
on the test process's throwaway PostgreSQL (``tests/postgres.py``), each node's panel over HTTP and WebSocket.

Node B is started by the test (:meth:`Nodes.start_b`), so a test can start it mid-call. The users are
``tests/ui_bridge/two_pbxs.py``'s (agents 101 of msk and of spb, admins of msk and of both).
"""

from __future__ import annotations

import asyncio
import contextlib
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from asterisk.messages import AmiMessage
from asterisk.replay import ReplayPbx, load_trace
from companion.config import Settings, load_config
from companion.pbx_link import model_config
from cti.context import CallView
from cti.model import CallBook
from store.postgres import PostgresStore
from store.repository import Store
from tests.daemon.conftest import UNIT, RunningDaemon, serve_through, write_pbxs_config
from tests.panel_env import PanelEnv
from tests.postgres import cluster
from tests.traces import TRACES
from tests.ui_bridge.handles import no_pbx
from tests.ui_bridge.two_pbxs import USERS, add_users
from ui_bridge.api_models import Health, StoreHealth
from ui_bridge.cards import CardService
from ui_bridge.commands import Commands
from ui_bridge.fanout import Fanout
from ui_bridge.http import Panel
from ui_bridge.hub import Hub
from ui_bridge.notifier import Notifier
from ui_bridge.pbxs import PbxHandle
from ui_bridge.server import PanelServer


def config_on(tmp: Path, url: str, ports: dict[str, int], sections: dict[str, str] | None = None) -> Settings:
    """The example config with ``[[pbxs]]`` at ``ports`` and the store at ``url``; ``sections``: "key = value" lines
    per section (``write_config``'s)."""
    tmp.mkdir(parents=True, exist_ok=True)
    path = write_pbxs_config(tmp, ports, sections=sections)
    text = path.read_text(encoding="utf-8").replace('# url = "postgresql://cti@db.example/cti"', f'url = "{url}"', 1)
    assert f'url = "{url}"' in text
    path.write_text(text, encoding="utf-8")
    return load_config(path)


@dataclass
class PanelNode:
    """A panel with no daemon, following no PBX: what node B is."""

    settings: Settings
    store: Store
    panel: Panel
    server: PanelServer
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    @classmethod
    async def start(cls, settings: Settings, url: str) -> PanelNode:
        store = await PostgresStore.open(url)
        handles = {p.id: PbxHandle(p, CallView(CallBook(model_config(p))), agent_states=list,
                                   member_interfaces=lambda _ext: {}, send_action=no_pbx,
                                   connected=lambda: False, following=lambda: False)
                   for p in settings.followed()}
        notifier = Notifier(handles, settings.pbx.tzinfo(), settings.pbx.default_region)
        hub = Hub(settings.http.client_queue_size)
        fanout = Fanout(hub, lambda: store, across_nodes=True)
        commands = Commands(handles, notifier, lambda: store, settings.http)
        cards = CardService(settings.directory, lambda: store, settings.pbx.default_region, settings.pbx.tzinfo())
        panel = Panel(settings.http, hub, notifier, commands, lambda: store, handles, fanout=fanout, cards=cards,
                      health=lambda: Health(ami_connected=False, ami_error=None, events_applied=0,
                                            calls_in_progress=0, subscribers=[],
                                            store=StoreHealth(pending=0, max_pending=0, pauses=0, failures=0)))
        server = PanelServer(panel.app, settings.http)
        node = cls(settings, store, panel, server)
        node.tasks = [asyncio.create_task(server.run()), asyncio.create_task(panel.run())]
        async with asyncio.timeout(5 * UNIT):
            await server.started.wait()
            while not fanout.active:
                await asyncio.sleep(0.005)
        return node

    async def stop(self) -> None:
        await self.panel.close()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.store.close()


@asynccontextmanager
async def _running_panel(panel: Panel | None) -> AsyncIterator[None]:
    """A daemon's panel with its background work running (``Panel.run``: a second call, the daemon's own once it
    runs it, returns at once), the fan-out on the bus."""
    assert panel is not None
    background = asyncio.create_task(panel.run())
    try:
        async with asyncio.timeout(5 * UNIT):
            while not panel.fanout.active:
                await asyncio.sleep(0.005)
        yield
    finally:
        background.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await background


def env_of(url: str, replay: ReplayPbx, running: RunningDaemon, tmp: Path) -> PanelEnv:
    """What ``WsClient.connect`` needs of a node: its URLs and the users' passwords."""
    return PanelEnv(url=url, ws_url=url.replace("http", "ws", 1) + "/ws", replay=replay, running=running,
                    config=tmp / "config.toml", tmp=tmp, users={n: u[:4] for n, u in USERS.items()})


@dataclass
class Nodes:
    a: PanelEnv
    replay: ReplayPbx
    events: list[AmiMessage]
    tmp: Path
    url: str
    b_node: PanelNode | None = None
    b: PanelEnv | None = None
    #: Config lines per section both nodes get (``two_nodes(sections=...)``).
    sections: dict[str, str] | None = None
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    @property
    def panel_a(self) -> Panel:
        panel = self.a.running.daemon.panel
        assert panel is not None
        return panel

    async def start_b(self) -> PanelEnv:
        settings = config_on(self.tmp / "b", self.url, {"msk": 9, "spb": 9})  # B connects to no PBX
        self.b_node = await PanelNode.start(settings, self.url)
        self.b = env_of(self.b_node.server.url, self.replay, self.a.running, self.tmp / "b")
        return self.b

    async def start_b_daemon(self) -> PanelEnv:
        """Node B as a whole daemon configured for the same PBX: node A holds its lease, so B stands by and
        follows nothing (it would take the PBX over if node A stopped)."""
        running = RunningDaemon(config_on(self.tmp / "b", self.url, {"msk": self.replay.address[1]}, self.sections))
        await self._stack.enter_async_context(running)
        panel = running.daemon.panel
        assert panel is not None and running.daemon.panel_server is not None
        await self._stack.enter_async_context(_running_panel(panel))
        self.b = env_of(running.daemon.panel_server.url, self.replay, running, self.tmp / "b")
        return self.b

    async def serve_through(self, match: Callable[[AmiMessage], bool], what: str) -> AmiMessage:
        return await serve_through(self.replay, self.events, match, what)


@asynccontextmanager
async def two_nodes(traces: list[str], *, sections: dict[str, str] | None = None) -> AsyncIterator[Nodes]:
    url = await cluster().fresh_database()
    with tempfile.TemporaryDirectory(prefix="cti-two-nodes-") as tmp_name:
        tmp = Path(tmp_name)
        loaded = [load_trace(TRACES / t) for t in traces]
        replay = ReplayPbx(loaded, speed=0, rebase_time=True)
        replay.pause()
        await replay.start("127.0.0.1", 0)
        nodes: Nodes | None = None
        try:
            async with RunningDaemon(config_on(tmp / "a", url, {"msk": replay.address[1]}, sections)) as running, \
                    _running_panel(running.daemon.panel):
                daemon = running.daemon
                assert daemon.store is not None and daemon.panel_server is not None
                await add_users(daemon.store)
                env_a = env_of(daemon.panel_server.url, replay, running, tmp / "a")
                nodes = Nodes(env_a, replay, [e.message for t in loaded for e in t.events], tmp, url,
                              sections=sections)
                try:
                    yield nodes
                finally:
                    if nodes.b_node is not None:
                        await nodes.b_node.stop()
                    await nodes._stack.aclose()
        finally:
            await replay.close()
