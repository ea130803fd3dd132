"""``LiveTaps`` on its own: which channels are spied on and how the PBX is asked (pure), and ``[live] max_taps`` held
with several calls answered at once.

The max_taps test runs the real SIP endpoint against the loopback peer and the real recogniser pool, and gives the
taps the call effects the call model makes for simultaneous answered calls (the replay PBX serves one recorded
timeline, in which the queue calls never overlap). Its PBX side is a small double of the AMI: each spy Originate it
receives is answered the way Asterisk's ChanSpy would be, by the peer calling the tap with the Originate's caller id
over real SIP.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import AsyncIterator

import pytest

from asterisk.connection import AmiResponse
from asterisk.messages import AmiMessage
from companion.live.manager import LiveTaps, spy_lanes, spy_originate
from companion.live.sip_tap import SipTap
from cti.effects import CallAnswered, CallContext, CallEnded, ChannelView
from cti.records import CallRecord
from recognizer.live import LiveWorkers
from recognizer.settings import TranscriptionSettings
from tests.conftest import UNIT
from tests.daemon.conftest import wait_until
from tests.live.sip_peer import FakePbx, PeerCall, free_udp_ports
from tests.speech import ko_model_dir
from ui_bridge.live_settings import LiveSettings


def channel(name: str, kind: str, agent: str | None = None, uid: str | None = None) -> ChannelView:
    return ChannelView(uid or name, name, kind, agent, "talking", 1.0, 2.0, 1.5)


def context(linkedid: str, *channels: ChannelView, queue: str | None = "support") -> CallContext:
    return CallContext(linkedid=linkedid, direction="inbound", caller="79161234567", caller_name=None,
                       called="74951234567", queue=queue, started_at=1000.0, answered_at=1005.0, answered_by="102",
                       transferred_to=None, origin=channels[0].uniqueid if channels else "x", channels=channels,
                       agents_rung=("102",), agents_answered=("102",), audience=frozenset({"102"}))


TRUNK = channel("PJSIP/trunk-0000000c", "trunk")
AGENT = channel("PJSIP/102-0000000e", "agent", "102")


def test_agent_and_customer_are_spied_on_apart_and_one_side_alone_is_mixed() -> None:
    both = context("1.1", TRUNK, AGENT)
    assert [(s.lane, s.channel, s.options) for s in spy_lanes(both, True)] == [
        ("agent", AGENT.name, "qoE"), ("customer", TRUNK.name, "qoE")]
    assert [(s.lane, s.channel, s.options) for s in spy_lanes(both, False)] == [("mixed", AGENT.name, "qE")]
    assert [(s.lane, s.channel) for s in spy_lanes(context("1.2", TRUNK), True)] == [("mixed", TRUNK.name)]
    assert spy_lanes(context("1.3"), True) == []


def test_the_spy_originate_dials_the_tap_with_its_caller_id_by_application_or_dialplan_context() -> None:
    settings = LiveSettings(username="cti-tap")
    (agent, _) = spy_lanes(context("1.1", TRUNK, AGENT), True)
    msg = spy_originate(settings, "ab12", agent, 5.0)
    assert (msg.get("Channel"), msg.get("CallerID"), msg.get("Application"), msg.get("Data"), msg.get("Timeout"),
            msg.get("Async")) == ("PJSIP/cti-tap", '"tap-ab12-agent" <tap-ab12-agent>', "ChanSpy",
                                  "PJSIP/102-0000000e,qoE", "5000", "true")
    routed = spy_originate(settings.model_copy(update={"spy_context": "cti-spy"}), "ab12", agent, 5.0)
    assert (routed.get("Context"), routed.get("Exten"), routed.get("Application"), routed.get("Variable")) == (
        "cti-spy", "spy", "", "CTI_SPY_CHANNEL=PJSIP/102-0000000e,CTI_SPY_OPTIONS=qoE")
    with pytest.raises(ValueError):  # a channel name with a line break never becomes an action
        spy_originate(settings, "ab12", dataclasses.replace(agent, channel="PJSIP/1\nAction: Hangup"), 5.0)


class SpyingPbx:
    """The AMI side of a PBX for ``LiveTaps.send_to``: records each action; a spy Originate is answered by the
    loopback peer calling the tap with the Originate's caller id (what ChanSpy's Originate makes Asterisk do)."""

    def __init__(self, peer: FakePbx, tap_port: int) -> None:
        self.peer = peer
        self.tap_port = tap_port
        self.actions: list[AmiMessage] = []
        self.calls: list[PeerCall] = []
        self._tasks: set[asyncio.Task[None]] = set()

    async def send(self, msg: AmiMessage) -> AmiResponse:
        self.actions.append(msg)
        caller = msg.get("CallerID", "").rsplit("<", 1)[1].rstrip(">")
        task = asyncio.create_task(self._call(caller))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return AmiResponse(AmiMessage([("Response", "Success"), ("Message", "Originate successfully queued")]))

    async def _call(self, caller: str) -> None:
        status, call = await self.peer.call(("127.0.0.1", self.tap_port), caller, payload_types=(0,))
        assert status == 200 and call is not None
        self.calls.append(call)


def ended(ctx: CallContext) -> CallEnded:
    record = CallRecord(linkedid=ctx.linkedid, direction="inbound", caller=ctx.caller, caller_name=None,
                        called=ctx.called, answered=True, answered_by="102", missed_reason=None, talk_seconds=10.0,
                        transferred_to=None, agents_rung_not_answered=(), recording=None, started_at=1000.0,
                        answered_at=1005.0, ended_at=1015.0, outcome="answered", queue=ctx.queue)
    return CallEnded(record, None, ())


@pytest.fixture
async def taps(sip_pbx: FakePbx) -> AsyncIterator[tuple[LiveTaps, SpyingPbx]]:
    ports = free_udp_ports(5)
    settings = LiveSettings.model_validate(dict(
        enabled=True, server="127.0.0.1", server_port=sip_pbx.port, username="cti-tap", secret="s3cret",
        bind_host="127.0.0.1", sip_port=ports[0], rtp_port_first=ports[1], rtp_port_last=ports[4], max_taps=1,
        calls="selected", queues=["support"], answer_timeout=10 * UNIT, register_timeout=1.0 * UNIT,
        retry_first_seconds=0.1, retry_max_seconds=0.3))
    transcription = TranscriptionSettings(enabled=True, model=str(ko_model_dir()), language="ko")
    pbx = SpyingPbx(sip_pbx, settings.sip_port)
    live = LiveTaps(settings, transcription, tap=SipTap(settings), workers=LiveWorkers(1),
                    send_to=lambda _pbx: pbx.send, store=lambda: None)
    await live.start()
    try:
        async with asyncio.timeout(20 * UNIT):
            await live.tap.wait_registered()
        yield live, pbx
    finally:
        await live.close()


async def test_no_more_than_max_taps_calls_are_tapped_and_a_freed_one_is_taken_by_the_next_call(
        taps: tuple[LiveTaps, SpyingPbx]) -> None:
    live, pbx = taps
    first, second, third = (context(f"1795479360.{n}", channel(f"PJSIP/trunk-{n}", "trunk"),
                                    channel(f"PJSIP/102-{n}", "agent", "102")) for n in (1, 2, 3))
    other_queue = context("1795479360.4", TRUNK, AGENT, queue="sales")
    for ctx in (first, second, other_queue):
        await live.on_effect(CallAnswered(ctx.linkedid, "102", time.time(), ctx))
    await wait_until(lambda: len(pbx.calls) == 2, 10, "the first call's two lanes answered")
    (call,) = live.calls.values()
    await wait_until(lambda: len(call.lanes) == 2, 10, "both lanes up")
    # One call tapped (two lanes); the second call is over the limit (after the call only); the other queue is not
    # tapped at all; a second answer of the first call (a transfer) starts nothing more.
    assert call.context.linkedid == first.linkedid and live.over_limit == 1 and live.tapped == 1
    assert len(pbx.actions) == 2
    await live.on_effect(CallAnswered(first.linkedid, "104", time.time(), first))
    assert len(pbx.actions) == 2 and len(live.calls) == 1

    # The first call ends: its lanes are hung up, which frees the place for the next call.
    await live.on_effect(ended(first))
    async with asyncio.timeout(20 * UNIT):
        for peer_call in pbx.calls:
            await peer_call.bye_received.wait()
    await wait_until(lambda: not live.calls, 20, "the first tap gone")
    await live.on_effect(CallAnswered(third.linkedid, "102", time.time(), third))
    await wait_until(lambda: len(pbx.actions) == 4 and len(pbx.calls) == 4, 10, "the third call tapped")
    assert [c.context.linkedid for c in live.calls.values()] == [third.linkedid]
    assert {a.get("Data") for a in pbx.actions[2:]} == {"PJSIP/trunk-3,qoE", "PJSIP/102-3,qoE"}
