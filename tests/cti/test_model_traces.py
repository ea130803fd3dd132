"""The pure call model against every recorded trace: no socket, no loop, just events in.

The same check runs over TCP through the whole daemon in tests/integration/test_journal_traces.py;
this one pins failures on the model alone and runs in milliseconds.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from asterisk.messages import AmiMessage
from cti.effects import CallEnded, CallRang
from cti.model import CallBook, ModelConfig
from tests.traces import compare_with_cdr, compare_with_truth, load_cdr, load_truth, trace_dirs


def replay_into_model(trace: Path) -> tuple[CallBook, list[CallEnded], list[CallRang]]:
    """Feed a trace's received messages to a CallBook the way the connection would.

    The connection announces each login with ``CtiConnected`` carrying the PBX's clock (from a
    Ping); here the recorded ``SuccessfulAuth`` timestamp stands in for it.
    """
    book = CallBook(ModelConfig())
    ended: list[CallEnded] = []
    rang: list[CallRang] = []
    for line in (trace / "ami.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if not isinstance(item.get("msg"), list):
            continue
        msg = AmiMessage.from_pairs(item["msg"], received_at=item["t"])
        if msg.event == "SuccessfulAuth":
            msg = AmiMessage.from_pairs([("Event", "CtiConnected"), ("PbxTime", msg.get("Timestamp"))],
                                        received_at=item["t"])
        for effect in book.apply(msg):
            if isinstance(effect, CallEnded):
                ended.append(effect)
            elif isinstance(effect, CallRang):
                rang.append(effect)
    return book, ended, rang


@pytest.mark.parametrize("trace", trace_dirs(), ids=lambda p: p.name)
def test_model_journal_matches_truth_and_cdr(trace: Path) -> None:
    """Each call of the trace ends up in the journal exactly as truth.json and cdr.csv say."""
    book, ended, _ = replay_into_model(trace)
    assert not book.calls, f"calls left open: {list(book.calls)}"
    journal = [e.record.to_json() for e in ended]
    assert compare_with_truth(journal, load_truth(trace)) == []
    epoch = {}
    for e in ended:
        epoch[e.record.linkedid + ":start"] = e.record.started_at
        epoch[e.record.linkedid + ":end"] = e.record.ended_at or e.record.started_at
    assert compare_with_cdr(journal, load_cdr(trace), epoch=epoch) == []


def test_missed_register_holds_exactly_the_unanswered_inbound_calls() -> None:
    """A missed entry per unanswered inbound call, with the caller's number normalised for call-backs."""
    for trace in trace_dirs():
        _, ended, _ = replay_into_model(trace)
        for e in ended:
            r = e.record
            if r.direction == "inbound" and not r.answered:
                assert e.missed is not None and e.missed.reason == r.missed_reason
                assert e.missed.caller_key == (None if r.caller is None else r.caller)
            else:
                assert e.missed is None


def test_ringall_losers_are_recorded_against_each_agent() -> None:
    """Queue ringall: 101 and 105 rang while 102 answered: a per-agent miss each, not a centre miss."""
    _, ended, rang = replay_into_model(next(p for p in trace_dirs() if p.name.startswith("07-")))
    (e,) = ended
    assert e.missed is None
    assert {(m.agent, m.reason, m.answered_by) for m in e.agent_misses} == {
        ("101", "answered_elsewhere", "102"), ("105", "answered_elsewhere", "102")}
    assert sorted({r.agent for r in rang}) == ["101", "102", "105"]
    assert all(r.caller == "79161234500" and r.caller_name == "Кузьмин Алексей" for r in rang)


