"""PBX health in every view (issue 12): ``pbx.status`` tells every user of a PBX (agents too) at once when the daemon
loses it and when it is back, and ``hello`` says each PBX's link at connect.

Over real parts: replay PBXs over TCP, the daemon, the panel over WebSocket. A PBX "away" is one that dropped the
daemon's connection and refuses its logins (as an Asterisk whose manager is restarting does) until the test lets
it back: the daemon retries with its back-off, capped at 1 s in the tests' config.
"""

from __future__ import annotations

import time
from datetime import datetime

from asterisk.replay import ReplayPbx
from tests.daemon.conftest import UNIT, wait_until
from tests.ui_bridge.across_nodes import two_nodes
from tests.ui_bridge.two_pbxs import two_pbxs
from tests.ui_bridge.wsclient import WsClient

TRANSFER = "13-blind-transfer-redirect"
#: The tests' config caps the reconnect back-off at 1 s (tests/daemon/conftest.py), ±20 %.
RECONNECT_MAX = 1.0


def away(replay: ReplayPbx) -> float:
    """The PBX drops the daemon and refuses it until :func:`back`; returns when (monotonic)."""
    replay.secret = "restarting"
    replay.drop_connections()
    return time.monotonic()


def back(replay: ReplayPbx) -> float:
    replay.secret = "cti-secret"
    return time.monotonic()


def arrival(client: WsClient, kind: str, **match: object) -> float:
    """When (monotonic) the first message of ``kind`` matching ``match`` reached ``client``."""
    return next(at for at, msg in client.received
                if msg["type"] == kind and all(msg.get(k) == v for k, v in match.items()))


async def settled(client: WsClient) -> None:
    """Everything queued for ``client`` before now has reached it: a ping's reply comes after it."""
    reply = await client.request({"type": "ping"})
    assert reply["type"] == "reply", reply


async def test_a_lost_pbx_is_told_at_once_to_every_user_of_it_agents_too_and_to_no_one_else() -> None:
    async with two_pbxs([TRANSFER]) as pbxs:
        links = pbxs.env.running.daemon.links
        await wait_until(lambda: all(link.link_up for link in links.values()), 10, "both PBXs connected and resynced")
        clients = {name: await WsClient.connect(pbxs.env, name)
                   for name in ("anna-msk", "boss-msk", "boss", "anna-spb", "qa-spb")}
        hello = await clients["boss"].wait_for("hello")
        assert [(p["id"], p["connected"]) for p in hello["pbxs"]] == [("msk", True), ("spb", True)]
        assert all(datetime.fromisoformat(p["since"]) for p in hello["pbxs"])
        for client in clients.values():
            await client.wait_for("state")

        dropped = away(pbxs.replays["msk"])
        lost = await clients["anna-msk"].wait_for("pbx.status", pbx="msk", connected=False)
        # Within a second of the drop (the daemon notices a closed socket at once), to the agent as to the admins.
        assert arrival(clients["anna-msk"], "pbx.status") - dropped < 1.0 * UNIT
        for name in ("boss-msk", "boss"):
            assert await clients[name].wait_for("pbx.status", pbx="msk") == lost
        assert datetime.fromisoformat(lost["since"])
        # The users of the other PBX only hear nothing of it.
        for name in ("anna-spb", "qa-spb"):
            await settled(clients[name])
            assert clients[name].of_type("pbx.status") == []
        # Someone connecting meanwhile is told at once, in hello.
        late = await WsClient.connect(pbxs.env, "anna-msk")
        assert (await late.wait_for("hello"))["pbxs"] == [{"id": "msk", "name": "PBX MSK", "connected": False,
                                                         "since": lost["since"]}]

        returned = back(pbxs.replays["msk"])
        up = await clients["anna-msk"].wait_for("pbx.status", pbx="msk", connected=True, timeout=10)
        # The back-off is capped low: the PBX's return is seen within the cap (and a login and a resync).
        assert arrival(clients["anna-msk"], "pbx.status", connected=True) - returned < (RECONNECT_MAX * 1.2 + 1) * UNIT
        assert up["since"] >= lost["since"]
        for name in ("boss-msk", "boss"):
            assert await clients[name].wait_for("pbx.status", pbx="msk", connected=True) == up
        assert await late.wait_for("pbx.status", pbx="msk", connected=True) == up
        for name in ("anna-spb", "qa-spb"):
            await settled(clients[name])
            assert clients[name].of_type("pbx.status") == []
        for client in [*clients.values(), late]:
            await client.close()


async def test_a_node_that_does_not_follow_the_pbx_shows_the_link_of_the_node_that_does() -> None:
    """Across nodes: node A follows msk; node B learns msk's link from node A's state (at B's start) and every
    change through the bus, and tells its own clients, agents too."""
    async with two_nodes([TRANSFER]) as nodes:
        link = nodes.a.running.daemon.links["msk"]
        await wait_until(lambda: link.link_up, 10, "node A connected to msk and resynced")
        b = await nodes.start_b()
        assert nodes.b_node is not None
        mirror = nodes.b_node.panel.notifier.mirror
        await wait_until(lambda: mirror.link_of("msk") is not None, 5, "node B heard msk's link from node A")

        anna_on_b = await WsClient.connect(b, "anna-msk")
        hello = await anna_on_b.wait_for("hello")
        assert [(p["id"], p["connected"]) for p in hello["pbxs"]] == [("msk", True)]
        anna_spb_on_b = await WsClient.connect(b, "anna-spb")  # spb: nobody follows it, nobody said anything
        assert [(p["id"], p["connected"]) for p in (await anna_spb_on_b.wait_for("hello"))["pbxs"]] == [("spb", None)]
        await anna_on_b.wait_for("state")

        away(nodes.replay)
        lost = await anna_on_b.wait_for("pbx.status", pbx="msk", connected=False)
        late = await WsClient.connect(b, "boss")
        assert [(p["id"], p["connected"], p["since"]) for p in (await late.wait_for("hello"))["pbxs"]] == [
            ("msk", False, lost["since"]), ("spb", None, None)]
        back(nodes.replay)
        await anna_on_b.wait_for("pbx.status", pbx="msk", connected=True, timeout=10)
        await late.wait_for("pbx.status", pbx="msk", connected=True)
        await settled(anna_spb_on_b)
        assert anna_spb_on_b.of_type("pbx.status") == []
        for client in (anna_on_b, anna_spb_on_b, late):
            await client.close()
