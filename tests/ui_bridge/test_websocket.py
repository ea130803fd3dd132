"""The WebSocket protocol over real loopback: replay PBX → daemon → panel → websockets clients.

Nothing is patched: the replay PBX serves a recorded Asterisk trace over TCP, the daemon connects to it as
to a PBX, and every command the clients send must arrive at the replay PBX as the AMI action Asterisk
would need.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import time
from typing import Any

import pytest
import websockets

from asterisk.messages import AmiMessage
from cti.effects import CallRang
from tests.conftest import UNIT
from tests.daemon.conftest import leg_event
from tests.panel_env import PanelEnv, panel_env
from tests.ui_bridge.wsclient import WsClient, session_cookie

TRANSFER = "13-blind-transfer-redirect"  # 79160001313 → DID 74950000101 → agent 101 answers
CUSTOMER_CHANNEL = "PJSIP/trunk-00000024"
AGENT_CHANNEL = "PJSIP/101-00000025"


def actions(env: PanelEnv, name: str) -> list[AmiMessage]:
    return [a.message for a in env.replay.received_actions if a.message.action == name]


def fields(msg: AmiMessage) -> dict[str, str]:
    return {k: v for k, v in msg.headers if k not in ("Action", "ActionID")}


async def answered_call(env: PanelEnv, watcher: WsClient) -> str:
    """Take the transfer trace at once to agent 101's answer, and hold the PBX there."""
    await env.serve_through(leg_event("BridgeEnter", AGENT_CHANNEL), "101 answering")
    answered = await watcher.wait_for("call.answered", timeout=20, answered_by="101")
    return str(answered["linkedid"])


# -- who gets what -------------------------------------------------------------------------------------


async def test_an_agent_gets_the_pop_for_their_extension_only_and_an_admin_gets_everything() -> None:
    async with panel_env([TRANSFER], speed=0) as env:
        anna, oleg, admin = [await WsClient.connect(env, n) for n in ("anna", "oleg", "admin")]
        for client in (anna, oleg, admin):
            await client.wait_for("state")
        # The PBX held while 101 rings (the card lookup has its time, as on a real PBX), then the rest at once.
        await env.serve_through(leg_event("Newstate", AGENT_CHANNEL, "Ringing"), "101 ringing")
        pop = await anna.wait_for("call.ringing", extension="101")
        assert pop["caller"] == "79160001313"
        assert pop["caller_name"] == "Зайцева Марина"
        assert pop["called"] == "74950000101"
        assert pop["channel"] == AGENT_CHANNEL
        assert pop["card"] == {"number": "79160001313", "number_display": "+7 916 000-13-13", "withheld": False,
                               "name": None, "status": "new", "contacts": [], "last_calls": [], "open_missed": 0,
                               "sources": ["local"]}
        env.start_calls()
        ended = await admin.wait_for("call.ended", timeout=20)
        await anna.wait_for("call.ended")
        # The transfer target's answer is news too: 104's pop turns to "talking".
        assert [m["answered_by"] for m in admin.of_type("call.answered")] == ["101", "104"]
        assert ended["transferred_to"] == "104" and ended["answered_by"] == "101"
        # The admin saw the whole call, both pops included (101, then 104 after the transfer).
        assert {m["extension"] for m in admin.of_type("call.ringing")} == {"101", "104"}
        assert {"call.answered", "call.transferred", "call.leg_ended", "agent.state"} <= set(admin.types())
        # Agent 102 was never on the call: no call message at all, and no other agent's state.
        assert not [t for t in oleg.types() if t.startswith("call.")]
        assert all(m["extension"] == "102" for m in oleg.of_type("agent.state"))
        # Anna never saw 104's pop.
        assert [m["extension"] for m in anna.of_type("call.ringing")] == ["101"]


async def test_a_client_that_connects_mid_call_gets_the_call_at_once() -> None:
    async with panel_env([TRANSFER], speed=4) as env:
        admin = await WsClient.connect(env, "admin")
        linkedid = await answered_call(env, admin)
        anna = await WsClient.connect(env, "anna")
        hello = await anna.wait_for("hello")
        assert hello["user"] == {"name": "anna", "role": "agent", "extension": "101",
                                 "display_name": "Анна Смирнова"}
        state = await anna.wait_for("state")
        assert state["scope"] == "own" and state["extension"] == "101"
        [call] = state["calls"]
        assert call["linkedid"] == linkedid and call["state"] == "talking" and call["answered_by"] == "101"
        assert call["caller"] == "79160001313"
        assert {"extension": "101", "channel": AGENT_CHANNEL, "state": "talking"} in call["agents"]
        assert [a["extension"] for a in state["agents"]] == ["101"]
        assert state["agents"][0]["state"] == "in_call"
        oleg = await WsClient.connect(env, "oleg")
        assert (await oleg.wait_for("state"))["calls"] == []


