"""``CallDialing``: an outbound call is known from the moment the PBX dials the outside number, not from its answer.

Over every recorded trace: each outbound call that reached a trunk gets exactly one, at its trunk's ``DialBegin``
(before any answer), naming the extension that dialled and the number dialled as the journal has them; inbound and
internal calls never do. A call the daemon joined mid-way gets it from the resync that finds it outbound.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from asterisk.messages import AmiMessage
from cti.context import enrich
from cti.effects import CallAnswered, CallDialing, CallEnded, Effect
from cti.model import CallBook, ModelConfig
from tests.traces import load_messages, trace_dirs


def effects_of(messages: list[AmiMessage]) -> list[Effect]:
    """Every effect, with its context, as the daemon hands them on (the recorded login stands for CtiConnected)."""
    book = CallBook(ModelConfig())
    out: list[Effect] = []
    for msg in messages:
        if msg.event == "SuccessfulAuth":
            msg = AmiMessage.from_pairs([("Event", "CtiConnected"), ("PbxTime", msg.get("Timestamp"))],
                                        received_at=msg.received_at)
        out.extend(enrich(book, book.apply(msg)))
    return out


@pytest.mark.parametrize("trace", trace_dirs(), ids=lambda p: p.name)
def test_each_outbound_call_dials_once_before_its_answer_and_no_other_call_does(trace: Path) -> None:
    messages = load_messages(trace)
    effects = effects_of(messages)
    ended = {e.record.linkedid: e.record for e in effects if isinstance(e, CallEnded)}
    dialing = [e for e in effects if isinstance(e, CallDialing)]
    outbound = {lid for lid, r in ended.items()
                if r.direction == "outbound" and any(leg.role == "external" for leg in r.legs)}
    assert sorted(e.linkedid for e in dialing) == sorted(outbound)
    dial_begins = [m.time for m in messages if m.event == "DialBegin"]
    for effect in dialing:
        record = ended[effect.linkedid]
        assert (effect.agent, effect.number) == (record.caller, record.called)
        assert effect.at in dial_begins  # the trunk's DialBegin: its Newchannel named no number yet
        assert effect.context is not None and effect.context.direction == "outbound"
        assert effect.context.called == effect.number and effect.at >= record.started_at
        if record.answered_at is not None:
            assert effect.at < record.answered_at
        answers = [i for i, e in enumerate(effects) if isinstance(e, CallAnswered) and e.linkedid == effect.linkedid]
        assert all(effects.index(effect) < i for i in answers)


def test_a_phone_dialling_out_is_known_before_the_customer_answers() -> None:
    """33-phone-outbound-remote-hangup: 103 dials 84957770033; the customer answers 4 s later."""
    (trace,) = [p for p in trace_dirs() if p.name == "33-phone-outbound-remote-hangup"]
    effects = effects_of(load_messages(trace))
    kinds = [type(e).__name__ for e in effects if type(e).__name__ in ("CallStarted", "CallDialing", "CallAnswered",
                                                                       "CallEnded")]
    assert kinds == ["CallStarted", "CallDialing", "CallAnswered", "CallEnded"]
    (dialing,) = [e for e in effects if isinstance(e, CallDialing)]
    (answered,) = [e for e in effects if isinstance(e, CallAnswered)]
    assert (dialing.agent, dialing.number) == ("103", "84957770033")
    assert answered.at - dialing.at == pytest.approx(4.007, abs=0.01)


def frames(text: str) -> list[AmiMessage]:
    """AMI frames pasted as text (blank-line separated)."""
    out = []
    for block in text.strip().split("\n\n"):
        pairs = [line.split(": ", 1) for line in block.strip().splitlines()]
        out.append(AmiMessage.from_pairs([(key, value) for key, value in pairs], received_at=0.0))
    return out


# Trace 33's call (103 dials 84957770033 over the trunk), as the daemon sees it when it loses the PBX right after the
# agent's phone went off-hook, and as Asterisk 22 lists it at the reconnect: the dial and the answer fell in the
# outage.
AGENT_OFF_HOOK = """
Event: Newchannel
Timestamp: 1795480480.936983
Channel: PJSIP/103-00000145
ChannelStateDesc: Ring
CallerIDNum: 103
CallerIDName: Мария Кузнецова
Context: from-internal
Exten: 84957770033
Uniqueid: 1795480480.339
Linkedid: 1795480480.339