def test_replaying_a_resync_snapshot_twice_creates_no_duplicate_call() -> None:
    """CoreShowChannels answered twice (a reconnect) leaves one call per linkedid."""
    trace = next(p for p in trace_dirs() if p.name.startswith("25-"))
    book = CallBook(ModelConfig())
    items = []
    for line in (trace / "ami.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        if isinstance(item.get("msg"), list) and dict(item["msg"]).get("Event", "").startswith("CoreShowChannel"):
            items.append(AmiMessage.from_pairs(item["msg"], received_at=item["t"]))
    for _ in range(2):
        book.apply(AmiMessage.from_pairs([("Event", "CtiConnected"), ("PbxTime", "1795480080.0")], received_at=1.0))
        for msg in items:
            book.apply(msg)
    assert sorted(book.calls) == ["1795480072.195", "1795480073.196", "1795480076.201"]
    assert book.calls["1795480072.195"].answered_by == "102"
    assert not book.calls["1795480072.195"].complete


def frames(text: str, start: float = 1000.0) -> list[AmiMessage]:
    """AMI frames pasted as text (blank-line separated); Timestamp defaults to ``start``."""
    out = []
    for block in text.strip().split("\n\n"):
        pairs = [tuple(line.split(": ", 1)) for line in block.strip().splitlines()]
        msg = AmiMessage.from_pairs([(k, v) for k, v in pairs], received_at=start)
        out.append(msg)
    return out


# Click-to-call where the agent's own phone never answers (shapes from 16-click-to-call-answered).
UNANSWERED_ORIGINATE = """
Event: Newchannel
Timestamp: 1000.0
Channel: PJSIP/101-00000090
ChannelStateDesc: Down
CallerIDNum: 101
CallerIDName: Анна Смирнова
Exten: s
Uniqueid: 1000.90
Linkedid: 1000.90

Event: DialBegin
Timestamp: 1000.1
DestChannel: PJSIP/101-00000090
DestUniqueid: 1000.90
DialString: 101

Event: Newstate
Timestamp: 1000.2
Channel: PJSIP/101-00000090
ChannelStateDesc: Ringing
Uniqueid: 1000.90
Linkedid: 1000.90

Event: DialEnd
Timestamp: 1020.0
DestChannel: PJSIP/101-00000090
DestUniqueid: 1000.90
DialStatus: NOANSWER

Event: Hangup
Timestamp: 1020.0
Channel: PJSIP/101-00000090
ChannelStateDesc: Ringing
Uniqueid: 1000.90
Linkedid: 1000.90
Cause: 19
Cause-txt: No answer
"""


def test_click_to_call_the_agent_never_answers_is_unavailable_with_its_number() -> None:
    """The number comes in the OriginateResponse after the Hangup; the record waits for it."""
    book = CallBook(ModelConfig())
    effects = [e for m in frames(UNANSWERED_ORIGINATE) for e in book.apply(m)]
    assert not [e for e in effects if isinstance(e, CallEnded)], "must wait for the OriginateResponse"
    (resp,) = frames("Event: OriginateResponse\nTimestamp: 1020.1\nResponse: Failure\nChannel: PJSIP/101\n"
                     "Context: from-internal\nExten: 89161230099\nReason: 3\nUniqueid: <null>")
    (ended,) = [e for e in book.apply(resp) if isinstance(e, CallEnded)]
    r = ended.record
    assert (r.direction, r.caller, r.called, r.outcome, r.missed_reason) == (
        "outbound", "101", "89161230099", "failed", "unavailable")
    assert ended.missed is None and r.agents_rung_not_answered == ()


def test_click_to_call_without_originate_response_is_journaled_after_a_while() -> None:
    book = CallBook(ModelConfig())
    for m in frames(UNANSWERED_ORIGINATE):
        book.apply(m)
    (soon,) = frames("Event: CtiTick\nPbxTime: 1022.0")
    assert book.apply(soon) == [], "still waiting for the OriginateResponse"
    (tick,) = frames("Event: CtiTick\nPbxTime: 1030.0")
    (ended,) = [e for e in book.apply(tick) if isinstance(e, CallEnded)]
    assert ended.record.missed_reason == "unavailable" and ended.record.called is None


# An attended transfer by AMI Atxfer (README of the traces: a Local/104@transfer pair for the
# consultation, then AttendedTransfer). Channel lines trimmed to what the model reads.
ATTENDED_TRANSFER = """
Event: Newchannel
Timestamp: 2000.0
Channel: PJSIP/trunk-000000a0
ChannelStateDesc: Ring
CallerIDNum: 79161230040
CallerIDName: Орлов Павел
Exten: 74950000101
Uniqueid: 2000.1
Linkedid: 2000.1

Event: Newchannel
Timestamp: 2000.1
Channel: PJSIP/101-000000a1
ChannelStateDesc: Down
Exten: s
Uniqueid: 2000.2
Linkedid: 2000.1

Event: DialBegin
Timestamp: 2000.1
Channel: PJSIP/trunk-000000a0
Uniqueid: 2000.1
Exten: 74950000101
DestChannel: PJSIP/101-000000a1
DestUniqueid: 2000.2
DialString: 101

Event: DialEnd
Timestamp: 2003.0
Channel: PJSIP/trunk-000000a0
Uniqueid: 2000.1
DestChannel: PJSIP/101-000000a1
DestUniqueid: 2000.2
DialStatus: ANSWER

Event: Newchannel
Timestamp: 2010.0
Channel: Local/104@transfer-00000001;1
ChannelStateDesc: Down
Exten: 104
Uniqueid: 2010.3
Linkedid: 2000.1

Event: Newchannel
Timestamp: 2010.0
Channel: Local/104@transfer-00000001;2
ChannelStateDesc: Ring
Exten: 104
Uniqueid: 2010.4
Linkedid: 2000.1

Event: Newchannel
Timestamp: 2010.1
Channel: PJSIP/104-000000a2
ChannelStateDesc: Down
Exten: s
Uniqueid: 2010.5
Linkedid: 2000.1

Event: DialBegin
Timestamp: 2010.1
Channel: Local/104@transfer-00000001;2
Uniqueid: 2010.4
Exten: 104
DestChannel: PJSIP/104-000000a2
DestUniqueid: 2010.5
DialString: 104

Event: DialEnd
Timestamp: 2012.0
Channel: Local/104@transfer-00000001;2
Uniqueid: 2010.4
DestChannel: PJSIP/104-000000a2
DestUniqueid: 2010.5
DialStatus: ANSWER

Event: AttendedTransfer
Timestamp: 2015.0
Result: Success
OrigTransfererChannel: PJSIP/101-000000a1
OrigTransfererUniqueid: 2000.2
SecondTransfererChannel: PJSIP/101-000000a1
SecondTransfererUniqueid: 2000.2
SecondTransfererConnectedLineNum: 104
TransfereeChannel: PJSIP/trunk-000000a0
TransfereeUniqueid: 2000.1
TransferTargetChannel: Local/104@transfer-00000001;1
TransferTargetUniqueid: 2010.3
DestType: Link

Event: Hangup
Timestamp: 2015.1
Channel: PJSIP/101-000000a1
Uniqueid: 2000.2
Cause: 16

Event: Hangup
Timestamp: 2015.2
Channel: Local/104@transfer-00000001;1
Uniqueid: 2010.3
Cause: 16

Event: Hangup
Timestamp: 2015.2
Channel: Local/104@transfer-00000001;2
Uniqueid: 2010.4
Cause: 16

Event: Hangup
Timestamp: 2030.0
Channel: PJSIP/104-000000a2
Uniqueid: 2010.5
Cause: 16

Event: Hangup
Timestamp: 2030.1
Channel: PJSIP/trunk-000000a0
Uniqueid: 2000.1
Cause: 16
"""


def _ended_from(text: str, drop: str | None = None) -> CallEnded:
    book = CallBook(ModelConfig())
    ended = [e for m in frames(text) if m.event != drop for e in book.apply(m) if isinstance(e, CallEnded)]
    assert not book.calls and len(ended) == 1
    return ended[0]


def test_attended_transfer_names_the_target_and_keeps_the_first_answerer() -> None:
    r = _ended_from(ATTENDED_TRANSFER).record
    assert (r.answered_by, r.transferred_to, r.agents_rung_not_answered) == ("101", "104", ())
    assert r.agents_answered == ("101", "104")
    assert abs(r.talk_seconds - 27.1) < 0.01  # from 101's answer to the end, after the transfer too


def test_hand_over_without_a_transfer_event_is_still_a_transfer() -> None:
    """If the AttendedTransfer event never arrives, a second agent taking the call is the hand-over."""
    r = _ended_from(ATTENDED_TRANSFER, drop="AttendedTransfer").record
    assert r.transferred_to == "104"


def test_resync_screen_pop_names_the_caller_even_if_listed_after_the_ringing_phone() -> None:
    """CoreShowChannels lists channels in any order; a phone found ringing pops with the caller's number."""
    _, _, rang = replay_into_model(next(p for p in trace_dirs() if p.name.startswith("25-")))
    from_snapshot = [r for r in rang if r.linkedid == "1795480076.201"]
    assert {r.agent for r in from_snapshot} == {"101", "105"}
    assert all(r.caller == "79161250028" and r.caller_name == "Романова Ева" for r in from_snapshot)


# Who hung up first, from the scenario descriptions in ../shared/ami-traces/README.md.
HUNG_UP_BY = {
    "01": "customer",  # "the customer hangs up first"
    "02": "agent",  # "the agent hangs up first while the customer is still on the line"
    "05": "customer",  # "the customer gives up and hangs up (CANCEL)"
    "12": "pbx",  # "the PBX gives up after the 15 s Dial timeout and hangs up the caller"
    "17": "agent",  # "101 hangs up after ~12 s"
    "33": "customer",  # "the remote party answers ..., talks and hangs up first"
    "36": "customer",  # "the customer talks and hangs up"
}


@pytest.mark.parametrize("prefix", sorted(HUNG_UP_BY))
def test_who_hung_up(prefix: str) -> None:
    _, ended, _ = replay_into_model(next(p for p in trace_dirs() if p.name.startswith(prefix + "-")))
    assert [e.record.hung_up_by for e in ended] == [HUNG_UP_BY[prefix]]


def test_waiting_time_of_a_voicemail_call_ends_when_voicemail_takes_it() -> None:
    """03: 103 rang 15 s (Dial timeout), then voicemail: the caller waited 15 s, not the whole call."""
    _, (ended,), _ = replay_into_model(next(p for p in trace_dirs() if p.name.startswith("03-")))
    assert 14.5 <= ended.record.ring_seconds <= 15.5
    assert ended.missed is not None and ended.missed.ring_seconds == ended.record.ring_seconds


def test_no_screen_pop_for_a_phone_that_never_rang() -> None:
    """36: 101's phone answers every attempt with 503: it was tried (a per-agent miss), never rang (no pop)."""
    _, (ended,), rang = replay_into_model(next(p for p in trace_dirs() if p.name.startswith("36-")))
    assert [r.agent for r in rang] == ["102"]
    assert [(m.agent, m.reason) for m in ended.agent_misses] == [("101", "unavailable")]
