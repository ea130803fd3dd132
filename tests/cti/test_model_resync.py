"""The resync after an outage (issue 10, classes 1, 6 and 8), on the pure model, from pasted frames.

The frames are trace 01-direct-answered's (a customer calls DID 74950000001, agent 103's phone rings 3 s and
answers, the customer hangs up 10 s later; MixMonitor records), header for header; the ``CoreShowChannel`` items
are what Asterisk 22 answers at the reconnect (as trace 25 shows them), here after 103 answered while the daemon
was away. The daemon's connection hands the model ``CtiDisconnected``, then ``CtiConnected``, ``CtiClock`` and
the snapshot; a rebuilt daemon replays its event journal and then ``CtiDisconnected`` (companion/daemon.py).
"""

from __future__ import annotations

from asterisk.messages import AmiMessage
from cti.effects import CallAnswered, CallEnded, CallRang, Effect, VariableWanted
from cti.model import CallBook, ModelConfig
from cti.records import CallRecord

T0 = 1795479242.565286
TRUNK = [("Channel", "PJSIP/trunk-00000000"), ("CallerIDNum", "79161234567"), ("CallerIDName", "Иванов Пётр")]
AGENT = [("Channel", "PJSIP/103-00000001"), ("CallerIDNum", "103"), ("CallerIDName", "Мария Кузнецова")]
RECORDING = "20261124-001402-79161234567-1795479242.0.wav"


def frame(*pairs: tuple[str, str]) -> AmiMessage:
    return AmiMessage.from_pairs(list(pairs))


NEWCHANNEL_TRUNK = frame(
    ("Event", "Newchannel"), ("Privilege", "call,all"), ("Timestamp", "1795479242.565286"), *TRUNK[:1],
    ("ChannelState", "4"), ("ChannelStateDesc", "Ring"), *TRUNK[1:], ("ConnectedLineNum", "<unknown>"),
    ("ConnectedLineName", "<unknown>"), ("Language", "en"), ("AccountCode", ""), ("Context", "from-trunk"),
    ("Exten", "74950000001"), ("Priority", "1"), ("Uniqueid", "1795479242.0"), ("Linkedid", "1795479242.0"))
VARSET_RECORDING = frame(
    ("Event", "VarSet"), ("Privilege", "dialplan,all"), ("Timestamp", "1795479242.565795"), *TRUNK[:1],
    ("ChannelState", "4"), ("ChannelStateDesc", "Ring"), *TRUNK[1:], ("ConnectedLineNum", "<unknown>"),
    ("ConnectedLineName", "<unknown>"), ("Language", "en"), ("AccountCode", ""), ("Context", "rec"), ("Exten", "s"),
    ("Priority", "2"), ("Uniqueid", "1795479242.0"), ("Linkedid", "1795479242.0"), ("Variable", "MIXMONITOR_FILENAME"),
    ("Value", f"/var/spool/asterisk/monitor/{RECORDING}"))
NEWCHANNEL_AGENT = frame(
    ("Event", "Newchannel"), ("Privilege", "call,all"), ("Timestamp", "1795479242.568890"), *AGENT[:1],
    ("ChannelState", "0"), ("ChannelStateDesc", "Down"), *AGENT[1:], ("ConnectedLineNum", "<unknown>"),
    ("ConnectedLineName", "<unknown>"), ("Language", "en"), ("AccountCode", ""), ("Context", "from-internal"),
    ("Exten", "s"), ("Priority", "1"), ("Uniqueid", "1795479242.1"), ("Linkedid", "1795479242.0"))
DIALBEGIN = frame(
    ("Event", "DialBegin"), ("Privilege", "call,all"), ("Timestamp", "1795479242.569146"), *TRUNK[:1],
    ("ChannelState", "4"), ("ChannelStateDesc", "Ring"), *TRUNK[1:], ("ConnectedLineNum", "<unknown>"),
    ("ConnectedLineName", "<unknown>"), ("Language", "en"), ("AccountCode", ""), ("Context", "from-trunk"),
    ("Exten", "74950000001"), ("Priority", "3"), ("Uniqueid", "1795479242.0"), ("Linkedid", "1795479242.0"),
    ("DestChannel", "PJSIP/103-00000001"), ("DestChannelState", "0"), ("DestChannelStateDesc", "Down"),
    ("DestCallerIDNum", "103"), ("DestCallerIDName", "Мария Кузнецова"), ("DestConnectedLineNum", "79161234567"),
    ("DestConnectedLineName", "Иванов Пётр"), ("DestLanguage", "en"), ("DestAccountCode", ""),
    ("DestContext", "from-internal"), ("DestExten", "74950000001"), ("DestPriority", "1"),
    ("DestUniqueid", "1795479242.1"), ("DestLinkedid", "1795479242.0"), ("DialString", "103"))