# -- commands become AMI actions -------------------------------------------------------------------------


async def test_call_control_commands_reach_the_pbx_as_the_right_actions() -> None:
    async with panel_env([TRANSFER], speed=4) as env:
        anna = await WsClient.connect(env, "anna")
        linkedid = await answered_call(env, anna)

        reply = await anna.request({"type": "transfer", "linkedid": linkedid, "target": "104"})
        assert reply["type"] == "reply" and reply["data"]["action"] == "Redirect"
        assert fields(actions(env, "Redirect")[-1]) == {
            "Channel": CUSTOMER_CHANNEL, "Context": "transfer", "Exten": "104", "Priority": "1"}
        assert actions(env, "Redirect")[-1].action_id == reply["data"]["action_id"]

        reply = await anna.request({"type": "transfer", "linkedid": linkedid, "target": "+7 (916) 123-45-67"})
        assert reply["type"] == "reply"
        assert fields(actions(env, "Redirect")[-1]) == {
            "Channel": CUSTOMER_CHANNEL, "Context": "outbound", "Exten": "+79161234567", "Priority": "1"}

        reply = await anna.request({"type": "transfer", "linkedid": linkedid, "target": "600", "mode": "attended"})
        assert reply["type"] == "reply"
        assert fields(actions(env, "Atxfer")[-1]) == {"Channel": AGENT_CHANNEL, "Exten": "600", "Context": "transfer"}

        reply = await anna.request({"type": "hangup", "linkedid": linkedid})
        assert reply["type"] == "reply"
        assert fields(actions(env, "Hangup")[-1]) == {"Channel": AGENT_CHANNEL, "Cause": "16"}

        reply = await anna.request({"type": "originate", "number": "8 (916) 123-45-67"})
        assert reply["type"] == "reply"
        assert fields(actions(env, "Originate")[-1]) == {
            "Channel": "PJSIP/101", "Context": "from-internal", "Exten": "89161234567", "Priority": "1",
            "CallerID": '"Анна Смирнова" <101>', "Timeout": "20000", "Async": "true"}

        reply = await anna.request({"type": "queue.pause", "queue": "support", "reason": "обед"})
        assert reply["type"] == "reply"
        assert fields(actions(env, "QueuePause")[-1]) == {
            "Interface": "PJSIP/101", "Paused": "true", "Queue": "support", "Reason": "обед"}
        reply = await anna.request({"type": "queue.unpause"})
        assert fields(actions(env, "QueuePause")[-1]) == {"Interface": "PJSIP/101", "Paused": "false"}

        pong = await anna.request({"type": "ping"})
        assert pong["type"] == "reply" and pong["ok"] is True and pong["data"] == {}


async def test_an_admin_ends_a_call_they_are_not_on_and_clicks_to_call_from_any_extension() -> None:
    async with panel_env([TRANSFER], speed=4) as env:
        admin = await WsClient.connect(env, "admin")
        linkedid = await answered_call(env, admin)
        reply = await admin.request({"type": "hangup", "linkedid": linkedid})
        assert reply["type"] == "reply"
        assert fields(actions(env, "Hangup")[-1])["Channel"] == CUSTOMER_CHANNEL
        error = await admin.request({"type": "originate", "number": "89161234567"})
        assert error["code"] == "bad_message" and "extension" in error["message"]
        reply = await admin.request({"type": "originate", "number": "89161234567", "extension": "105"})
        assert reply["type"] == "reply"
        assert fields(actions(env, "Originate")[-1])["CallerID"] == '"Елена Попова" <105>'


async def test_missed_calls_reach_admins_and_close_with_a_comment() -> None:
    async with panel_env(["08-queue-abandon"], speed=0) as env:
        admin, other_admin = await WsClient.connect(env, "admin"), await WsClient.connect(env, "admin")
        anna = await WsClient.connect(env, "anna")
        env.start_calls()
        new = await admin.wait_for("missed.new", timeout=20)
        entry = new["entry"]
        assert entry["caller"] == "79990001122" and entry["status"] == "open" and entry["queue"] == "support"
        refused = await anna.request({"type": "missed.close", "missed_id": entry["id"], "comment": "x"})
        assert refused["code"] == "forbidden"
        reply = await admin.request({"type": "missed.close", "missed_id": entry["id"],
                                     "comment": "перезвонили, записан на ТО"})
        assert reply["type"] == "reply"
        assert reply["data"]["entry"]["status"] == "closed"
        updated = await other_admin.wait_for("missed.updated")
        assert updated["entry"]["id"] == entry["id"]
        assert updated["entry"]["closed_by"] == "manual"
        assert updated["entry"]["comment"] == "перезвонили, записан на ТО"
        stored = await env.store.get_missed(entry["id"])
        assert stored.status == "closed" and stored.comment == "перезвонили, записан на ТО"
        again = await admin.request({"type": "missed.close", "missed_id": entry["id"]})
        assert again["code"] == "conflict" and "already closed" in again["message"]
        missing = await admin.request({"type": "missed.close", "missed_id": 99999})
        assert missing["code"] == "not_found"
        assert "missed.new" not in anna.types()


