"""«Это …?» and listening in, through the daemon: a tapped call (the replay PBX's queue call, its spy calls answered by
the loopback SIP peer) hears a plate in its first seconds, the agent is offered the contact and confirms it; an admin
listens in through the PBX.

What is real: the daemon, the tap, the store's directory, the WebSocket requests and replies, the AMI actions. What is
not: the words. No model here recognises Russian, so the final that says the plate is written by the test and handed
to the live taps' own handler (``LiveTaps.take_result``, the path every recognised final takes); the identification
it runs (``cti/speech_identify.py`` over the store's directory) is the real one.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from cti.directory import Contact, Vehicle
from cti.live import Lane, LiveResult, LiveWord
from store.repository import User
from tests.conftest import UNIT
from tests.daemon.conftest import wait_until
from tests.live.live_env import AGENT_CHANNEL, QUEUE_TRACE, answered, caller_of, live_of, sections, spy_actions
from tests.live.sip_peer import FakePbx
from tests.panel_env import PanelEnv, panel_env, password_hash
from tests.ui_bridge.wsclient import WsClient

SAID = "здравствуйте номер машины а сто двадцать три вэ эс семьдесят семь"


def result(text: str, *, final: bool = True, lane: Lane = "customer", at: float = 2.0) -> LiveResult:
    words = tuple(LiveWord(w, at + i * 0.4, at + i * 0.4 + 0.35, 0.95) for i, w in enumerate(text.split()))
    return LiveResult(lane, final, text, words, words[0].start, words[-1].end)


async def supervisor(env: PanelEnv) -> None:
    """An admin with a phone of their own (106): the one who may listen in."""
    await env.store.add_user(User(name="super", role="admin", extension="106", display_name="Supervisor Smith",
                                  password_hash=await asyncio.to_thread(password_hash, "admin")))
    env.users["super"] = (env.users["admin"][0], "admin", "106", "Supervisor Smith")  # the admin's password


async def test_a_plate_heard_offers_the_contact_to_the_agent_who_confirms_it_and_an_admin_listens_in(
        sip_pbx: FakePbx, tmp_path: Path) -> None:
    async with asyncio.timeout(120 * UNIT), panel_env([QUEUE_TRACE], speed=0,
                                                      sections=sections(sip_pbx, tmp_path)) as env:
        live = live_of(env)
        owner = await env.store.add_contact(Contact("Петров Иван Сергеевич", phones=("89161112233",),
                                                    vehicles=(Vehicle("Toyota", "Camry", 2019, "А123ВС77"),)))
        await env.store.add_contact(Contact("Сидоров Пётр", vehicles=(Vehicle(plate="К456МН99"),)))
        await supervisor(env)
        agent, stranger = await WsClient.connect(env, "oleg"), await WsClient.connect(env, "dmitry")
        admin, boss = await WsClient.connect(env, "admin"), await WsClient.connect(env, "super")
        await answered(env, sip_pbx)
        await wait_until(lambda: len(spy_actions(env)) == 2, 10, "two spy Originates")
        for spy in spy_actions(env):
            status, _peer = await sip_pbx.call(("127.0.0.1", live.settings.sip_port), caller_of(spy),
                                               payload_types=(0,))
            assert status == 200
        (call,) = live.calls.values()
        await wait_until(lambda: len(call.lanes) == 2, 10, "both lanes answered")
        linkedid = call.context.linkedid

        # A partial never identifies (its words may change); the final does, once, to the call's agent.
        await live.take_result(call, result(SAID, final=False))
        assert live.offers == 0
        await live.take_result(call, result(SAID))
        offer = await agent.wait_for("call.identify", timeout=10)
        assert (offer["linkedid"], offer["contact_id"], offer["name"]) == (linkedid, owner.id, "Петров Иван Сергеевич")
        assert offer["heard"][0]["kind"] == "plate" and offer["heard"][0]["said"] == "А 123 ВС 77"
        assert offer["heard"][0]["speaker"] == "customer" and offer["confidence"] >= 0.6
        assert offer["contact"]["vehicles"][0]["plate"] == "А 123 ВС 77"
        final = await agent.wait_for("call.transcript.final", timeout=10)
        assert final["text"] == SAID and final["speaker"] == "customer"
        await live.take_result(call, result("ещё раз а сто двадцать три вэ эс семьдесят семь", at=9.0))
        assert live.offers == 1 and len(agent.of_type("call.identify")) == 1
        assert not stranger.of_type("call.identify") and not stranger.of_type("call.transcript.final")
        # Nothing is attached before the click.
        assert await env.store.contact_of_call(linkedid, pbx="main") is None

        # Only the call's agents may answer it; the agent's «yes» attaches the contact and refreshes the card.
        refused = await stranger.request({"type": "identify.confirm", "linkedid": linkedid, "contact_id": owner.id})
        assert refused["type"] == "error" and refused["code"] == "forbidden"
        missing = await agent.request({"type": "identify.confirm", "linkedid": linkedid, "contact_id": 999999})
        assert missing["type"] == "error" and missing["code"] == "not_found"
        reply = await agent.request({"type": "identify.confirm", "linkedid": linkedid, "contact_id": owner.id})
        assert reply["type"] == "reply" and reply["data"]["card"]["contacts"][0]["id"] == owner.id
        card = await agent.wait_for("call.card", timeout=10, linkedid=linkedid)
        assert card["card"]["contacts"][0]["name"] == "Петров Иван Сергеевич"
        attached = await env.store.contact_of_call(linkedid, pbx="main")
        assert attached is not None and attached.id == owner.id
        dismissed = await agent.request({"type": "identify.dismiss", "linkedid": linkedid})
        assert dismissed["type"] == "reply"
        gone = await agent.request({"type": "identify.dismiss", "linkedid": "1.999"})
        assert gone["type"] == "error" and gone["code"] == "not_found"

        # Listening in: admins only, on their own phone; ChanSpy on the agent's channel, quiet, no whisper.
        for client, code in ((agent, "forbidden"), (admin, "bad_message")):
            answer = await client.request({"type": "listen_in", "linkedid": linkedid})
            assert answer["type"] == "error" and answer["code"] == code, answer
        bad = await boss.request({"type": "listen_in", "linkedid": linkedid, "extension": "10\r\n2"})
        assert bad["type"] == "error" and bad["code"] == "bad_message"
        sent = await boss.request({"type": "listen_in", "linkedid": linkedid})
        assert sent["type"] == "reply" and sent["data"]["action_id"]
        listen = [a.message for a in env.replay.received_actions
                  if a.message.action == "Originate" and a.message.get("Application") == "ChanSpy"
                  and "tap-" not in a.message.get("CallerID", "")]
        assert [(m.get("Channel"), m.get("Data")) for m in listen] == [("PJSIP/106", f"{AGENT_CHANNEL},qE")]
        for client in (agent, stranger, admin, boss):
            await client.close()
