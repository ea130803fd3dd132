"""Live requests from a panel node that does not follow the call's PBX: carried out by the node that does.

A supervisor's browser may be connected to any node of a cluster, and the «Прослушать» button and «Это …?» answers
come with the live messages every node relays; only the node following the PBX has the AMI link, the taps and the
offers. Node A (a whole daemon with ``[live]``) follows the replay PBX ``msk``; node B is a panel following nothing
(``tests/ui_bridge/across_nodes.py``), both on one PostgreSQL. Before forwarding, node B answered «live audio is not
on».
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from store.repository import User
from tests.conftest import UNIT
from tests.daemon.conftest import leg_event
from tests.live.live_env import sections
from tests.live.sip_peer import FakePbx
from tests.panel_env import password_hash
from tests.ui_bridge.across_nodes import two_nodes
from tests.ui_bridge.wsclient import WsClient

TRANSFER = "13-blind-transfer-redirect"  # 79160001313 → DID 74950000101 → agent 101 answers
AGENT_CHANNEL = "PJSIP/101-00000025"


async def test_a_supervisor_on_a_panel_node_listens_in_through_the_node_following_the_pbx(
        sip_pbx: FakePbx, tmp_path: Path) -> None:
    live = sections(sip_pbx, tmp_path)["live"]
    async with asyncio.timeout(120 * UNIT), two_nodes([TRANSFER], sections={"live": live}) as nodes:
        store = nodes.a.running.daemon.store
        assert store is not None and nodes.a.running.daemon.live is not None
        # A supervisor of msk with a phone of their own (the panel_env's "admin" password, hashed once).
        await store.add_user(User(name="super", role="admin", extension="106", display_name="Supervisor",
                                  password_hash=await asyncio.to_thread(password_hash, "admin"), pbxs=("msk",)))
        b = await nodes.start_b()
        b.users["super"] = ("admin-password-1", "admin", "106", "Supervisor")
        anna, boss = await WsClient.connect(b, "anna-msk"), await WsClient.connect(b, "super")

        await nodes.serve_through(leg_event("BridgeEnter", AGENT_CHANNEL), "101 answering")
        linkedid = (await anna.wait_for("call.ringing", extension="101"))["linkedid"]
        await anna.wait_for("call.answered", linkedid=linkedid)

        sent = await boss.request({"type": "listen_in", "linkedid": linkedid})
        assert sent["type"] == "reply" and sent["data"]["action_id"], sent
        listen = [a.message for a in nodes.replay.received_actions
                  if a.message.action == "Originate" and a.message.get("Application") == "ChanSpy"]
        assert [(m.get("Channel"), m.get("Data")) for m in listen] == [("PJSIP/106", f"{AGENT_CHANNEL},qE")]
        assert [m.action_id for m in listen] == [sent["data"]["action_id"]]
        # Node A's rules still hold: an agent may not listen in, whichever node she asks.
        refused = await anna.request({"type": "listen_in", "linkedid": linkedid})
        assert refused["type"] == "error" and refused["code"] == "forbidden", refused
        # «Это …?» answered on node B reaches the node that made the offer (none was: nothing to attach, no error).
        dismissed = await anna.request({"type": "identify.dismiss", "linkedid": linkedid})
        assert dismissed["type"] == "reply", dismissed
        assert nodes.b_node is not None and nodes.b_node.panel.forwarder is not None
        assert nodes.b_node.panel.forwarder.forwarded == 3

        nodes.replay.resume()
        await anna.wait_for("call.ended", timeout=20)
        for client in (anna, boss):
            await client.close()