# -- refusals ----------------------------------------------------------------------------------------------


async def test_wrong_role_requests_are_refused_and_nothing_reaches_the_pbx() -> None:
    async with panel_env([TRANSFER], speed=4) as env:
        oleg, qa = await WsClient.connect(env, "oleg"), await WsClient.connect(env, "qa")
        linkedid = await answered_call(env, qa)
        before = len(env.replay.received_actions)
        refusals: list[dict[str, Any]] = [
            await oleg.request({"type": "transfer", "linkedid": linkedid, "target": "104"}),
            await oleg.request({"type": "hangup", "linkedid": linkedid}),
            await oleg.request({"type": "originate", "number": "89161234567", "extension": "101"}),
            await oleg.request({"type": "queue.pause", "extension": "101"}),
            await oleg.request({"type": "subscribe", "scope": "all"}),
            await qa.request({"type": "originate", "number": "89161234567", "extension": "101"}),
            await qa.request({"type": "hangup", "linkedid": linkedid}),
        ]
        assert [r["code"] for r in refusals] == ["forbidden"] * len(refusals), refusals
        assert all(r["message"] for r in refusals)
        missing = await oleg.request({"type": "hangup", "linkedid": "no-such-call"})
        assert missing["code"] == "not_found"
        assert len(env.replay.received_actions) == before


async def test_the_websocket_refuses_strangers_and_foreign_pages() -> None:
    async with panel_env([TRANSFER]) as env:
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(env.ws_url)
        assert refused.value.response.status_code == 401
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(env.ws_url, additional_headers={"Cookie": "cti_session=forged"})
        assert refused.value.response.status_code == 401
        cookie = await session_cookie(env, "anna")
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(env.ws_url, origin="http://evil.example",  # type: ignore[arg-type]
                                     additional_headers={"Cookie": f"cti_session={cookie}"})
        assert refused.value.response.status_code == 403
        own = env.url
        async with websockets.connect(env.ws_url, origin=own,  # type: ignore[arg-type]
                                      additional_headers={"Cookie": f"cti_session={cookie}"}) as conn:
            assert json.loads(await conn.recv())["type"] == "hello"


async def test_a_bearer_token_opens_the_websocket_for_thin_clients() -> None:
    from ui_bridge.auth import new_token, token_hash

    async with panel_env([TRANSFER]) as env:
        token = new_token()
        await env.store.add_token("oleg", token_hash(token), "CRM plug-in")
        async with websockets.connect(env.ws_url, additional_headers={"Authorization": f"Bearer {token}"}) as conn:
            hello = json.loads(await conn.recv())
            assert hello["user"]["name"] == "oleg"
        with pytest.raises(websockets.InvalidStatus):
            await websockets.connect(env.ws_url, additional_headers={"Authorization": f"Bearer {token}x"})


async def test_malformed_and_oversized_messages_get_errors_and_the_connection_survives() -> None:
    async with panel_env([TRANSFER]) as env:
        anna = await WsClient.connect(env, "anna")
        await anna.wait_for("state")
        await anna.conn.send("{not json")
        await anna.conn.send(json.dumps({"type": "ping", "id": "big", "pad": "x" * 20_000}))
        await anna.conn.send(json.dumps({"type": "teleport", "id": "t"}))
        await anna.conn.send(json.dumps({"type": "transfer", "id": "no-target", "linkedid": "1"}))
        await anna.conn.send(json.dumps({"type": "originate", "id": "bad-number", "number": "call me"}))
        await anna.conn.send(json.dumps([1, 2, 3]))
        reply = await anna.request({"type": "ping"})
        assert reply["type"] == "reply"
        errors = anna.of_type("error")
        assert [(e["id"], e["code"]) for e in errors] == [
            (None, "bad_json"), (None, "too_large"), ("t", "bad_message"), ("no-target", "bad_message"),
            ("bad-number", "bad_message"), (None, "bad_message")]
        assert "teleport" in errors[2]["message"] and "subscribe" in errors[2]["message"]
        assert "target" in errors[3]["message"]
        assert "number" in errors[4]["message"]
        assert anna.closed is None


# -- back-pressure -------------------------------------------------------------------------------------------


