"""Across panel nodes: a pop, a call's updates, an agent's state and a missed call reach the client whichever node
its browser is connected to; a client connecting to a node that does not follow the PBX still gets the calls in
progress (that node's mirror). A call-control request sent to node B for node A's PBX is carried out by node A.
Node A follows the replay PBX ``msk``; node B follows nothing; both on one
PostgreSQL, each with its own store instance (``tests/ui_bridge/across_nodes.py``). Over SQLite nothing of this
runs: a single node publishes to its own clients, no bus in between.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from store.repository import Store
from tests.daemon.conftest import UNIT, leg_event, wait_until
from tests.panel_env import PanelEnv, panel_env
from tests.ui_bridge.across_nodes import two_nodes
from tests.ui_bridge.two_pbxs import USERS
from tests.ui_bridge.wsclient import WsClient

TRANSFER = "13-blind-transfer-redirect"  # 79160001313 → DID 74950000101 → agent 101 answers, transfers to 104
ABANDON = "08-queue-abandon"  # a queue call nobody answers: a missed-call register entry
AGENT_CHANNEL = "PJSIP/101-00000025"
RINGING = leg_event("Newstate", AGENT_CHANNEL, "Ringing")
ANSWERED = leg_event("BridgeEnter", AGENT_CHANNEL)


async def connect(env: PanelEnv, *names: str) -> list[WsClient]:
    clients = [await WsClient.connect(env, name) for name in names]
    for client in clients:
        await client.wait_for("state")
    return clients


async def settled(client: WsClient) -> None:
    """Everything queued for ``client`` before now has reached it: a ping's reply comes after it."""
    reply = await client.request({"type": "ping"})
    assert reply["type"] == "reply", reply


def about_calls(client: WsClient) -> list[dict[str, Any]]:
    return [msg for _, msg in client.received if msg["type"].startswith(("call.", "missed."))]