RINGING = frame(
    ("Event", "Newstate"), ("Privilege", "call,all"), ("Timestamp", "1795479242.572220"), *AGENT[:1],
    ("ChannelState", "5"), ("ChannelStateDesc", "Ringing"), *AGENT[1:], ("ConnectedLineNum", "79161234567"),
    ("ConnectedLineName", "Иванов Пётр"), ("Language", "en"), ("AccountCode", ""), ("Context", "from-internal"),
    ("Exten", "74950000001"), ("Priority", "1"), ("Uniqueid", "1795479242.1"), ("Linkedid", "1795479242.0"))
HANGUPREQUEST_TRUNK = frame(
    ("Event", "HangupRequest"), ("Privilege", "call,all"), ("Timestamp", "1795479255.501491"), *TRUNK[:1],
    ("ChannelState", "6"), ("ChannelStateDesc", "Up"), *TRUNK[1:], ("ConnectedLineNum", "103"),
    ("ConnectedLineName", "Мария Кузнецова"), ("Language", "en"), ("AccountCode", ""), ("Context", "from-trunk"),
    ("Exten", "74950000001"), ("Priority", "3"), ("Uniqueid", "1795479242.0"), ("Linkedid", "1795479242.0"),
    ("Cause", "16"))
HANGUP_TRUNK = frame(
    ("Event", "Hangup"), ("Privilege", "call,all"), ("Timestamp", "1795479255.503006"), *TRUNK[:1],
    ("ChannelState", "6"), ("ChannelStateDesc", "Up"), *TRUNK[1:], ("ConnectedLineNum", "103"),
    ("ConnectedLineName", "Мария Кузнецова"), ("Language", "en"), ("AccountCode", ""), ("Context", "from-trunk"),
    ("Exten", "74950000001"), ("Priority", "3"), ("Uniqueid", "1795479242.0"), ("Linkedid", "1795479242.0"),
    ("Cause", "16"), ("Cause-txt", "Normal Clearing"))
HANGUP_AGENT = frame(
    ("Event", "Hangup"), ("Privilege", "call,all"), ("Timestamp", "1795479255.504114"), *AGENT[:1],
    ("ChannelState", "6"), ("ChannelStateDesc", "Up"), *AGENT[1:], ("ConnectedLineNum", "79161234567"),
    ("ConnectedLineName", "Иванов Пётр"), ("Language", "en"), ("AccountCode", ""), ("Context", "from-internal"),
    ("Exten", ""), ("Priority", "1"), ("Uniqueid", "1795479242.1"), ("Linkedid", "1795479242.0"), ("Cause", "16"),
    ("Cause-txt", "Normal Clearing"))


def snapshot_item(channel: list[tuple[str, str]], state: str, code: str, connected: tuple[str, str], context: str,
                  exten: str, priority: str, uniqueid: str, app: str, data: str, duration: str, bridge: str
                  ) -> AmiMessage:
    """A ``CoreShowChannel`` item, headers in Asterisk 22's order (25-resync-midcall)."""
    return frame(("Event", "CoreShowChannel"), ("ActionID", "cti-3"), *channel[:1], ("ChannelState", code),
                 ("ChannelStateDesc", state), *channel[1:], ("ConnectedLineNum", connected[0]),
                 ("ConnectedLineName", connected[1]), ("Language", "en"), ("AccountCode", ""), ("Context", context),
                 ("Exten", exten), ("Priority", priority), ("Uniqueid", uniqueid), ("Linkedid", "1795479242.0"),
                 ("Application", app), ("ApplicationData", data), ("Duration", duration), ("BridgeId", bridge))


