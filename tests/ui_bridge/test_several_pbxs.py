"""The panel keeps several PBXs apart: two replay PBXs serving the same trace (the same linkedids, channels and
extensions on both) into one daemon and one panel, with users of one PBX or of both.

An extension means something only within its PBX (101 of Moscow is not 101 of SPb), a linkedid likewise; a
user sees and acts on their own PBXs only. Everything over real parts: replay PBXs over TCP, the daemon, the
panel over HTTP and WebSocket, the SQLite store.
"""

from __future__ import annotations

from typing import Any

import httpx

from tests.daemon.conftest import leg_event
from tests.traces import TRACES, load_truth
from tests.ui_bridge.two_pbxs import USERS, TwoPbxs, two_pbxs
from tests.ui_bridge.wsclient import WsClient

TRANSFER = "13-blind-transfer-redirect"  # 79160001313 → DID 74950000101 → agent 101 answers, transfers to 104
ABANDON = "08-queue-abandon"  # a queue call nobody answers: a missed-call register entry
AGENT_CHANNEL = "PJSIP/101-00000025"
CALL_TYPES = ("call.", "missed.")


async def connect(pbxs: TwoPbxs, *names: str) -> list[WsClient]:
    clients = [await WsClient.connect(pbxs.env, name) for name in names]
    for client in clients:
        await client.wait_for("state")
    return clients


async def ringing_on(pbxs: TwoPbxs, pbx: str) -> None:
    await pbxs.serve_through(pbx, leg_event("Newstate", AGENT_CHANNEL, "Ringing"), "101 ringing")


async def answered_on(pbxs: TwoPbxs, pbx: str) -> None:
    await pbxs.serve_through(pbx, leg_event("BridgeEnter", AGENT_CHANNEL), "101 answering")


def about_calls(client: WsClient) -> list[dict[str, Any]]:
    return [msg for _, msg in client.received if msg["type"].startswith(CALL_TYPES)]


async def http_as(pbxs: TwoPbxs, name: str) -> httpx.AsyncClient:
    http = httpx.AsyncClient(base_url=pbxs.env.url)
    response = await http.post("/api/login", json={"name": name, "password": USERS[name][0]})
    assert response.status_code == 200, response.text
    return http


# -- who gets what -------------------------------------------------------------------------------------------


async def test_a_pop_for_101_on_one_pbx_never_reaches_101_of_the_other() -> None:
    async with two_pbxs([TRANSFER]) as pbxs:
        anna_msk, anna_spb, boss_msk, boss = await connect(pbxs, "anna-msk", "anna-spb", "boss-msk", "boss")
        hello = await boss.wait_for("hello")
        named = [{"id": p["id"], "name": p["name"]} for p in hello["pbxs"]]  # each with its link (test_pbx_status.py)
        assert named == [{"id": "msk", "name": "PBX MSK"}, {"id": "spb", "name": "PBX SPB"}]
        assert [p["id"] for p in (await anna_spb.wait_for("hello"))["pbxs"]] == ["spb"]

        await ringing_on(pbxs, "spb")
        pop = await anna_spb.wait_for("call.ringing", extension="101")
        assert pop["pbx"] == "spb" and pop["caller"] == "79160001313"
        assert (await boss.wait_for("call.ringing", pbx="spb"))["linkedid"] == pop["linkedid"]
        # The same moment on Moscow's PBX: the same linkedid and extension, another call, another agent.
        await ringing_on(pbxs, "msk")
        msk_pop = await anna_msk.wait_for("call.ringing", extension="101")
        assert msk_pop["pbx"] == "msk" and msk_pop["linkedid"] == pop["linkedid"]
        await boss_msk.wait_for("call.ringing", pbx="msk")
        await boss.wait_for("call.ringing", pbx="msk")

        pbxs.start_calls()
        await anna_spb.wait_for("call.ended", timeout=20)
        await anna_msk.wait_for("call.ended", timeout=20)
        await boss.wait_for("call.ended", timeout=20, pbx="spb")
        await boss.wait_for("call.ended", timeout=20, pbx="msk")
        # Each agent saw only their own PBX's calls; Moscow's admin only Moscow's; the admin of both, both.
        assert {m["pbx"] for m in about_calls(anna_spb)} == {"spb"}
        assert {m["pbx"] for m in about_calls(anna_msk)} == {"msk"}
        assert {m["pbx"] for m in about_calls(boss_msk)} == {"msk"}
        assert {m["pbx"] for m in about_calls(boss)} == {"msk", "spb"}
        assert {m["pbx"] for m in boss_msk.of_type("agent.state")} == {"msk"}
        assert {m["pbx"] for m in anna_spb.of_type("agent.state")} == {"spb"}
        assert {m["extension"] for m in anna_spb.of_type("agent.state")} == {"101"}
        # Every message about SPb's call that Moscow's admin got would have been a leak: none.
        assert [m["extension"] for m in anna_msk.of_type("call.ringing")] == ["101"]