def without_time(calls: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(calls, key=lambda c: (c["pbx"], c["linkedid"]))


async def test_a_pop_on_node_a_reaches_agent_101_of_that_pbx_on_node_b_and_no_one_else() -> None:
    async with two_nodes([TRANSFER]) as nodes:
        b = await nodes.start_b()
        anna_on_b, anna_spb_on_b, boss_on_b = await connect(b, "anna-msk", "anna-spb", "boss")
        (anna_on_a,) = await connect(nodes.a, "anna-msk")

        await nodes.serve_through(RINGING, "101 ringing")
        pop = await anna_on_b.wait_for("call.ringing", extension="101")
        assert pop["pbx"] == "msk" and pop["caller"] == "79160001313"
        assert pop["card"]["number"], pop["card"]  # the caller's card came with the pop, from node A's lookup
        assert await anna_on_a.wait_for("call.ringing", extension="101") == pop  # one frame, the same everywhere
        assert (await boss_on_b.wait_for("call.ringing", pbx="msk"))["linkedid"] == pop["linkedid"]
        assert nodes.b_node is not None and nodes.b_node.panel.fanout.received > 0  # through the bus
        assert nodes.panel_a.fanout.sent > 0

        await nodes.serve_through(ANSWERED, "101 answering")
        await anna_on_b.wait_for("call.answered", linkedid=pop["linkedid"])
        # Call control for a PBX another node follows: forwarded to node A, which sends it to its PBX.
        reply = await anna_on_b.request({"type": "hangup", "linkedid": pop["linkedid"]})
        assert reply["type"] == "reply" and reply["data"]["action"] == "Hangup", reply
        assert reply["data"]["pbx"] == "msk"
        hangups = [a.message for a in nodes.replay.received_actions if a.message.action == "Hangup"]
        assert [a.action_id for a in hangups] == [reply["data"]["action_id"]]
        assert hangups[0].get("Channel", "").startswith("PJSIP/101-")  # her own leg, as node A decided
        # A PBX nobody follows: nobody answers, and the client is told so in time.
        assert nodes.b_node is not None
        nodes.b_node.panel.forwarder.timeout = 0.5 * UNIT
        unanswered = await boss_on_b.request({"type": "hangup", "linkedid": pop["linkedid"], "pbx": "spb"})
        assert unanswered["type"] == "error" and unanswered["code"] == "pbx_timeout", unanswered

        nodes.replay.resume()
        await anna_on_b.wait_for("call.ended", timeout=20)
        await anna_on_a.wait_for("call.ended", timeout=20)
        await boss_on_b.wait_for("call.ended", timeout=20)
        # The same messages, in the same order, on both nodes; the pop before its answer.
        kinds = [m["type"] for m in about_calls(anna_on_b)]
        assert kinds == [m["type"] for m in about_calls(anna_on_a)]
        assert kinds.index("call.ringing") < kinds.index("call.answered") < kinds.index("call.ended")
        # Node A measured each pop once it was back from the bus: one observation per call.ringing.
        pops = len(boss_on_b.of_type("call.ringing"))
        assert pops >= 2  # 101, then 104 the call was transferred to
        await _metric_reaches(nodes.a, f'cti_pop_latency_seconds_count{{pbx="msk"}} {pops:.1f}')
        # Agent 101 of the other PBX, connected to the same node, got none of it.
        await settled(anna_spb_on_b)
        assert about_calls(anna_spb_on_b) == []


async def test_a_client_connecting_to_node_b_mid_call_gets_the_call_and_the_agents_node_a_follows() -> None:
    async with two_nodes([TRANSFER]) as nodes:
        (boss_on_a,) = await connect(nodes.a, "boss")
        await nodes.serve_through(RINGING, "101 ringing")
        pop = await boss_on_a.wait_for("call.ringing", extension="101")
        await nodes.serve_through(ANSWERED, "101 answering")
        await boss_on_a.wait_for("call.answered", linkedid=pop["linkedid"])

        # Node B starts now, mid-call: it asks for the state of the PBXs it does not follow, node A answers.
        b = await nodes.start_b()
        assert nodes.b_node is not None
        mirror = nodes.b_node.panel.notifier.mirror
        await wait_until(lambda: mirror.has_call("msk", pop["linkedid"]), 5, "node B mirrors node A's call")

        (boss_late_on_a,) = await connect(nodes.a, "boss")
        boss_on_b, anna_on_b, anna_spb_on_b = await connect(b, "boss", "anna-msk", "anna-spb")
        on_a = (await boss_late_on_a.wait_for("state"))
        on_b = (await boss_on_b.wait_for("state"))
        assert [c["linkedid"] for c in on_b["calls"]] == [pop["linkedid"]]
        call = on_b["calls"][0]
        assert call["pbx"] == "msk" and call["state"] == "talking" and call["answered_by"] == "101"
        assert call["card"]["number"]
        # What node B shows is what node A, which follows the PBX, shows.
        assert without_time(on_b["calls"]) == without_time(on_a["calls"])
        assert on_a["agents"], "the trace's PBX has agents"
        assert sorted(on_b["agents"], key=lambda a: a["extension"]) == sorted(on_a["agents"],
                                                                               key=lambda a: a["extension"])
        # Node B's health says who follows what: msk another node, spb nobody.
        async with httpx.AsyncClient(base_url=b.url) as http:
            assert (await http.post("/api/login", json={"name": "boss", "password": USERS["boss"][0]})).is_success
            links = {p["id"]: p for p in (await http.get("/api/health")).json()["pbxs"]}
        assert links["msk"]["following"] is False and links["msk"]["followed_elsewhere"] is True
        assert links["spb"]["following"] is False and links["spb"]["followed_elsewhere"] is False
        # Agent 101 of msk sees the call; agent 101 of spb (nobody follows spb) sees nothing.
        assert [c["linkedid"] for c in (await anna_on_b.wait_for("state"))["calls"]] == [pop["linkedid"]]
        assert (await anna_spb_on_b.wait_for("state"))["calls"] == []

        # The call ends on node A: node B's mirror lets it go, and the next client sees no call.
        nodes.replay.resume()
        await boss_on_b.wait_for("call.ended", timeout=20, linkedid=pop["linkedid"])
        (late_on_b,) = await connect(b, "boss")
        assert (await late_on_b.wait_for("state"))["calls"] == []


async def test_two_daemons_the_one_standing_by_still_pops_its_clients_for_the_pbx_the_other_follows() -> None:
    async with two_nodes([TRANSFER]) as nodes:
        b = await nodes.start_b_daemon()
        daemon_b = b.running.daemon
        assert daemon_b.links["msk"].stood_by and not daemon_b.links["msk"].following  # node A holds the lease
        anna_on_b, boss_on_b = await connect(b, "anna-msk", "boss")
        await nodes.serve_through(RINGING, "101 ringing")
        pop = await anna_on_b.wait_for("call.ringing", extension="101")
        assert pop["pbx"] == "msk" and pop["card"]["number"]
        (late_on_b,) = await connect(b, "boss")
        assert [c["linkedid"] for c in (await late_on_b.wait_for("state"))["calls"]] == [pop["linkedid"]]
        nodes.replay.resume()
        await anna_on_b.wait_for("call.ended", timeout=20)
        await boss_on_b.wait_for("call.ended", timeout=20)
        assert daemon_b.links["msk"].book.calls == {}  # node B followed nothing: everything came through the bus


async def test_a_missed_call_written_by_node_a_reaches_the_admins_of_its_pbx_on_node_b() -> None:
    async with two_nodes([ABANDON]) as nodes:
        b = await nodes.start_b()
        boss_on_b, boss_msk_on_b, qa_spb_on_b = await connect(b, "boss", "boss-msk", "qa-spb")
        nodes.replay.resume()
        new = await boss_on_b.wait_for("missed.new", timeout=20)
        assert new["entry"]["pbx"] == "msk" and new["entry"]["status"] == "open"
        assert (await boss_msk_on_b.wait_for("missed.new", timeout=20))["entry"]["id"] == new["entry"]["id"]
        await settled(qa_spb_on_b)  # spb's QA: another PBX's register
        assert qa_spb_on_b.of_type("missed.new") == []


async def test_over_sqlite_a_pop_goes_straight_to_the_clients_and_nothing_through_a_bus() -> None:
    async with panel_env([TRANSFER]) as env:
        panel = env.running.daemon.panel
        assert panel is not None and not panel.fanout.across_nodes
        store: Store = env.store
        on_bus: list[str] = []
        subscription = await store.subscribe("panel", on_bus.append)
        try:
            (anna,) = await connect(env, "anna")
            await env.serve_through(RINGING, "101 ringing")
            await anna.wait_for("call.ringing", extension="101")
            # Had the pop gone through the (in-process) bus, it would have been delivered there first.
            assert on_bus == [] and panel.fanout.sent == 0 and panel.fanout.received == 0
        finally:
            await subscription.close()


async def test_a_full_fanout_queue_drops_its_oldest_envelopes_and_counts_them() -> None:
    async with two_nodes([TRANSFER]) as nodes:
        b = await nodes.start_b()
        (boss_on_b,) = await connect(b, "boss")
        fanout = nodes.panel_a.fanout
        fanout.queue_size = 3
        # Published in one synchronous burst, as the event path does: the sender runs only once it is over.
        for i in range(10):
            fanout.publish({"type": "missed.updated", "n": i}, pbx="msk")
        assert fanout.dropped == 7 and fanout.queued == 3
        fanout.publish({"type": "missed.updated", "n": "last"}, pbx="msk")
        await boss_on_b.wait_for("missed.updated", n="last")
        assert [m["n"] for m in boss_on_b.of_type("missed.updated")] == [8, 9, "last"]
        text = (await asyncio.wait_for(_scrape(nodes.a), 5 * UNIT))
        assert "cti_fanout_dropped_total 8.0" in text  # 7, and one more for "last" in a full queue


async def _metric_reaches(env: PanelEnv, line: str, timeout: float = 5) -> None:
    """Wait until the node's /metrics has ``line`` (a pop is observed once its envelope, or one after it, is back
    from the bus: a moment after the clients got it); on a timeout, say what the metric was instead."""
    name = line.rsplit(" ", 1)[0]
    text = ""
    try:
        async with asyncio.timeout(timeout * UNIT):
            while line not in (text := await _scrape(env)):
                await asyncio.sleep(0.01)
    except TimeoutError:
        found = [row for row in text.splitlines() if row.startswith(name)]
        raise AssertionError(f"wanted {line!r}, /metrics has {found}") from None


async def _scrape(env: PanelEnv) -> str:
    async with httpx.AsyncClient(base_url=env.url) as http:
        response = await http.get("/metrics")
        assert response.status_code == 200, response.text
        return response.text


async def test_an_agent_on_node_b_attaches_a_contact_to_her_call_node_a_follows() -> None:
    """Anna's browser is on node B, her PBX is followed by node A: she attaches the caller's contact to the call in
    progress (known on B from its mirror), the new card reaches her and node A's clients; an agent of the other
    PBX may not touch that call."""
    async with two_nodes([TRANSFER]) as nodes:
        b = await nodes.start_b()
        anna_on_b, = await connect(b, "anna-msk")
        boss_on_a, = await connect(nodes.a, "boss")
        await nodes.serve_through(ANSWERED, "101 answering")
        linkedid = (await anna_on_b.wait_for("call.answered"))["linkedid"]
        assert nodes.b_node is not None
        await wait_until(lambda: nodes.b_node is not None and nodes.b_node.panel.notifier.mirror.has_call(
            "msk", linkedid), 5, "node B mirrors the call")
        async with httpx.AsyncClient(base_url=b.url) as anna, httpx.AsyncClient(base_url=b.url) as other:
            for http, name in ((anna, "anna-msk"), (other, "anna-spb")):
                assert (await http.post("/api/login", json={"name": name, "password": USERS[name][0]})).is_success
            contact = (await anna.post("/api/contacts", json={"name": "Зайцева Марина",
                                                              "phones": ["79160001313"]})).json()["contact"]
            refused = await other.post(f"/api/calls/{linkedid}/contact", params={"pbx": "msk"},
                                       json={"contact_id": contact["id"]})
            assert refused.status_code == 403
            done = await anna.post(f"/api/calls/{linkedid}/contact", json={"contact_id": contact["id"]})
            assert done.status_code == 200, done.text
            assert done.json()["pbx"] == "msk" and done.json()["card"]["name"] == "Зайцева Марина"
        for client in (anna_on_b, boss_on_a):
            card = await client.wait_for("call.card", linkedid=linkedid)
            assert card["card"]["name"] == "Зайцева Марина"
        assert (await nodes.b_node.store.contact_of_call(linkedid, pbx="msk")) is not None