BRIDGE = "5a8c1e2e-7d0b-4c51-9d36-3f1f0d2b8a11"
#: 103 answered while the daemon was away: both channels up, in one bridge (the PBX at T0 + 6 s).
ANSWERED_SNAPSHOT = [
    snapshot_item(TRUNK, "Up", "6", ("103", "Мария Кузнецова"), "from-trunk", "74950000001", "3", "1795479242.0",
                  "Dial", "PJSIP/103,15,t", "00:00:06", BRIDGE),
    snapshot_item(AGENT, "Up", "6", ("79161234567", "Иванов Пётр"), "from-internal", "", "1", "1795479242.1",
                  "AppDial", "(Outgoing Line)", "00:00:06", BRIDGE),
]


def cti(event: str, at: float) -> AmiMessage:
    return frame(("Event", event), ("PbxTime", f"{at:.6f}"))


def complete(count: int) -> AmiMessage:
    return frame(("Event", "CoreShowChannelsComplete"), ("ActionID", "cti-3"), ("EventList", "Complete"),
                 ("ListItems", str(count)))


class Model:
    """One CallBook, every effect kept; a ``Getvar`` is answered from ``variables`` as the PBX would."""

    def __init__(self) -> None:
        self.book = CallBook(ModelConfig())
        self.effects: list[Effect] = []
        self.variables: dict[str, str] = {}

    def feed(self, *messages: AmiMessage) -> None:
        for msg in messages:
            for effect in self.book.apply(msg):
                self.effects.append(effect)
                if isinstance(effect, VariableWanted) and effect.channel in self.variables:
                    self.feed(frame(("Event", "CtiVariable"), ("Uniqueid", effect.uniqueid),
                                    ("Variable", effect.variable), ("Value", self.variables[effect.channel])))

    def reconnect(self, at: float, items: list[AmiMessage]) -> None:
        self.feed(cti("CtiConnected", at), cti("CtiClock", at), *items, complete(len(items)))

    def record(self) -> CallRecord:
        (ended,) = [e for e in self.effects if isinstance(e, CallEnded)]
        return ended.record


def test_a_call_answered_during_the_outage_is_answered_by_that_agent() -> None:
    """Class 1: 103 rang before the drop and is up, bridged with the caller, at the reconnect: answered by 103."""
    model = Model()
    model.feed(NEWCHANNEL_TRUNK, VARSET_RECORDING, NEWCHANNEL_AGENT, DIALBEGIN, RINGING)
    model.feed(cti("CtiDisconnected", T0 + 1.0))  # DialEnd ANSWER (T0 + 3.0) and the bridge are lost
    model.reconnect(T0 + 6.0, ANSWERED_SNAPSHOT)
    answered = [e for e in model.effects if isinstance(e, CallAnswered)]
    assert [(e.answered_by, e.at) for e in answered] == [("103", T0 + 1.0)], "dated at the outage's start"
    model.feed(HANGUPREQUEST_TRUNK, HANGUP_TRUNK, HANGUP_AGENT)
    record = model.record()
    assert (record.answered, record.answered_by, record.missed_reason, record.outcome) == (True, "103", None,
                                                                                           "answered")
    assert record.agents_rung_not_answered == (), "the agent who answered is never a non-answerer"
    assert record.complete is False
    truth_talk = 1795479255.503006 - 1795479245.584668
    assert truth_talk <= record.talk_seconds <= truth_talk + 5.0
    assert record.recording == RECORDING and record.hung_up_by == "customer"
    ended = model.effects[-1]
    assert isinstance(ended, CallEnded) and ended.missed is None and ended.agent_misses == ()


def test_the_same_call_seen_whole_is_complete() -> None:
    """The reference for the above: no outage, the answer is the DialEnd's, and the row is complete."""
    model = Model()
    dialend = frame(("Event", "DialEnd"), *[(k, v) for k, v in DIALBEGIN.headers if k not in ("Event", "DialString")],
                    ("DialStatus", "ANSWER"))
    model.feed(NEWCHANNEL_TRUNK, VARSET_RECORDING, NEWCHANNEL_AGENT, DIALBEGIN, RINGING, dialend,
               HANGUPREQUEST_TRUNK, HANGUP_TRUNK, HANGUP_AGENT)
    record = model.record()
    assert (record.answered_by, record.complete) == ("103", True)