Event: CtiDisconnected
PbxTime: 1795480481.000000
"""


def reconnect(at: float, trunk_state: str) -> str:
    state_code = {"Up": "6", "Ringing": "5"}[trunk_state]
    return f"""
Event: CtiConnected
PbxTime: {at:.6f}

Event: CtiClock
PbxTime: {at:.6f}

Event: CoreShowChannel
ActionID: cti-3
Channel: PJSIP/103-00000145
ChannelState: 6
ChannelStateDesc: Up
CallerIDNum: 103
CallerIDName: Мария Кузнецова
ConnectedLineNum: 84957770033
ConnectedLineName: <unknown>
Context: from-internal
Exten: 84957770033
Priority: 3
Uniqueid: 1795480480.339
Linkedid: 1795480480.339
Application: Dial
ApplicationData: PJSIP/84957770033@trunk,60,tT
Duration: 00:00:06
BridgeId: 7c1d

Event: CoreShowChannel
ActionID: cti-3
Channel: PJSIP/trunk-00000146
ChannelState: {state_code}
ChannelStateDesc: {trunk_state}
CallerIDNum: 84957770033
CallerIDName: <unknown>
ConnectedLineNum: 103
ConnectedLineName: Мария Кузнецова
Context: from-trunk
Exten: s
Priority: 1
Uniqueid: 1795480480.340
Linkedid: 1795480480.339
Application: AppDial
ApplicationData: (Outgoing Line)
Duration: 00:00:05
BridgeId: 7c1d

Event: CoreShowChannelsComplete
ActionID: cti-3
EventList: Complete
ListItems: 2
"""


@pytest.mark.parametrize("trunk_state", ["Up", "Ringing"])
def test_a_call_whose_dial_fell_in_an_outage_is_found_outbound_by_the_resync(trunk_state: str) -> None:
    """Answered in the outage: CallDialing, then CallAnswered. Still ringing at the customer's: CallDialing alone. Both
    dated at the earliest the dial can have happened (the outage's start)."""
    effects = effects_of(frames(AGENT_OFF_HOOK) + frames(reconnect(1795480486.94, trunk_state)))
    found = [e for e in effects if isinstance(e, CallDialing | CallAnswered)]
    assert [type(e) for e in found] == [CallDialing, CallAnswered] if trunk_state == "Up" else [CallDialing]
    dialing = found[0]
    assert isinstance(dialing, CallDialing)
    assert (dialing.linkedid, dialing.agent, dialing.number) == ("1795480480.339", "103", "84957770033")
    assert dialing.at == pytest.approx(1795480481.0)
    if trunk_state == "Up":
        assert found[1].at >= dialing.at  # the trunk leg, made in the outage, is dated by its age
    assert dialing.context is not None and dialing.context.direction == "outbound"


def test_a_call_first_seen_in_a_snapshot_dialling_out_gets_its_dialing() -> None:
    """The daemon connected while 103's call rang at the customer's: the snapshot alone makes it outbound."""
    effects = effects_of(frames(reconnect(1795480486.94, "Ringing")))
    (dialing,) = [e for e in effects if isinstance(e, CallDialing)]
    assert (dialing.agent, dialing.number) == ("103", "84957770033")
    assert dialing.at == pytest.approx(1795480480.94)  # the agent's channel's age in the listing


def test_an_internal_call_and_an_inbound_call_never_dial_out() -> None:
    for name in ("18-internal-call", "28-internal-noanswer", "35-blind-transfer-external", "01-direct-answered"):
        (trace,) = [p for p in trace_dirs() if p.name == name]
        assert not [e for e in effects_of(load_messages(trace)) if isinstance(e, CallDialing)], name