async def test_a_client_connecting_mid_call_gets_its_own_pbxs_calls_and_agents() -> None:
    async with two_pbxs([TRANSFER]) as pbxs:
        [watcher] = await connect(pbxs, "boss")
        await answered_on(pbxs, "msk")
        await ringing_on(pbxs, "spb")
        await watcher.wait_for("call.answered", timeout=20, pbx="msk")
        await watcher.wait_for("call.ringing", timeout=20, pbx="spb")
        anna_msk, anna_spb, boss_msk, qa_spb = await connect(pbxs, "anna-msk", "anna-spb", "boss-msk", "qa-spb")
        [call] = (await anna_msk.wait_for("state"))["calls"]
        assert call["pbx"] == "msk" and call["answered_by"] == "101" and call["state"] == "talking"
        [call] = (await anna_spb.wait_for("state"))["calls"]
        assert call["pbx"] == "spb" and call["answered_by"] is None and call["state"] == "ringing"
        msk_state = await boss_msk.wait_for("state")
        assert [c["pbx"] for c in msk_state["calls"]] == ["msk"]
        assert msk_state["agents"] and {a["pbx"] for a in msk_state["agents"]} == {"msk"}
        spb_state = await qa_spb.wait_for("state")
        assert [c["pbx"] for c in spb_state["calls"]] == ["spb"]
        assert spb_state["agents"] and {a["pbx"] for a in spb_state["agents"]} == {"spb"}
        [boss] = await connect(pbxs, "boss")
        both = await boss.wait_for("state")
        assert sorted(c["pbx"] for c in both["calls"]) == ["msk", "spb"]
        assert {a["pbx"] for a in both["agents"]} == {"msk", "spb"}


async def test_missed_calls_reach_only_the_admins_of_their_pbx() -> None:
    async with two_pbxs([ABANDON]) as pbxs:
        boss_msk, boss, qa_spb = await connect(pbxs, "boss-msk", "boss", "qa-spb")
        pbxs.replays["spb"].resume()
        new = await qa_spb.wait_for("missed.new", timeout=20)
        assert new["entry"]["pbx"] == "spb"
        await boss.wait_for("missed.new", timeout=20, entry=new["entry"])
        refused = await boss_msk.request({"type": "missed.close", "missed_id": new["entry"]["id"]})
        assert refused["code"] == "forbidden"
        pbxs.replays["msk"].resume()
        msk_new = await boss_msk.wait_for("missed.new", timeout=20)
        assert msk_new["entry"]["pbx"] == "msk" and msk_new["entry"]["linkedid"] == new["entry"]["linkedid"]
        await boss.wait_for("missed.new", timeout=20, entry=msk_new["entry"])
        assert [m["entry"]["pbx"] for m in boss_msk.of_type("missed.new")] == ["msk"]
        assert [m["entry"]["pbx"] for m in qa_spb.of_type("missed.new")] == ["spb"]


# -- commands go to their call's PBX, and only to the user's -------------------------------------------------