async def open_stuck_client(env: PanelEnv, cookie: str) -> socket.socket:
    """A WebSocket client that sends its handshake and never reads a byte (a tiny receive buffer)."""
    port = int(env.url.rsplit(":", 1)[1])
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
                  f"Cookie: cti_session={cookie}\r\n\r\n").encode())
    sock.setblocking(False)
    return sock


def drained_to_the_end(sock: socket.socket) -> bool:
    """Read what the server had sent; True once the server has closed or reset the connection."""
    try:
        while chunk := sock.recv(1 << 20):
            del chunk
    except BlockingIOError:
        return False
    except ConnectionResetError:
        return True
    return True


async def test_a_client_that_never_reads_is_dropped_and_the_other_pops_stay_on_time() -> None:
    busy = ["07-queue-ringall-answered", "11-ringgroup-answered", "13-blind-transfer-redirect", "08-queue-abandon"]
    async with panel_env(busy, speed=400, loop=True, http_extra="client_queue_size = 16") as env:
        hub = env.running.daemon.panel.hub  # type: ignore[union-attr]
        rang: dict[tuple[str, str], float] = {}
        env.running.daemon.subscribe(
            lambda e: rang.setdefault((e.linkedid, e.agent), time.monotonic()) if isinstance(e, CallRang) else None)
        good = await WsClient.connect(env, "admin")
        stuck = await open_stuck_client(env, await session_cookie(env, "admin"))
        await good.wait_for("state")
        await env.wait_for(lambda: len(hub.clients) == 2, what="both clients connected")
        env.start_calls()
        await env.wait_for(lambda: hub.dropped_slow == 1, timeout=30, what="the stuck client dropped")
        assert len(hub.clients) == 1
        pops_at_drop = len(rang)
        await env.wait_for(lambda: len(rang) > pops_at_drop + 20, timeout=10, what="pops went on after the drop")
        # The stuck one cannot even take its close frame: the server gives up on it after its grace (reading from
        # it here would unstick it), and cuts the connection.
        await env.wait_for(lambda: not hub._closing, timeout=10, what="the server done closing the stuck client")
        env.replay.pause()

        def arrived() -> dict[tuple[str, str], float]:
            return {(m["linkedid"], m["extension"]): t for t, m in good.received if m["type"] == "call.ringing"}

        # The good client got every pop, promptly, before and after the drop (the last ones may be on the way).
        await env.wait_for(lambda: set(rang) <= set(arrived()), timeout=5, what="the good client got every pop")
        assert set(rang) == set(arrived()), "the good client got pops that never rang"
        delays = sorted(arrived()[k] - rang[k] for k in rang)
        assert delays[-1] < 0.5 * UNIT, f"pops to the good client were late: worst {delays[-1]:.3f} s"
        assert good.closed is None
        assert drained_to_the_end(stuck)
        stuck.close()


async def test_pausing_names_the_queue_member_interface_even_when_it_is_a_local_channel() -> None:
    # In the lab, agent 104 is queue `sales`'s member as Local/104@agents (watched through PJSIP/104);
    # 13-blind-transfer-redirect rings it, so its membership is known by the end of the trace.
    async with panel_env([TRANSFER], speed=0) as env:
        dmitry = await WsClient.connect(env, "dmitry")
        env.start_calls()
        await dmitry.wait_for("agent.state", timeout=20, queues=["sales"])
        reply = await dmitry.request({"type": "queue.pause", "reason": "break"})
        assert reply["type"] == "reply"
        assert fields(actions(env, "QueuePause")[-1]) == {
            "Interface": "Local/104@agents", "Paused": "true", "Reason": "break"}
        reply = await dmitry.request({"type": "queue.unpause", "queue": "sales"})
        assert fields(actions(env, "QueuePause")[-1]) == {
            "Interface": "Local/104@agents", "Paused": "false", "Queue": "sales"}


async def test_the_example_thin_client_prints_the_pop() -> None:
    import sys

    from tests.traces import REPO
    from ui_bridge.auth import new_token, token_hash

    async with panel_env([TRANSFER], speed=0) as env:
        token = new_token()
        await env.store.add_token("anna", token_hash(token), "example")
        proc = await asyncio.create_subprocess_exec(
            sys.executable, str(REPO / "examples" / "screen_pop_client.py"), env.ws_url, token,
            stdout=asyncio.subprocess.PIPE)
        assert proc.stdout is not None
        try:
            assert (await asyncio.wait_for(proc.stdout.readline(), 10 * UNIT)).decode().startswith("connected as anna")
            env.start_calls()
            line = (await asyncio.wait_for(proc.stdout.readline(), 10 * UNIT)).decode()
            assert line == "RINGING 101: 79160001313 (Зайцева Марина) on 74950000101\n"
            assert (await asyncio.wait_for(proc.stdout.readline(), 10 * UNIT)).decode() == "ANSWERED by 101\n"
        finally:
            proc.terminate()
            await proc.wait()
