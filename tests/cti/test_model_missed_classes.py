"""Why an unanswered call was missed, for calls the shared traces do not hold (issue 10, classes 3 and 4).

Each test feeds the pure model the frames a real Asterisk 22 sends for the scenario, assembled from the
frames of the shared traces (``../shared/ami-traces``: 04-direct-busy for a phone's 486, 05/08 for a caller's
CANCEL, 08/36 for the queue's ``AgentCalled``/``DialEnd``/``QueueCallerAbandon``, ``pbx-conf/`` for the
ring group 74957654321 and the ``sales`` queue whose member is ``Local/104@agents``): the same headers in
the same order, with ids and times adapted. The point of each: the call's first ``HangupRequest`` belongs
to an agent's phone or a Local member, not the caller, and the reason must still be what the caller lived.

How Asterisk 22 shows a refusal depends on who dialled: ``Dial()`` reports the 486 as ``DialStatus: BUSY``
(04-direct-busy); ``Queue()`` reads only the hang-up and reports ``NOANSWER`` (as for the 503 in
36-queue-member-unavailable), the 486 being visible in the member's ``HangupRequest``/``Hangup`` cause 17.
"""

from __future__ import annotations

from dataclasses import dataclass

from asterisk.messages import AmiMessage
from cti.effects import CallEnded
from cti.model import CallBook, ModelConfig
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

    def __init__(self, t0: float) -> None:
        self.t0 = t0
        self.book = CallBook(ModelConfig())
        self.ended: list[CallEnded] = []

    def send(self, at: float, event: str, chan: Chan, *extra: tuple[str, str], dest: Chan | None = None,
             privilege: str = "call,all") -> None:
        pairs = [("Event", event), ("Privilege", privilege), ("Timestamp", f"{self.t0 + at:.6f}"),
                 *chan.headers()]
        if dest is not None:
            pairs.extend(dest.headers("Dest"))
        pairs.extend(extra)
        for effect in self.book.apply(AmiMessage.from_pairs(pairs, received_at=at)):
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
    """The same within the short-abandon threshold (1.5 s of ringing): a short abandon, not busy."""
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
