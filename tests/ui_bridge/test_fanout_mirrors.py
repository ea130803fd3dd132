"""The mirrors' upkeep across two nodes on one PostgreSQL (``ui_bridge/mirror_sync.py``), over the real bus: a node
that starts following a PBX tells its whole state, a holder's heartbeat heals what a lost message would have left
wrong, and the mirror of a PBX nobody follows any more empties out. Which PBX a node follows is its handle's
``following()`` (the lease is the daemon's business), switched here by the test.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from asterisk.settings import PbxSettings
from cti.context import CallView
from cti.effects import AgentStateChanged
from cti.model import CallBook
from store.postgres import PostgresStore
from tests.daemon.conftest import UNIT, wait_until
from tests.postgres import cluster
from tests.ui_bridge.handles import no_pbx
from ui_bridge.fanout import Fanout
from ui_bridge.hub import Hub
from ui_bridge.mirror import Mirror
from ui_bridge.mirror_sync import MirrorSync
from ui_bridge.notifier import Notifier
from ui_bridge.pbxs import PbxHandle

PBX = PbxSettings(id="msk", name="PBX MSK")


def agent(extension: str, state: str) -> AgentStateChanged:
    return AgentStateChanged(extension, None, state, False, None, (), ("support",), "NOT_INUSE", 1_700_000_000.0,
                             PBX.id)


@dataclass
class Node:
    """One node's panel parts that keep mirrors: its handle of msk follows while ``follows`` says so."""

    fanout: Fanout
    sync: MirrorSync
    mirror: Mirror
    follows: bool = False
    agents: tuple[AgentStateChanged, ...] = ()


class Cluster:
    """Nodes on one PostgreSQL database, each on its own store instance, started by :meth:`node`."""

    def __init__(self, url: str, heartbeat: float, forget_after: float) -> None:
        self.url = url
        self.heartbeat = heartbeat
        self.forget_after = forget_after
        self.stores: list[PostgresStore] = []
        self.tasks: list[asyncio.Task[None]] = []

    async def node(self) -> Node:
        store = await PostgresStore.open(self.url)
        self.stores.append(store)
        mirror = Mirror(forget_after=self.forget_after)
        holder: list[Node] = []
        handle = PbxHandle(PBX, CallView(CallBook()), agent_states=lambda: list(holder[0].agents),
                           member_interfaces=lambda _ext: {}, send_action=no_pbx, connected=lambda: True,
                           following=lambda: holder[0].follows)
        handles = {PBX.id: handle}
        fanout = Fanout(Hub(), lambda: store, across_nodes=True)
        sync = MirrorSync(fanout, Notifier(handles, None, "RU", mirror), handles, mirror, heartbeat=self.heartbeat,
                          check=0.01)
        node = Node(fanout, sync, mirror)
        holder.append(node)
        self.tasks += [asyncio.create_task(fanout.run()), asyncio.create_task(sync.run())]
        await wait_until(lambda: fanout.active, 5, "the node on the bus")
        return node

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for store in self.stores:
            await store.close()


@asynccontextmanager
async def two_nodes(*, heartbeat: float = 3600.0, forget_after: float = 3600.0
                    ) -> AsyncIterator[tuple[Node, Node, Cluster]]:
    cluster_ = Cluster(await cluster().fresh_database(), heartbeat, forget_after)
    try:
        yield await cluster_.node(), await cluster_.node(), cluster_
    finally:
        await cluster_.close()


async def test_a_node_that_starts_following_a_pbx_tells_its_state_and_the_others_mirror_it() -> None:
    async with two_nodes() as (a, b, _):
        a.agents = (agent("101", "idle"), agent("102", "paused"))
        assert b.mirror.holder_of("msk") is None
        a.follows = True
        await wait_until(lambda: b.mirror.holder_of("msk") == a.fanout.node, 5, "node B hears node A's state")
        assert b.mirror.agents_of("msk", None) == list(a.agents)
        assert b.mirror.agents_of("msk", "102") == [a.agents[1]]
        # Node A's own envelopes change nothing of what it shows: it follows the PBX.
        assert a.mirror.holder_of("msk") is None


async def test_a_holders_heartbeat_heals_what_a_lost_message_left_wrong() -> None:
    async with two_nodes(heartbeat=0.2 * UNIT) as (a, b, _):
        a.agents = (agent("101", "idle"),)
        a.follows = True
        await wait_until(lambda: b.mirror.agents_of("msk", None) == [agent("101", "idle")], 5, "the first state")
        a.agents = (agent("101", "in_call"),)  # changed with no message at all (as if it had been lost)
        await wait_until(lambda: b.mirror.agents_of("msk", None) == [agent("101", "in_call")], 5,
                         "the next heartbeat")


async def test_the_mirror_of_a_pbx_nobody_follows_any_more_empties_out() -> None:
    async with two_nodes(heartbeat=0.1 * UNIT, forget_after=0.5 * UNIT) as (a, b, _):
        a.agents = (agent("101", "idle"),)
        a.follows = True
        await wait_until(lambda: b.mirror.holder_of("msk") == a.fanout.node, 5, "node B hears node A")
        a.follows = False  # its lease lost, say: node A stops telling
        await wait_until(lambda: b.mirror.agents_of("msk", None) == [], 5, "node B forgets the silent PBX")
        assert b.mirror.holder_of("msk") is None


async def test_a_node_that_joins_asks_and_the_holder_answers() -> None:
    async with two_nodes() as (a, b, nodes):
        a.agents = (agent("104", "ringing"),)
        a.follows = True
        await wait_until(lambda: b.mirror.holder_of("msk") == a.fanout.node, 5, "node A told its state")
        late = await nodes.node()  # started after node A told its state: it asks on joining, node A answers
        await wait_until(lambda: late.mirror.agents_of("msk", None) == [agent("104", "ringing")], 5, "the answer")
        assert late.mirror.holder_of("msk") == a.fanout.node