async def test_a_command_about_a_call_goes_to_its_pbx_and_never_to_another_users_pbx() -> None:
    async with two_pbxs([TRANSFER]) as pbxs:
        anna_msk, anna_spb, boss_msk, boss = await connect(pbxs, "anna-msk", "anna-spb", "boss-msk", "boss")
        await answered_on(pbxs, "msk")
        await answered_on(pbxs, "spb")
        linkedid = (await boss.wait_for("call.answered", timeout=20, pbx="spb"))["linkedid"]
        await boss.wait_for("call.answered", timeout=20, pbx="msk")

        # Moscow's admin may not act on SPb's call, whatever they ask.
        refused = await boss_msk.request({"type": "hangup", "linkedid": linkedid, "pbx": "spb"})
        assert refused["type"] == "error" and refused["code"] == "forbidden" and "spb" in refused["message"]
        # The admin of both must say which: the linkedid is a call on each.
        unclear = await boss.request({"type": "hangup", "linkedid": linkedid})
        assert unclear["code"] == "bad_message" and "pbx" in unclear["message"]
        unknown = await boss.request({"type": "hangup", "linkedid": linkedid, "pbx": "nsk"})
        assert unknown["code"] == "bad_message" and "nsk" in unknown["message"]
        assert pbxs.actions("msk", "Hangup") == pbxs.actions("spb", "Hangup") == []

        # SPb's agent hangs up their own call: the action reaches SPb's PBX only (their one PBX is implied).
        reply = await anna_spb.request({"type": "hangup", "linkedid": linkedid})
        assert reply["type"] == "reply" and reply["data"]["pbx"] == "spb"
        assert [a.action_id for a in pbxs.actions("spb", "Hangup")] == [reply["data"]["action_id"]]
        assert pbxs.actions("msk", "Hangup") == []
        reply = await boss.request({"type": "transfer", "linkedid": linkedid, "target": "104", "pbx": "msk"})
        assert reply["type"] == "reply" and reply["data"]["pbx"] == "msk"
        assert len(pbxs.actions("msk", "Redirect")) == 1 and pbxs.actions("spb", "Redirect") == []
        refused = await anna_msk.request({"type": "transfer", "linkedid": linkedid, "target": "104", "pbx": "spb"})
        assert refused["code"] == "forbidden"


async def test_click_to_call_goes_through_the_agents_own_pbx() -> None:
    async with two_pbxs([TRANSFER]) as pbxs:
        anna_spb, boss = await connect(pbxs, "anna-spb", "boss")
        reply = await anna_spb.request({"type": "originate", "number": "89161234567"})
        assert reply["type"] == "reply" and reply["data"]["pbx"] == "spb"
        assert len(pbxs.actions("spb", "Originate")) == 1 and pbxs.actions("msk", "Originate") == []
        refused = await anna_spb.request({"type": "originate", "number": "89161234567", "pbx": "msk"})
        assert refused["code"] == "forbidden"
        unclear = await boss.request({"type": "originate", "number": "89161234567", "extension": "105"})
        assert unclear["code"] == "bad_message" and "pbx" in unclear["message"]
        reply = await boss.request({"type": "originate", "number": "89161234567", "extension": "105", "pbx": "msk"})
        assert reply["type"] == "reply"
        assert len(pbxs.actions("msk", "Originate")) == 1 and len(pbxs.actions("spb", "Originate")) == 1
        paused = await anna_spb.request({"type": "queue.pause", "queue": "support"})
        assert paused["type"] == "reply" and pbxs.actions("msk", "QueuePause") == []
        assert len(pbxs.actions("spb", "QueuePause")) == 1
        bad = await boss.request({"type": "queue.pause", "extension": "101", "pbx": "MSK; drop"})
        assert bad["code"] == "bad_message" and "pbx" in bad["message"]


# -- the HTTP API ----------------------------------------------------------------------------------------------


