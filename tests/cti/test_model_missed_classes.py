"""Calls the shared traces do not hold, whose journal row was wrong (issue 10, classes 2, 3, 4, 5 and 7).

Each test feeds the pure model the frames a real Asterisk 22 sends for the scenario, assembled from the
frames of the shared traces (``../shared/ami-traces``: 04-direct-busy for a phone's 486, 05/08 for a caller's
CANCEL, 08/36 for the queue's ``AgentCalled``/``DialEnd``/``QueueCallerAbandon``, ``pbx-conf/`` for the
ring group 74957654321 and the ``sales`` queue whose member is ``Local/104@agents``): the same headers in
the same order, with ids and times adapted. The point of each: the call's first ``HangupRequest`` belongs
to an agent's phone or a Local member, not the caller, and the reason must still be what the caller lived.

Classes 2, 5 and 7 are built the same way: a click-to-call (16-click-to-call-answered's agent leg) whose
phone never answers, with the failed ``OriginateResponse`` as Asterisk's ``manager.c`` writes it when no
channel came up; an attended transfer (the README's ``Atxfer`` shape: ``Hold`` on the customer, a
``Local/104@transfer`` pair) the customer hangs up on before it completes; a queue caller (08) whose short
abandon is measured from arrival.

How Asterisk 22 shows a refusal depends on who dialled: ``Dial()`` reports the 486 as ``DialStatus: BUSY``
(04-direct-busy); ``Queue()`` reads only the hang-up and reports ``NOANSWER`` (as for the 503 in
36-queue-member-unavailable), the 486 being visible in the member's ``HangupRequest``/``Hangup`` cause 17.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pytest

from asterisk.messages import AmiMessage
from cti.effects import CallEnded
from cti.model import AMI_EVENT_CLASSES, AMI_FILTERS, CallBook, ModelConfig
from cti.records import CallRecord

_STATE_CODES = {"Down": "0", "Ring": "4", "Ringing": "5", "Up": "6"}


@dataclass
class Chan:
    """One channel as its events describe it: the headers every channel event repeats."""

    name: str
    uniqueid: str
    linkedid: str
    num: str
    cid_name: str
    context: str
    exten: str
    state: str = "Down"
    conn_num: str = "<unknown>"
    conn_name: str = "<unknown>"
    priority: str = "1"

    def headers(self, prefix: str = "") -> list[tuple[str, str]]:
        return [(prefix + k, v) for k, v in (
            ("Channel", self.name), ("ChannelState", _STATE_CODES[self.state]), ("ChannelStateDesc", self.state),
            ("CallerIDNum", self.num), ("CallerIDName", self.cid_name), ("ConnectedLineNum", self.conn_num),
            ("ConnectedLineName", self.conn_name), ("Language", "en"), ("AccountCode", ""),
            ("Context", self.context), ("Exten", self.exten), ("Priority", self.priority),
            ("Uniqueid", self.uniqueid), ("Linkedid", self.linkedid))]


class Pbx:
    """Builds the frames in the order the PBX sent them and feeds them to one CallBook."""

    def __init__(self, t0: float, config: ModelConfig | None = None) -> None:
        self.t0 = t0
        self.book = CallBook(config or ModelConfig())
        self.ended: list[CallEnded] = []

    def send(self, at: float, event: str, chan: Chan, *extra: tuple[str, str], dest: Chan | None = None,
             privilege: str = "call,all") -> None:
        pairs = [("Event", event), ("Privilege", privilege), ("Timestamp", f"{self.t0 + at:.6f}"),
                 *chan.headers()]
        if dest is not None:
            pairs.extend(dest.headers("Dest"))
        pairs.extend(extra)
        self._apply(AmiMessage.from_pairs(pairs, received_at=at))

    def send_pairs(self, at: float, event: str, *pairs: tuple[str, str], privilege: str = "call,all") -> None:
        """An event that is not about one source channel (an Originate's dial, OriginateResponse)."""
        self._apply(AmiMessage.from_pairs(
            [("Event", event), ("Privilege", privilege), ("Timestamp", f"{self.t0 + at:.6f}"), *pairs],
            received_at=at))

    def tick(self, at: float) -> None:
        """The daemon's once-a-second ``CtiTick``, dated on the PBX's clock."""
        self._apply(AmiMessage.from_pairs([("Event", "CtiTick"), ("PbxTime", f"{self.t0 + at:.6f}")], received_at=at))

    def _apply(self, msg: AmiMessage) -> None:
        for effect in self.book.apply(msg):
            if isinstance(effect, CallEnded):
                self.ended.append(effect)

    def new_channel(self, at: float, chan: Chan) -> None:
        self.send(at, "Newchannel", chan)

    def new_state(self, at: float, chan: Chan, state: str) -> None:
        chan.state = state
        self.send(at, "Newstate", chan)

    def dial_begin(self, at: float, source: Chan, dest: Chan, dial_string: str) -> None:
        self.send(at, "DialBegin", source, ("DialString", dial_string), dest=dest)

    def dial_end(self, at: float, source: Chan, dest: Chan, status: str) -> None:
        self.send(at, "DialEnd", source, ("DialStatus", status), dest=dest)

    def hangup_request(self, at: float, chan: Chan, cause: str, tech_cause: str | None = None) -> None:
        extra = [("Cause", cause)] + ([("TechCause", tech_cause)] if tech_cause else [])
        self.send(at, "HangupRequest", chan, *extra)

    def soft_hangup_request(self, at: float, chan: Chan, cause: str) -> None:
        self.send(at, "SoftHangupRequest", chan, ("Cause", cause))

    def hangup(self, at: float, chan: Chan, cause: str, text: str, tech_cause: str | None = None) -> None:
        extra = [("Cause", cause), ("Cause-txt", text)] + ([("TechCause", tech_cause)] if tech_cause else [])
        self.send(at, "Hangup", chan, *extra)

    def queue(self, at: float, event: str, chan: Chan, *extra: tuple[str, str], dest: Chan | None = None) -> None:
        self.send(at, event, chan, *extra, dest=dest, privilege="agent,all")

    def record(self) -> CallRecord:
        assert not self.book.calls, f"calls left open: {list(self.book.calls)}"
        (ended,) = self.ended
        return ended.record


# -- class 3: ring group, one phone 486 while another rings ---------------------------------------


def _ring_group_one_busy(caller_leaves_after: float) -> Pbx:
    """DID 74957654321 -> ``Dial(PJSIP/101&PJSIP/102,15,t)``: 101 answers 486 at once, 102 rings, the
    caller hangs up (CANCEL) ``caller_leaves_after`` seconds later."""
    pbx = Pbx(1795481200.0)
    lid = "1795481200.420"
    trunk = Chan("PJSIP/trunk-00000160", lid, lid, "79165550404", "Фролова Ирина", "from-trunk", "74957654321",
                 state="Ring")
    a101 = Chan("PJSIP/101-00000161", "1795481200.421", lid, "101", "Анна Смирнова", "from-internal", "s")
    a102 = Chan("PJSIP/102-00000162", "1795481200.422", lid, "102", "Олег Петров", "from-internal", "s")
    pbx.new_channel(0.000, trunk)
    trunk.priority = "2"
    pbx.new_channel(0.001, a101)
    pbx.new_channel(0.001, a102)
    for agent in (a101, a102):
        agent.conn_num, agent.conn_name, agent.exten = trunk.num, trunk.cid_name, trunk.exten
    pbx.dial_begin(0.002, trunk, a101, "101")
    pbx.dial_begin(0.002, trunk, a102, "102")
    pbx.new_state(0.005, a102, "Ringing")
    # 101's phone refuses: 486 Busy Here (frames as 04-direct-busy's 103).
    pbx.hangup_request(0.006, a101, "17", "486")
    trunk.conn_num, trunk.conn_name = "101", "Анна Смирнова"
    pbx.dial_end(0.007, trunk, a101, "BUSY")
    pbx.hangup(0.007, a101, "17", "User busy", "486")
    # The caller gives up while 102 still rings (frames as 05-caller-hangup-ringing).
    end = 0.005 + caller_leaves_after
    pbx.hangup_request(end, trunk, "19")
    pbx.dial_end(end + 0.001, trunk, a102, "CANCEL")
    pbx.soft_hangup_request(end + 0.001, trunk, "16")
    pbx.hangup(end + 0.001, a102, "19", "User alerting, no answer")
    pbx.hangup(end + 0.003, trunk, "19", "User alerting, no answer")
    return pbx


def test_ring_group_caller_hangs_up_while_a_phone_rings_after_another_was_busy() -> None:
    """101 busy, 102 rang 7.5 s, the caller hung up: not every phone was busy, the caller left while ringing."""
    pbx = _ring_group_one_busy(caller_leaves_after=7.5)
    record = pbx.record()
    assert (record.outcome, record.answered, record.missed_reason) == ("missed", False, "caller_hangup_ringing")
    assert record.hung_up_by == "customer"
    assert pbx.ended[0].missed is not None and pbx.ended[0].missed.reason == "caller_hangup_ringing"
    assert {(m.agent, m.reason) for m in pbx.ended[0].agent_misses} == {("101", "busy"), ("102", "caller_hung_up")}


def test_ring_group_caller_hangs_up_at_once_after_a_busy_phone_is_a_short_abandon() -> None:
    """The same within the short-abandon threshold (1.5 s after the call arrived): a short abandon, not busy."""
    record = _ring_group_one_busy(caller_leaves_after=1.5).record()
    assert (record.outcome, record.missed_reason, record.hung_up_by) == ("missed", "short_abandon", "customer")


# -- class 4: queue caller who hangs up after a member's channel ended with a HangupRequest ---------


def test_queue_caller_who_hangs_up_after_a_member_refused_486_abandoned() -> None:
    """Queue support (ringall 101, 102, 105): 102's phone answers 486, 101 and 105 ring; the caller hangs
    up after 9 s in the queue. The first HangupRequest is 102's; the caller's own one says they abandoned."""
    pbx = Pbx(1795481300.0)
    lid = "1795481300.430"
    trunk = Chan("PJSIP/trunk-00000170", lid, lid, "79035550431", "Белова Ольга", "from-trunk", "74951234567",
                 state="Ring")
    pbx.new_channel(0.000, trunk)
    pbx.new_state(0.001, trunk, "Up")  # Answer() before Queue()
    trunk.priority = "4"
    pbx.send(1.503, "Newexten", trunk, ("Extension", trunk.exten), ("Application", "Queue"),
             ("AppData", "support,t,,,20"), privilege="dialplan,all")
    pbx.queue(1.503, "QueueCallerJoin", trunk, ("Queue", "support"), ("Position", "1"), ("Count", "1"))
    members = []
    for i, (ext, name) in enumerate((("101", "Анна Смирнова"), ("102", "Олег Петров"), ("105", "Елена Попова"))):
        at = 1.504 + i * 0.002
        member = Chan(f"PJSIP/{ext}-0000017{i + 1}", f"1795481301.43{i + 1}", lid, ext, name, "from-internal", "s")
        pbx.new_channel(at, member)
        member.conn_num, member.conn_name, member.exten = trunk.num, trunk.cid_name, trunk.exten
        pbx.queue(at, "AgentCalled", trunk, ("Queue", "support"), ("Interface", f"PJSIP/{ext}"),
                  ("MemberName", name), dest=member)
        pbx.dial_begin(at, trunk, member, ext)
        members.append(member)
    a101, a102, a105 = members
    pbx.new_state(1.511, a101, "Ringing")
    pbx.new_state(1.512, a105, "Ringing")
    # 102 refuses with 486; Queue() sees only the hang-up and says NOANSWER (as for 36's 503).
    pbx.hangup_request(1.512, a102, "17", "486")
    pbx.dial_end(1.513, trunk, a102, "NOANSWER")
    pbx.queue(1.513, "AgentRingNoAnswer", trunk, ("Queue", "support"), ("Interface", "PJSIP/102"),
              ("MemberName", "Олег Петров"), ("RingTime", "0"), dest=a102)
    pbx.hangup(1.513, a102, "17", "User busy", "486")
    # The caller hangs up after 9 s in the queue (frames as 08-queue-abandon).
    pbx.hangup_request(10.503, trunk, "16")
    for _ in range(2):  # ringall losers get their CANCEL twice
        pbx.dial_end(10.504, trunk, a101, "CANCEL")
        pbx.dial_end(10.504, trunk, a105, "CANCEL")
    pbx.queue(10.505, "QueueCallerAbandon", trunk, ("Queue", "support"), ("Position", "1"),
              ("OriginalPosition", "1"), ("HoldTime", "9"))
    pbx.queue(10.505, "QueueCallerLeave", trunk, ("Queue", "support"), ("Position", "1"), ("Count", "0"))
    pbx.soft_hangup_request(10.505, trunk, "16")
    pbx.hangup(10.506, a101, "0", "Unknown")
    pbx.hangup(10.506, a105, "0", "Unknown")
    pbx.hangup(10.507, trunk, "16", "Normal Clearing")
    record = pbx.record()
    assert (record.outcome, record.answered, record.missed_reason) == ("missed", False, "abandoned")
    assert record.hung_up_by == "customer"
    assert record.queue == "support"
    assert set(record.agents_rung_not_answered) == {"101", "102", "105"}
    # Per agent: 102 refused (486 shows only in its hang-up cause), the others rang until the caller left.
    assert {(m.agent, m.reason) for m in pbx.ended[0].agent_misses} == {
        ("101", "caller_hung_up"), ("102", "busy"), ("105", "caller_hung_up")}


def test_queue_caller_who_hangs_up_after_a_local_member_was_torn_down_abandoned() -> None:
    """Queue sales, member ``Local/104@agents``: 104 rings out the 15 s member timeout, the queue tears the
    Local pair down (a HangupRequest on its ``;2`` half), retries 2 s later, and the caller hangs up while
    104 rings again, 23 s after joining."""
    pbx = Pbx(1795481400.0)
    lid = "1795481400.440"
    trunk = Chan("PJSIP/trunk-00000180", lid, lid, "79265550441", "Соловьёв Игорь", "from-trunk", "74959990000",
                 state="Ring")
    pbx.new_channel(0.000, trunk)
    pbx.new_state(0.001, trunk, "Up")
    trunk.priority = "3"
    pbx.send(0.002, "Newexten", trunk, ("Extension", trunk.exten), ("Application", "Queue"),
             ("AppData", "sales,t,,,30"), privilege="dialplan,all")
    pbx.queue(0.002, "QueueCallerJoin", trunk, ("Queue", "sales"), ("Position", "1"), ("Count", "1"))

    def attempt(at: float, seq: int) -> tuple[Chan, Chan, Chan]:
        """One ring of the Local member: the queue dials ``;1``, ``;2`` runs ``[agents]`` Dial(PJSIP/104,,t)."""
        base = f"1795481400.{441 + 3 * seq}"
        local1 = Chan(f"Local/104@agents-0000001{seq};1", base, lid, trunk.num, trunk.cid_name, "agents", "104")
        local2 = Chan(f"Local/104@agents-0000001{seq};2", f"1795481400.{442 + 3 * seq}", lid, trunk.num,
                      trunk.cid_name, "agents", "104")
        phone = Chan(f"PJSIP/104-0000018{seq + 1}", f"1795481400.{443 + 3 * seq}", lid, "104", "Дмитрий Соколов",
                     "from-internal", "s")
        pbx.new_channel(at, local1)
        pbx.new_channel(at, local2)
        pbx.queue(at + 0.001, "AgentCalled", trunk, ("Queue", "sales"), ("Interface", "Local/104@agents"),
                  ("MemberName", "Дмитрий Соколов"), dest=local1)
        pbx.dial_begin(at + 0.001, trunk, local1, "104@agents")
        local2.priority = "2"
        pbx.new_channel(at + 0.002, phone)
        phone.conn_num, phone.conn_name, phone.exten = trunk.num, trunk.cid_name, "104"
        pbx.dial_begin(at + 0.002, local2, phone, "104")
        pbx.new_state(at + 0.005, phone, "Ringing")
        pbx.new_state(at + 0.005, local2, "Ringing")
        pbx.new_state(at + 0.005, local1, "Ringing")
        return local1, local2, phone

    local1, local2, phone = attempt(0.003, 0)
    # Member timeout (15 s): the queue hangs up ;1, which hangs up ;2 (HangupRequest), whose Dial cancels 104.
    pbx.queue(15.004, "AgentRingNoAnswer", trunk, ("Queue", "sales"), ("Interface", "Local/104@agents"),
              ("MemberName", "Дмитрий Соколов"), ("RingTime", "15"), dest=local1)
    pbx.dial_end(15.004, trunk, local1, "NOANSWER")
    pbx.dial_end(15.004, trunk, local1, "CANCEL")
    pbx.hangup_request(15.005, local2, "16")
    pbx.hangup(15.005, local1, "16", "Normal Clearing")
    pbx.dial_end(15.006, local2, phone, "CANCEL")
    pbx.hangup(15.007, phone, "0", "Unknown")
    pbx.hangup(15.007, local2, "16", "Normal Clearing")
    # Retry after 2 s; the caller hangs up while 104 rings again.
    local1, local2, phone = attempt(17.006, 1)
    pbx.hangup_request(23.002, trunk, "16")
    pbx.dial_end(23.003, trunk, local1, "CANCEL")
    pbx.dial_end(23.003, trunk, local1, "CANCEL")
    pbx.queue(23.003, "QueueCallerAbandon", trunk, ("Queue", "sales"), ("Position", "1"),
              ("OriginalPosition", "1"), ("HoldTime", "23"))
    pbx.queue(23.003, "QueueCallerLeave", trunk, ("Queue", "sales"), ("Position", "1"), ("Count", "0"))
    pbx.soft_hangup_request(23.003, trunk, "16")
    pbx.hangup_request(23.004, local2, "16")
    pbx.hangup(23.004, local1, "16", "Normal Clearing")
    pbx.dial_end(23.005, local2, phone, "CANCEL")
    pbx.hangup(23.006, phone, "0", "Unknown")
    pbx.hangup(23.006, local2, "16", "Normal Clearing")
    pbx.hangup(23.007, trunk, "16", "Normal Clearing")
    record = pbx.record()
    assert (record.outcome, record.answered, record.missed_reason) == ("missed", False, "abandoned")
    assert record.hung_up_by == "customer"
    assert (record.queue, record.agents_rung_not_answered) == ("sales", ("104",))


# -- class 2: click-to-call whose agent's phone never answers, Originate sent by any AMI client -----


def _click_to_call_never_answered(response_first: bool) -> Pbx:
    """A CRM's AMI ``Originate Channel=PJSIP/102 Context=from-internal Exten=89161230099``: 102's phone rings
    20 s (the Originate's timeout) and is never picked up. The failed ``OriginateResponse`` names only the
    endpoint (``Channel: PJSIP/102``, ``Uniqueid: <unknown>``) and the CRM's own ActionID; Asterisk usually
    sends it about 1 ms *before* the leg's ``Hangup``. Frames as 16-click-to-call-answered's first leg (the
    ``DialBegin``/``DialEnd`` of an Originate have no source channel)."""
    pbx = Pbx(1795481500.0)
    uid = "1795481500.450"
    phone = Chan("PJSIP/102-000001a0", uid, uid, "102", "Олег Петров", "from-internal", "s")
    pbx.new_channel(0.000, phone)
    phone.conn_num, phone.conn_name = "102", "Олег Петров"
    pbx.send_pairs(0.002, "DialBegin", *phone.headers("Dest"), ("DialString", "102"))
    pbx.new_state(0.008, phone, "Ringing")
    pbx.send_pairs(20.003, "DialEnd", *phone.headers("Dest"), ("DialStatus", "NOANSWER"))
    response = [("ActionID", "crm-7781"), ("Response", "Failure"), ("Channel", "PJSIP/102"),
                ("Context", "from-internal"), ("Exten", "89161230099"), ("Reason", "3"), ("Uniqueid", "<unknown>"),
                ("CallerIDNum", "102"), ("CallerIDName", "Олег Петров")]
    if response_first:
        pbx.send_pairs(20.004, "OriginateResponse", *response)
    pbx.hangup(20.005, phone, "19", "User alerting, no answer")
    if not response_first:
        pbx.send_pairs(20.006, "OriginateResponse", *response)
    # The daemon's once-a-second tick: a record still waiting for its number is journaled without it.
    pbx.tick(30.0)
    return pbx


@pytest.mark.parametrize("response_first", [True, False], ids=["response-before-hangup", "response-after-hangup"])
def test_click_to_call_the_agents_phone_never_answered_keeps_the_dialled_number(response_first: bool) -> None:
    """The number the CRM dialled is only in the failed OriginateResponse's ``Exten``; it is kept whichever
    way round the response and the leg's Hangup arrive."""
    pbx = _click_to_call_never_answered(response_first)
    record = pbx.record()
    assert (record.direction, record.caller, record.called) == ("outbound", "102", "89161230099")
    assert (record.outcome, record.answered, record.missed_reason) == ("failed", False, "unavailable")
    assert record.agents_rung_not_answered == ()  # 102's own phone rang for its own call: not a miss
    assert pbx.ended[0].missed is None  # an outbound attempt is not in the centre's register
    assert abs(record.ended_at - (pbx.t0 + 20.005)) < 1e-6  # journaled with the leg's end, not the tick's


def test_failed_originate_response_passes_the_daemons_ami_filters() -> None:
    """The event reaches the daemon at all: its class (``call``) is asked for at login and an include
    filter matches it, tested as Asterisk applies ``eventfilter`` (a regex search over the event's text)."""
    text = ("Event: OriginateResponse\r\nPrivilege: call,all\r\nActionID: crm-7781\r\nResponse: Failure\r\n"
            "Channel: PJSIP/102\r\nContext: from-internal\r\nExten: 89161230099\r\nReason: 3\r\n"
            "Uniqueid: <unknown>\r\nCallerIDNum: 102\r\nCallerIDName: Олег Петров\r\n")
    assert "call" in AMI_EVENT_CLASSES.split(",")
    assert any(re.search(f, text) for f in AMI_FILTERS)


# -- class 5: attended transfer the customer hung up on before it completed --------------------------


def _atxfer_consultation(completed: bool) -> Pbx:
    """DID 74950000101 direct to 101 (frames as 13-blind-transfer-redirect); 101 answers, then an AMI
    ``Atxfer`` to 104@transfer puts the customer on hold (``Hold`` as in 21-hold-resume) and dials a
    ``Local/104@transfer`` pair whose ``;2`` half rings 104, who answers the consultation.

    ``completed``: 101 hangs up, which completes the transfer (``atxferdropcall = no``): ``AttendedTransfer``,
    the customer talks to 104. Otherwise the customer hangs up while on hold; the transfer fails (no
    ``AttendedTransfer``, no ``BridgeMerge``, no ATTENDEDTRANSFER in CEL), 101 and 104 finish their talk."""
    pbx = Pbx(1795481600.0)
    lid = "1795481600.460"
    trunk = Chan("PJSIP/trunk-000001b0", lid, lid, "79161230460", "Орлов Павел", "from-trunk", "74950000101",
                 state="Ring")
    a101 = Chan("PJSIP/101-000001b1", "1795481600.461", lid, "101", "Анна Смирнова", "from-internal", "s")
    pbx.new_channel(0.000, trunk)
    trunk.priority = "3"
    pbx.new_channel(0.002, a101)
    a101.conn_num, a101.conn_name, a101.exten = trunk.num, trunk.cid_name, trunk.exten
    pbx.dial_begin(0.003, trunk, a101, "101")
    pbx.new_state(0.009, a101, "Ringing")
    trunk.state = "Ringing"
    pbx.new_state(2.010, a101, "Up")
    pbx.new_state(2.011, trunk, "Up")
    trunk.conn_num, trunk.conn_name = "101", "Анна Смирнова"
    pbx.dial_end(2.011, trunk, a101, "ANSWER")
    # Atxfer 104: the customer is put on hold and 101's channel calls Local/104@transfer.
    pbx.send(8.100, "Hold", trunk, ("MusicClass", "default"))
    local1 = Chan("Local/104@transfer-00000005;1", "1795481608.462", lid, "101", "Анна Смирнова", "transfer", "104")
    local2 = Chan("Local/104@transfer-00000005;2", "1795481608.463", lid, "101", "Анна Смирнова", "transfer", "104",
                  state="Ring")
    a104 = Chan("PJSIP/104-000001b2", "1795481608.464", lid, "104", "Дмитрий Соколов", "from-internal", "s")
    pbx.new_channel(8.101, local1)
    pbx.new_channel(8.101, local2)
    pbx.new_channel(8.103, a104)
    a104.conn_num, a104.conn_name, a104.exten = "101", "Анна Смирнова", "104"
    local2.priority = "2"
    pbx.dial_begin(8.103, local2, a104, "PJSIP/104")
    pbx.new_state(8.110, a104, "Ringing")
    pbx.new_state(8.110, local2, "Ringing")
    pbx.new_state(8.110, local1, "Ringing")
    pbx.new_state(11.112, a104, "Up")
    pbx.dial_end(11.113, local2, a104, "ANSWER")
    pbx.new_state(11.113, local2, "Up")
    pbx.new_state(11.113, local1, "Up")
    if completed:
        pbx.send(16.000, "AttendedTransfer", a101, ("Result", "Success"),
                 *[(k, v) for k, v in a101.headers("OrigTransferer")],
                 *[(k, v) for k, v in a101.headers("SecondTransferer")], ("SecondTransfererConnectedLineNum", "104"),
                 *[(k, v) for k, v in trunk.headers("Transferee")],
                 *[(k, v) for k, v in local1.headers("TransferTarget")], ("DestType", "Link"))
        pbx.hangup(16.001, a101, "16", "Normal Clearing")
        pbx.hangup(16.002, local1, "16", "Normal Clearing")
        pbx.hangup(16.002, local2, "16", "Normal Clearing")
        pbx.hangup_request(30.000, a104, "16")
        pbx.hangup(30.001, a104, "16", "Normal Clearing")
        pbx.hangup(30.002, trunk, "16", "Normal Clearing")
    else:
        # The customer, listening to the hold music, hangs up (BYE) before 101 completes the transfer.
        pbx.hangup_request(13.500, trunk, "16")
        pbx.hangup(13.501, trunk, "16", "Normal Clearing")
        # 101 and 104 finish their own talk; 104 hangs up.
        pbx.hangup_request(25.000, a104, "16")
        pbx.hangup(25.001, a104, "16", "Normal Clearing")
        pbx.hangup(25.002, local2, "16", "Normal Clearing")
        pbx.hangup(25.002, local1, "16", "Normal Clearing")
        pbx.hangup(25.003, a101, "16", "Normal Clearing")
    return pbx


def test_attended_transfer_the_customer_hung_up_on_hold_before_it_completed_is_not_a_transfer() -> None:
    """104 took the consultation, but the customer left while on hold: the call was answered by 101 and never
    transferred (the customer never talked to 104)."""
    record = _atxfer_consultation(completed=False).record()
    assert (record.outcome, record.answered, record.answered_by) == ("answered", True, "101")
    assert record.transferred_to is None
    assert record.missed_reason is None
    assert record.hung_up_by == "customer"


def test_attended_transfer_completed_names_the_target() -> None:
    """The same consultation completed (AttendedTransfer): transferred to 104, answered by 101."""
    record = _atxfer_consultation(completed=True).record()
    assert (record.outcome, record.answered_by, record.transferred_to) == ("answered", "101", "104")


# -- class 7: a short abandon is measured from the call's arrival at the PBX --------------------------


def _queue_caller_hangs_up(hangs_up_at: float, ring_at: float | None, config: ModelConfig | None = None) -> Pbx:
    """DID 74951234567 -> ``Answer, Wait(1), Queue(support,t,,,20)`` (frames as 08-queue-abandon): the caller
    joins at position 2 behind a caller being served; ``ring_at`` (s after arrival) the queue offers the call
    to 105, whose phone rings; ``hangs_up_at`` the caller hangs up (BYE) while waiting."""
    pbx = Pbx(1795481700.0, config)
    lid = "1795481700.470"
    trunk = Chan("PJSIP/trunk-000001c0", lid, lid, "79035550470", "Зайцева Нина", "from-trunk", "74951234567",
                 state="Ring")
    pbx.new_channel(0.000, trunk)
    pbx.new_state(0.001, trunk, "Up")  # Answer() before Queue()
    trunk.priority = "3"
    pbx.send(1.003, "Newexten", trunk, ("Extension", trunk.exten), ("Application", "Queue"),
             ("AppData", "support,t,,,20"), privilege="dialplan,all")
    pbx.queue(1.003, "QueueCallerJoin", trunk, ("Queue", "support"), ("Position", "2"), ("Count", "2"))
    a105 = None
    if ring_at is not None:
        a105 = Chan("PJSIP/105-000001c1", "1795481700.471", lid, "105", "Елена Попова", "from-internal", "s")
        pbx.new_channel(ring_at, a105)
        a105.conn_num, a105.conn_name, a105.exten = trunk.num, trunk.cid_name, trunk.exten
        pbx.queue(ring_at, "AgentCalled", trunk, ("Queue", "support"), ("Interface", "PJSIP/105"),
                  ("MemberName", "Елена Попова"), dest=a105)
        pbx.dial_begin(ring_at, trunk, a105, "105")
        pbx.new_state(ring_at + 0.007, a105, "Ringing")
    pbx.hangup_request(hangs_up_at, trunk, "16")
    if a105 is not None:
        for _ in range(2):
            pbx.dial_end(hangs_up_at + 0.001, trunk, a105, "CANCEL")
    pbx.queue(hangs_up_at + 0.002, "QueueCallerAbandon", trunk, ("Queue", "support"), ("Position", "1"),
              ("OriginalPosition", "2"), ("HoldTime", str(int(hangs_up_at - 1.003))))
    pbx.queue(hangs_up_at + 0.002, "QueueCallerLeave", trunk, ("Queue", "support"), ("Position", "1"),
              ("Count", "1"))
    pbx.soft_hangup_request(hangs_up_at + 0.002, trunk, "16")
    if a105 is not None:
        pbx.hangup(hangs_up_at + 0.003, a105, "0", "Unknown")
    pbx.hangup(hangs_up_at + 0.004, trunk, "16", "Normal Clearing")
    return pbx


def test_queue_caller_who_waited_15_s_is_not_a_short_abandon_though_a_phone_rang_only_2_s() -> None:
    """15 s after arriving, 2 s after 105's phone began to ring: the caller waited, so abandoned, and shown in
    the default register listing."""
    pbx = _queue_caller_hangs_up(hangs_up_at=15.0, ring_at=13.0)
    record = pbx.record()
    assert (record.outcome, record.missed_reason) == ("missed", "abandoned")
    assert pbx.ended[0].missed is not None and pbx.ended[0].missed.reason == "abandoned"
    assert [(m.agent, m.reason) for m in pbx.ended[0].agent_misses] == [("105", "caller_hung_up")]


def test_queue_caller_at_position_2_who_hangs_up_after_2_s_is_a_short_abandon() -> None:
    """No phone rang at all: a hang-up 2 s after arrival is a short abandon."""
    record = _queue_caller_hangs_up(hangs_up_at=2.0, ring_at=None).record()
    assert (record.outcome, record.missed_reason, record.agents_rung_not_answered) == ("missed", "short_abandon", ())


def test_short_abandon_threshold_is_the_setting() -> None:
    """The threshold is ``[pbx] short_abandon_seconds``: with 20 s, the caller who left after 15 s is one."""
    config = ModelConfig(short_abandon_seconds=20.0)
    record = _queue_caller_hangs_up(hangs_up_at=15.0, ring_at=13.0, config=config).record()
    assert record.missed_reason == "short_abandon"


# -- outbound busy whose DialEnd fell in an outage ---------------------------------------------------


@pytest.mark.parametrize("dial_end_seen", [True, False], ids=["dial-end-seen", "dial-end-lost"])
def test_outbound_call_the_remote_end_refused_486_is_busy_without_its_dial_end(dial_end_seen: bool) -> None:
    """102 calls out (frames as 27-click-to-call-busy); the remote end answers 486. The trunk leg's ``DialEnd``
    says ``BUSY``; when that one event is lost (it fell in an AMI outage), the trunk's ``Hangup`` cause 17
    (user busy) still tells: ``busy``, not ``no_answer``."""
    pbx = Pbx(1795480263.0)
    lid = "1795480263.316"
    phone = Chan("PJSIP/102-00000130", lid, lid, "102", "Олег Петров", "from-internal", "89035550027", state="Ring")
    trunk = Chan("PJSIP/trunk-00000131", "1795480263.317", lid, "89035550027", "Олег Петров", "from-internal",
                 "s")
    pbx.new_channel(0.000, phone)
    pbx.new_channel(0.002, trunk)
    trunk.conn_num, trunk.conn_name = "102", "Олег Петров"
    pbx.dial_begin(0.003, phone, trunk, "trunk/89035550027")
    if dial_end_seen:
        pbx.dial_end(1.510, phone, trunk, "BUSY")
    pbx.hangup(1.512, trunk, "17", "User busy")
    pbx.soft_hangup_request(1.513, phone, "17")
    pbx.hangup(1.514, phone, "17", "User busy")
    record = pbx.record()
    assert (record.direction, record.caller, record.called) == ("outbound", "102", "89035550027")
    assert (record.outcome, record.answered, record.missed_reason) == ("failed", False, "busy")