def test_the_recording_lost_in_the_outage_is_asked_of_the_pbx() -> None:
    """Class 6: the MixMonitor VarSet fell in the outage; the resync asks Getvar on the call's channels."""
    model = Model()
    model.feed(NEWCHANNEL_TRUNK)
    model.feed(cti("CtiDisconnected", T0 + 0.0001))  # the VarSet, the agent's leg and its ring are lost
    model.variables["PJSIP/trunk-00000000"] = f"/var/spool/asterisk/monitor/{RECORDING}"
    ringing = [
        snapshot_item(TRUNK, "Ring", "4", ("<unknown>", "<unknown>"), "from-trunk", "74950000001", "3",
                      "1795479242.0", "Dial", "PJSIP/103,15,t", "00:00:02", ""),
        snapshot_item(AGENT, "Ringing", "5", ("79161234567", "Иванов Пётр"), "from-internal", "74950000001", "1",
                      "1795479242.1", "AppDial", "(Outgoing Line)", "00:00:02", ""),
    ]
    model.reconnect(T0 + 2.0, ringing)
    asked = [e for e in model.effects if isinstance(e, VariableWanted)]
    assert {(e.channel, e.variable) for e in asked} >= {("PJSIP/trunk-00000000", "MIXMONITOR_FILENAME")}
    pops = [e for e in model.effects if isinstance(e, CallRang)]
    assert [(p.agent, p.caller, p.called) for p in pops] == [("103", "79161234567", "74950000001")]
    model.feed(HANGUPREQUEST_TRUNK, HANGUP_TRUNK, HANGUP_AGENT)
    record = model.record()
    assert record.recording == RECORDING and record.complete is False
    assert record.answered is False and record.missed_reason == "caller_hangup_ringing"
    assert record.agents_rung_not_answered == ("103",)


def test_a_call_rebuilt_after_a_restart_is_incomplete_and_reconciled() -> None:
    """Class 8: the journal held the call up to the ring; the daemon died; at the restart 103 is up."""
    journal = [NEWCHANNEL_TRUNK, NEWCHANNEL_AGENT, DIALBEGIN, RINGING]  # the VarSet never reached the journal
    model = Model()
    model.feed(*journal)
    model.feed(cti("CtiDisconnected", model.book.now))  # what Daemon._rebuild appends to the journal
    model.variables["PJSIP/trunk-00000000"] = f"/var/spool/asterisk/monitor/{RECORDING}"
    model.reconnect(T0 + 8.0, ANSWERED_SNAPSHOT)
    model.feed(HANGUPREQUEST_TRUNK, HANGUP_TRUNK, HANGUP_AGENT)
    record = model.record()
    assert record.complete is False, "its channels changed while the daemon was down"
    assert (record.answered_by, record.missed_reason, record.recording) == ("103", None, RECORDING)
    truth_talk = 1795479255.503006 - 1795479245.584668
    assert truth_talk <= record.talk_seconds <= truth_talk + 5.0


def test_a_call_that_ended_during_the_outage_is_ended_by_the_snapshot_once() -> None:
    """The snapshot no longer lists the call's channels: it ended while the daemon was away, journaled once."""
    model = Model()
    model.feed(NEWCHANNEL_TRUNK, VARSET_RECORDING, NEWCHANNEL_AGENT, DIALBEGIN, RINGING)
    model.feed(cti("CtiDisconnected", T0 + 1.0))
    model.reconnect(T0 + 20.0, [])
    model.reconnect(T0 + 21.0, [])  # a second snapshot changes nothing
    record = model.record()
    assert record.complete is False and record.ended_at == T0 + 20.0 and record.recording == RECORDING
    assert not model.book.calls


def test_a_snapshot_applied_twice_changes_nothing() -> None:
    """Two sessions in a row with nothing lost between them: one answer, one call, no second pop."""
    model = Model()
    model.feed(NEWCHANNEL_TRUNK, VARSET_RECORDING, NEWCHANNEL_AGENT, DIALBEGIN, RINGING)
    model.feed(cti("CtiDisconnected", T0 + 1.0))
    model.reconnect(T0 + 6.0, ANSWERED_SNAPSHOT)
    model.feed(cti("CtiDisconnected", T0 + 7.0))
    model.reconnect(T0 + 7.5, ANSWERED_SNAPSHOT)
    assert len([e for e in model.effects if isinstance(e, CallAnswered)]) == 1
    assert len([e for e in model.effects if isinstance(e, CallRang)]) == 1
    model.feed(HANGUPREQUEST_TRUNK, HANGUP_TRUNK, HANGUP_AGENT)
    assert model.record().answered_by == "103"