async def test_the_journal_and_the_register_over_http_keep_to_the_users_pbxs() -> None:
    calls = len(load_truth(TRACES / ABANDON))
    async with two_pbxs([ABANDON]) as pbxs:
        pbxs.start_calls()
        store = pbxs.env.store
        await pbxs.env.wait_for(lambda: not any(link.book.calls for link in pbxs.env.running.daemon.links.values())
                                and all(r.finished.is_set() for r in pbxs.replays.values()), 30, "both PBXs done")
        await store.flush()
        anna_spb, boss_msk, boss = [await http_as(pbxs, n) for n in ("anna-spb", "boss-msk", "boss")]
        try:
            every = (await boss.get("/api/calls")).json()["calls"]
            assert sorted(c["pbx"] for c in every) == sorted(["msk", "spb"] * calls)
            assert {c["pbx"] for c in (await boss_msk.get("/api/calls")).json()["calls"]} == {"msk"}
            only_spb = (await boss.get("/api/calls", params={"pbx": "spb"})).json()["calls"]
            assert len(only_spb) == calls and {c["pbx"] for c in only_spb} == {"spb"}
            both = (await boss.get("/api/calls", params={"pbx": "msk,spb"})).json()["calls"]
            assert len(both) == 2 * calls
            assert {c["pbx"] for c in (await anna_spb.get("/api/calls")).json()["calls"]} <= {"spb"}

            foreign = await boss_msk.get("/api/calls", params={"pbx": "spb"})
            assert foreign.status_code == 403 and "spb" in foreign.json()["error"]["message"]
            unknown = await boss.get("/api/calls", params={"pbx": "nsk"})
            assert unknown.status_code == 400 and "nsk" in unknown.json()["error"]["message"]

            register = (await boss.get("/api/missed")).json()["missed"]
            assert sorted(e["pbx"] for e in register) == ["msk", "spb"]
            mine = (await boss_msk.get("/api/missed")).json()["missed"]
            assert [e["pbx"] for e in mine] == ["msk"]
            spb_entry = next(e for e in register if e["pbx"] == "spb")
            refused = await boss_msk.get(f"/api/missed/{spb_entry['id']}")
            assert refused.status_code == 403
            assert (await boss.get(f"/api/missed/{spb_entry['id']}")).json()["entry"]["pbx"] == "spb"
            assert (await boss_msk.get("/api/missed", params={"pbx": "spb"})).status_code == 403

            health = (await boss.get("/api/health")).json()
            assert health["pbxs"] == [{"id": "msk", "name": "PBX MSK", "connected": True, "following": True,
                                       "followed_elsewhere": False},
                                      {"id": "spb", "name": "PBX SPB", "connected": True, "following": True,
                                       "followed_elsewhere": False}]
        finally:
            for http in (anna_spb, boss_msk, boss):
                await http.aclose()


async def test_attaching_a_contact_names_the_call_by_its_pbx_when_the_linkedid_is_on_both() -> None:
    async with two_pbxs([TRANSFER]) as pbxs:
        [boss_ws] = await connect(pbxs, "boss")
        await answered_on(pbxs, "msk")
        await answered_on(pbxs, "spb")
        linkedid = (await boss_ws.wait_for("call.answered", timeout=20, pbx="spb"))["linkedid"]
        await boss_ws.wait_for("call.answered", timeout=20, pbx="msk")
        boss, anna_spb = await http_as(pbxs, "boss"), await http_as(pbxs, "anna-spb")
        try:
            contact = (await boss.post("/api/contacts", json={"name": "Зайцева Марина",
                                                              "phones": ["79160001313"]})).json()["contact"]
            body = {"contact_id": contact["id"]}
            unclear = await boss.post(f"/api/calls/{linkedid}/contact", json=body)
            assert unclear.status_code == 400 and "pbx" in unclear.json()["error"]["message"]
            done = await anna_spb.post(f"/api/calls/{linkedid}/contact", json=body)  # their one PBX: implied
            assert done.status_code == 200 and done.json()["pbx"] == "spb"
            card = await boss_ws.wait_for("call.card", pbx="spb")
            assert card["card"]["name"] == "Зайцева Марина"
            foreign = await anna_spb.post(f"/api/calls/{linkedid}/contact", params={"pbx": "msk"}, json=body)
            assert foreign.status_code == 403
            assert await pbxs.env.store.contact_of_call(linkedid, pbx="msk") is None
            assert (await pbxs.env.store.contact_of_call(linkedid, pbx="spb")) is not None
            assert [m["pbx"] for m in boss_ws.of_type("call.card")] == ["spb"]
        finally:
            await boss.aclose()
            await anna_spb.aclose()
