"""The live replay (``cti demo``): call control answered with the events a real Asterisk 22 sends for it.

A recorded trace cannot know that someone pauses an agent or transfers its call while it is replayed, so a plain
replay answers those actions ``Success`` and changes nothing: the panel's buttons seem dead. With ``live`` the
replay PBX answers them as the lab's PBX did when the recording runner sent them:

* ``QueuePause`` (32-queue-paused-member): per queue of the member, ``DeviceStateChange`` of
  ``Queue:<queue>_pause_<interface>`` then ``QueueMemberPause`` with every field of the member; ``Interface not
  found`` for an interface no queue has.
* ``Redirect`` of the customer's channel (13-blind-transfer-redirect, 35-blind-transfer-external): the customer's
  ``Newexten`` into the target's context, both parties leave the agent's bridge and the agent's leg hangs up, then
  the new leg (``Newchannel``, ``Newexten`` ``AppDial``, ``NewConnectedLine``, ``DialBegin``, ``Newstate``
  *Ringing*, ``DialState``) on the call's linkedid: ``PJSIP/<ext>`` for an extension, ``PJSIP/trunk`` for an
  outside number (context ``outbound`` or more than four digits). The target answers two recorded seconds later
  (``Newstate`` *Up*, ``DialEnd`` ``ANSWER``, ``BridgeCreate``, ``BridgeEnter`` of both), unless its extension is in
  :attr:`LiveCalls.unanswered` (the lab's ring-forever phone): then the dial times out after the transfer context's
  15 s (``Dial(PJSIP/${EXTEN},15,t)``) as in 15-blind-transfer-noanswer: ``DialEnd`` ``NOANSWER``, the dialplan's
  ``Hangup()`` (``Newexten``, ``SoftHangupRequest`` cause 16), the target's ``Hangup`` (cause 0, *Unknown*, still
  *Ringing*) and the customer's (cause 16).
* ``BlindTransfer`` of the agent's channel (15-blind-transfer-noanswer): the ``BlindTransfer`` event, then as a
  ``Redirect`` of the agent's bridge peer.
* ``Atxfer`` of the agent's channel: the agent dials the target (the consultation, simplified: no ``Local``
  pair, no music on hold), and when the target answers the transfer completes at once: the ``AttendedTransfer``
  event, the agent's leg hangs up, the customer and the target are bridged. A target in ``unanswered`` rings out
  after ``atxfernoanswertimeout`` (15 s, ``features.conf``): ``DialEnd`` ``NOANSWER`` and its ``Hangup`` (cause 0);
  the agent, never out of the customer's bridge, goes on talking (``atxferdropcall = no``).

From then on the call belongs to the live world: the trace's remaining events of that call (its linkedid, the
agent's leg, the old bridge) are not served, except the customer's own ``Hangup``, which still decides when the
customer leaves; the new leg is hung up right before it (``DialEnd`` ``CANCEL`` if it still rang). Every other
call is served as recorded. Synthesized events carry the PBX's clock and ids no trace uses.

Pure bookkeeping over :class:`~asterisk.replay.state.PbxState`: no I/O and no clock (times come in as arguments).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from asterisk.messages import AmiMessage, Headers

from .actions import arg
from .state import SNAPSHOT_KEYS, PbxState

#: Actions (lower case) a live replay answers with events.
LIVE_ACTIONS = frozenset({"queuepause", "redirect", "blindtransfer", "atxfer"})
#: Recorded seconds a transfer target's phone rings before it answers.
ANSWER_AFTER = 2.0
#: Recorded seconds an unanswered transfer target rings before the dial gives up: the lab's transfer context dials an
#: extension for 15 s (``Dial(PJSIP/${EXTEN},15,t)``), ``atxfernoanswertimeout = 15``, the outbound route 30 s.
RING_OUT_AFTER = 15.0
RING_OUT_OUTSIDE_AFTER = 30.0
#: Where the live world's ids start: above every sequence number and channel number of the lab's recordings.
_FIRST_SEQUENCE = 1_000_000
_FIRST_CHANNEL = 0x00100000
_TRUE = ("1", "yes", "true", "on", "y", "t")
_BRIDGE_KEYS = ("BridgeType", "basic"), ("BridgeTechnology", "simple_bridge"), ("BridgeCreator", "<unknown>"), (
    "BridgeName", "<unknown>")
_AGENT_CHANNEL = re.compile(r"^PJSIP/(\d+)-[0-9a-f]+$")
#: The lab's context for outside numbers (``Redirect`` to ``outbound,8916…``: 35-blind-transfer-external).
_OUTSIDE_CONTEXT = "outbound"
_MAX_EXTENSION_DIGITS = 4


@dataclass(frozen=True, slots=True)
class LiveAnswer:
    """What the PBX answers an action: its ``Response`` and the events that follow it."""

    ok: bool
    message: str
    events: list[AmiMessage] = field(default_factory=list)


@dataclass(slots=True)
class _Leg:
    """A transfer's new leg, and the call it belongs to."""

    uniqueid: str
    fields: dict[str, str]
    transferee: str  # the customer's uniqueid
    dialer: str  # the uniqueid whose DialBegin named it (the customer; the agent for Atxfer)
    dial_string: str
    attended_by: str = ""  # Atxfer: the agent's uniqueid, hung up when the target answers
    bridge: str = ""
    answered: bool = False
    rings_out: bool = False  # the target never answers: the dial times out
    rang_out: bool = False  # it did: an attended transfer's call is the agent's and the customer's again


class LiveCalls:
    """Answers ``LIVE_ACTIONS`` with synthesized events and keeps the trace from contradicting them."""

    def __init__(self, state: PbxState) -> None:
        self.state = state
        self._sequence = _FIRST_SEQUENCE
        self._channel_number = _FIRST_CHANNEL
        self._bridges = 0
        self._t = 0.0
        self._legs: dict[str, _Leg] = {}
        #: Linkedids the live world took over, uniqueids it hung up, bridges it destroyed.
        self._taken: set[str] = set()
        self._gone: set[str] = set()
        self._dead_bridges: set[str] = set()
        self._scheduled: list[tuple[float, str]] = []
        #: Extension → the name its phone presents, learnt from the served events.
        self._names: dict[str, str] = {}
        #: Extensions whose phone rings and is never picked up (the lab SIM's ring-forever phone), and outside numbers
        #: that never answer: a transfer to one rings out (set by whoever runs the replay: a test, a demo).
        self.unanswered: set[str] = set()

    # -- the trace's events

    def on_trace_event(self, msg: AmiMessage, now: float) -> list[AmiMessage]:
        """What to serve for one recorded event: itself, nothing (the live world ended that), or the live legs'
        hang-ups and then itself (the customer leaves)."""
        if msg.event == "Newchannel" and (m := _AGENT_CHANNEL.match(msg.get("Channel"))) and m[1] == msg.get(
                "CallerIDNum"):
            self._names[m[1]] = msg.get("CallerIDName")
        if not self._taken and not self._gone:
            return [msg]
        uniqueid = msg.get("Uniqueid")
        if uniqueid in self._gone or msg.get("BridgeUniqueid") in self._dead_bridges:
            return []
        if msg.get("Linkedid") not in self._taken:
            return [msg]
        if msg.event == "Hangup" and any(leg.transferee == uniqueid for leg in self._legs.values()):
            return [*self._end_legs(uniqueid, msg, now), msg]
        return []

    def _end_legs(self, transferee: str, hangup: AmiMessage, now: float) -> list[AmiMessage]:
        out: list[AmiMessage] = []
        customer = {k: hangup.get(k) for k in SNAPSHOT_KEYS}
        for key, leg in list(self._legs.items()):
            if leg.transferee != transferee:
                continue
            del self._legs[key]
            self._gone.add(leg.uniqueid)
            if leg.rang_out:
                chan = self.state.channels.get(transferee)
                if chan is not None and chan.bridge_id:  # the agent talked on after the consultation: ends with it
                    out += self._leave_bridge(chan.bridge_id, customer, now)
            elif leg.answered:
                out += [self._bridge_event("BridgeLeave", now, leg.bridge, 1, customer),
                        self._bridge_event("BridgeLeave", now, leg.bridge, 0, leg.fields),
                        self._event("BridgeDestroy", now, ("BridgeUniqueid", leg.bridge), *_BRIDGE_KEYS,
                                    ("BridgeNumChannels", "0"), ("BridgeVideoSourceMode", "none")),
                        self._channel_event("Hangup", now, leg.fields, ("Cause", "16"),
                                            ("Cause-txt", "Normal Clearing"))]
            else:
                dialer = self._fields_of(leg.dialer) or customer
                out += [self._dial_event("DialEnd", now, dialer, leg, ("DialStatus", "CANCEL")),
                        self._channel_event("Hangup", now, leg.fields, ("Cause", "19"),
                                            ("Cause-txt", "User alerting, no answer"))]
                chan = self.state.channels.get(transferee)
                if leg.attended_by and chan is not None and chan.bridge_id:
                    # The customer hung up while the agent consulted: the agent's leg ends with the call.
                    out += self._leave_bridge(chan.bridge_id, customer, now)
        return out

    # -- actions

    def act(self, msg: AmiMessage, now: float) -> LiveAnswer:
        """Answer one of :data:`LIVE_ACTIONS`."""
        self._t = max(self._t, now)
        name = arg(msg, "Action").lower()
        if name == "queuepause":
            return self._pause(msg, now)
        channel = self._channel(arg(msg, "Channel"))
        if channel is None:
            return LiveAnswer(False, "No such channel" if name != "redirect" else "Channel specified does not exist")
        exten, context = arg(msg, "Exten"), arg(msg, "Context")
        if not exten:
            return LiveAnswer(False, "Exten not specified" if name != "redirect" else "Exten not set")
        if name == "redirect":
            return LiveAnswer(True, "Redirect successful", self._redirect(channel, context, exten, now))
        peer = self._bridge_peer(channel)
        if peer is None:
            return LiveAnswer(False, "Transfer failed" if name == "blindtransfer" else "Channel is not bridged")
        if name == "blindtransfer":
            event = self._event("BlindTransfer", now, ("Result", "Success"),
                                *_snapshot(self._fields_of(channel) or {}, "Transferer"),
                                *_snapshot(self._fields_of(peer) or {}, "Transferee"),
                                *self._bridge_pairs(self.state.channels[channel].bridge_id, 2),
                                ("IsExternal", "Yes"), ("Context", context or "transfer"), ("Extension", exten))
            return LiveAnswer(True, "Transfer succeeded", [event, *self._redirect(peer, context, exten, now)])
        return LiveAnswer(True, "Atxfer successfully queued", self._consult(channel, peer, exten, context, now))

    def _pause(self, msg: AmiMessage, now: float) -> LiveAnswer:
        interface, queue = arg(msg, "Interface"), arg(msg, "Queue")
        if not interface:
            return LiveAnswer(False, "Need 'Interface' and 'Paused' parameters.")
        paused = arg(msg, "Paused").lower() in _TRUE
        members = [(q, loc) for q, loc in self.state.members if loc == interface and (not queue or q == queue)]
        if not members:
            return LiveAnswer(False, "Interface not found")
        events: list[AmiMessage] = []
        for q, loc in members:
            member = dict(self.state.members[(q, loc)])
            member["Paused"] = "1" if paused else "0"
            member["PausedReason"] = arg(msg, "Reason") if paused else ""
            if paused:
                member["LastPause"] = str(int(now))
            events.append(self._event("DeviceStateChange", now, ("Device", f"Queue:{q}_pause_{loc}"),
                                      ("State", "INUSE" if paused else "NOT_INUSE")))
            events.append(self._event(
                "QueueMemberPause", now, ("Queue", q), ("MemberName", member.get("Name", "")),
                *((key, member.get(src, "")) for key, src in _PAUSE_KEYS), ("Ringinuse", "0"),
                ("Wrapuptime", member.get("Wrapuptime", "0") or "0"), privilege="agent,all"))
        return LiveAnswer(True, "Interface paused successfully" if paused else "Interface unpaused successfully",
                          events)

    def _redirect(self, customer: str, context: str, exten: str, now: float) -> list[AmiMessage]:
        """The customer's channel leaves its bridge for ``context,exten``; the agent's leg hangs up; the new leg."""
        fields = dict(self._fields_of(customer) or {})
        linkedid = fields.get("Linkedid", "")
        outside = _is_outside(context, exten)
        app_data = f"PJSIP/{exten}@trunk,30,T" if outside else f"PJSIP/{exten},15,t"
        fields.update(Context=context or "transfer", Exten=exten, Priority="1")
        out = [self._channel_event("Newexten", now, fields, ("Extension", exten), ("Application", "Dial"),
                                   ("AppData", app_data), privilege="dialplan,all")]
        bridge = self.state.channels[customer].bridge_id
        if bridge:
            out += self._leave_bridge(bridge, fields, now)
        self._taken.add(linkedid)
        _, created = self._new_leg(fields, exten, outside, customer, customer, now)
        return [*out, *created]

    def _consult(self, agent: str, customer: str, exten: str, context: str, now: float) -> list[AmiMessage]:
        """Atxfer: the agent's channel dials the target; the transfer completes when it answers."""
        agent_fields = dict(self._fields_of(agent) or {})
        self._taken.add(agent_fields.get("Linkedid", ""))
        leg, created = self._new_leg(agent_fields, exten, _is_outside(context, exten), customer, agent, now)
        leg.attended_by = agent
        return created

    def _leave_bridge(self, bridge: str, customer: dict[str, str], now: float) -> list[AmiMessage]:
        """Everyone leaves ``bridge``: the customer first, then each agent's leg, which hangs up."""
        others = [uid for uid, c in self.state.channels.items()
                  if c.bridge_id == bridge and uid != customer.get("Uniqueid")]
        out = [self._bridge_event("BridgeLeave", now, bridge, len(others), customer)]
        for n, uid in enumerate(others, 1):
            out.append(self._bridge_event("BridgeLeave", now, bridge, len(others) - n, self.state.channels[uid].fields))
        out.append(self._event("BridgeDestroy", now, ("BridgeUniqueid", bridge), *_BRIDGE_KEYS,
                               ("BridgeNumChannels", "0"), ("BridgeVideoSourceMode", "none")))
        for uid in others:
            out.append(self._channel_event("Hangup", now, self.state.channels[uid].fields, ("Cause", "16"),
                                           ("Cause-txt", "Normal Clearing")))
            self._gone.add(uid)
        self._dead_bridges.add(bridge)
        return out

    def _new_leg(self, dialer: dict[str, str], exten: str, outside: bool, transferee: str, dialer_uid: str,
                 now: float) -> tuple[_Leg, list[AmiMessage]]:
        """The target's channel on the call's linkedid, dialled by ``dialer`` and ringing."""
        self._channel_number += 1
        self._sequence += 1
        uniqueid = f"{int(now)}.{self._sequence}"
        device = "trunk" if outside else exten
        name = "<unknown>" if outside else self._name_of(exten)
        leg_fields = {
            "Channel": f"PJSIP/{device}-{self._channel_number:08x}", "ChannelState": "0", "ChannelStateDesc": "Down",
            "CallerIDNum": "<unknown>" if outside else exten, "CallerIDName": name,
            "ConnectedLineNum": "<unknown>", "ConnectedLineName": "<unknown>", "Language": "en", "AccountCode": "",
            "Context": "from-trunk" if outside else "from-internal", "Exten": "s", "Priority": "1",
            "Uniqueid": uniqueid, "Linkedid": dialer.get("Linkedid", "")}
        leg = _Leg(uniqueid, leg_fields, transferee, dialer_uid, f"{exten}@trunk" if outside else exten,
                   rings_out=exten in self.unanswered)
        self._legs[uniqueid] = leg
        out = [self._channel_event("Newchannel", now, leg_fields)]
        leg_fields.update(Exten=exten, ConnectedLineNum=dialer.get("CallerIDNum", ""),
                          ConnectedLineName=dialer.get("CallerIDName", ""))
        if outside:
            leg_fields["CallerIDNum"] = exten
        out.append(self._channel_event("Newexten", now, leg_fields, ("Extension", exten), ("Application", "AppDial"),
                                       ("AppData", "(Outgoing Line)"), privilege="dialplan,all"))
        if outside:
            out.append(self._channel_event("NewCallerid", now, leg_fields, ("CID-CallingPres", "0 (Presentation "
                                                                             "Allowed, Not Screened)")))
        out.append(self._channel_event("NewConnectedLine", now, leg_fields))
        out.append(self._dial_event("DialBegin", now, dialer, leg, ("DialString", leg.dial_string)))
        dialer.update(ConnectedLineNum=exten, ConnectedLineName=name if not outside else "<unknown>")
        out.append(self._channel_event("NewConnectedLine", now, dialer))
        leg_fields.update(ChannelState="5", ChannelStateDesc="Ringing")
        out.append(self._channel_event("Newstate", now, leg_fields))
        out.append(self._dial_event("DialState", now, dialer, leg, ("DialStatus", "RINGING")))
        ring_out = RING_OUT_OUTSIDE_AFTER if outside else RING_OUT_AFTER
        self._scheduled.append((ring_out if leg.rings_out else ANSWER_AFTER, uniqueid))
        return leg, out

    def take_scheduled(self) -> list[tuple[float, str]]:
        """The legs to :meth:`answer`, each after its delay in recorded seconds, set going since the last call (the
        delay is the ring before the answer, or the dial's timeout for a target that never answers)."""
        out, self._scheduled = self._scheduled, []
        return out

    def answer(self, uniqueid: str, now: float) -> list[AmiMessage]:
        """The target's ringing is over (nothing if its call ended meanwhile): it answers and is bridged with the
        customer, or (:attr:`unanswered`) the dial times out."""
        self._t = max(self._t, now)
        leg = self._legs.get(uniqueid)
        customer = self._fields_of(leg.transferee) if leg is not None else None
        if leg is None or customer is None or leg.answered or leg.rang_out:
            return []
        dialer = self._fields_of(leg.dialer) or customer
        if leg.rings_out:
            return self._ring_out(leg, dialer, now)
        leg.fields.update(ChannelState="6", ChannelStateDesc="Up")
        out = [self._channel_event("Newstate", now, leg.fields),
               self._dial_event("DialEnd", now, dialer, leg, ("DialStatus", "ANSWER"))]
        if leg.attended_by:
            bridge = self.state.channels[leg.transferee].bridge_id
            agent = dict(self._fields_of(leg.attended_by) or {})
            out.append(self._event(
                "AttendedTransfer", now, ("Result", "Success"), *_snapshot(agent, "OrigTransferer"),
                *self._bridge_pairs(bridge, 2, "OrigBridge"), *_snapshot(agent, "SecondTransferer"),
                *_snapshot(customer, "Transferee"), *_snapshot(leg.fields, "TransferTarget"),
                ("IsExternal", "No"), ("DestType", "Link"), ("DestTransfererChannel", leg.fields["Channel"])))
            if bridge:
                out += self._leave_bridge(bridge, dict(customer), now)
            else:
                out.append(self._channel_event("Hangup", now, agent, ("Cause", "16"), ("Cause-txt", "Normal Clearing")))
                self._gone.add(leg.attended_by)
            leg.dialer = leg.transferee
        self._bridges += 1
        leg.bridge = f"{0x7e000000 + self._bridges:08x}-0000-4000-8000-{int(now) % 10**12:012d}"
        leg.answered = True
        leg.fields["Exten"] = ""
        customer_now = dict(customer)
        customer_now.update(ConnectedLineNum=leg.fields["CallerIDNum"], ConnectedLineName=leg.fields["CallerIDName"])
        out += [self._event("BridgeCreate", now, ("BridgeUniqueid", leg.bridge), *_BRIDGE_KEYS,
                            ("BridgeNumChannels", "0"), ("BridgeVideoSourceMode", "none")),
                self._channel_event("Newexten", now, leg.fields, ("Extension", ""), ("Application", "AppDial"),
                                    ("AppData", "(Outgoing Line)"), privilege="dialplan,all"),
                self._bridge_event("BridgeEnter", now, leg.bridge, 1, leg.fields),
                self._bridge_event("BridgeEnter", now, leg.bridge, 2, customer_now)]
        return out

    def _ring_out(self, leg: _Leg, dialer: dict[str, str], now: float) -> list[AmiMessage]:
        """The dial to a target that never answers times out (15-blind-transfer-noanswer): ``DialEnd``
        ``NOANSWER`` and the target's ``Hangup`` (cause 0, as Asterisk writes a callee the dial gave up on). After an
        ``Atxfer`` the agent, still bridged with the customer, talks on; after a blind transfer the transfer context's
        ``Hangup()`` hangs the customer up."""
        out = [self._dial_event("DialEnd", now, dialer, leg, ("DialStatus", "NOANSWER"))]
        target_hangup = self._channel_event("Hangup", now, leg.fields, ("Cause", "0"), ("Cause-txt", "Unknown"))
        self._gone.add(leg.uniqueid)
        if leg.attended_by:
            leg.rang_out = True  # kept: the customer's Hangup still ends the agent's leg (:meth:`_end_legs`)
            return [*out, target_hangup]
        del self._legs[leg.uniqueid]
        customer = dict(dialer)
        customer["Priority"] = str(int(customer.get("Priority") or "1") + 1)
        self._gone.add(leg.transferee)
        return [*out, self._channel_event("Newexten", now, customer, ("Extension", customer.get("Exten", "")),
                                          ("Application", "Hangup"), ("AppData", ""), privilege="dialplan,all"),
                self._channel_event("SoftHangupRequest", now, customer, ("Cause", "16")), target_hangup,
                self._channel_event("Hangup", now, customer, ("Cause", "16"), ("Cause-txt", "Normal Clearing"))]

    # -- helpers

    def _channel(self, name: str) -> str | None:
        """The uniqueid of the live channel called ``name``."""
        return next((uid for uid, c in self.state.channels.items() if name and c.fields.get("Channel") == name), None)

    def _name_of(self, exten: str) -> str:
        """The name phone ``exten`` presents: seen on its channels, else its queue membership's, else the number."""
        if exten in self._names:
            return self._names[exten]
        device = f"PJSIP/{exten}"
        return next((m["Name"] for m in self.state.members.values()
                     if device in (m.get("StateInterface"), m.get("Location")) and m.get("Name")), exten)

    def _fields_of(self, uniqueid: str) -> dict[str, str] | None:
        chan = self.state.channels.get(uniqueid)
        return chan.fields if chan is not None else None

    def _bridge_peer(self, uniqueid: str) -> str | None:
        bridge = self.state.channels[uniqueid].bridge_id
        if not bridge:
            return None
        return next((uid for uid, c in self.state.channels.items() if c.bridge_id == bridge and uid != uniqueid), None)

    def _stamp(self, now: float) -> str:
        """Strictly increasing times within the PBX's clock, as one instant's events have."""
        self._t = max(self._t + 0.000010, now)
        return f"{self._t:.6f}"

    def _event(self, name: str, now: float, *pairs: tuple[str, str], privilege: str = "call,all") -> AmiMessage:
        return AmiMessage(headers=[("Event", name), ("Privilege", privilege), ("Timestamp", self._stamp(now)),
                                   *pairs])

    def _channel_event(self, name: str, now: float, fields: dict[str, str], *pairs: tuple[str, str],
                       privilege: str = "call,all") -> AmiMessage:
        return self._event(name, now, *_snapshot(fields), *pairs, privilege=privilege)

    def _dial_event(self, name: str, now: float, dialer: dict[str, str], leg: _Leg,
                    *pairs: tuple[str, str]) -> AmiMessage:
        return self._event(name, now, *_snapshot(dialer), *_snapshot(leg.fields, "Dest"), *pairs)

    def _bridge_pairs(self, bridge: str, count: int, prefix: str = "Bridge") -> Headers:
        return [(f"{prefix}Uniqueid", bridge), *((prefix + k[len("Bridge"):], v) for k, v in _BRIDGE_KEYS),
                (f"{prefix}NumChannels", str(count)), (f"{prefix}VideoSourceMode", "none")]

    def _bridge_event(self, name: str, now: float, bridge: str, count: int, fields: dict[str, str]) -> AmiMessage:
        return self._event(name, now, *self._bridge_pairs(bridge, count), *_snapshot(fields))


#: ``QueueMemberPause`` fields after ``MemberName``, from the member as ``QueueStatus`` names its fields.
_PAUSE_KEYS = (("Interface", "Location"), ("StateInterface", "StateInterface"), ("Membership", "Membership"),
               ("Penalty", "Penalty"), ("CallsTaken", "CallsTaken"), ("LastCall", "LastCall"),
               ("LastPause", "LastPause"), ("LoginTime", "LoginTime"), ("InCall", "InCall"), ("Status", "Status"),
               ("Paused", "Paused"), ("PausedReason", "PausedReason"))


def _snapshot(fields: dict[str, str], prefix: str = "") -> Headers:
    """A channel snapshot as Asterisk writes it in an event, its keys prefixed (``Dest``, ``Transferee``...)."""
    return [(prefix + key, fields.get(key, "")) for key in SNAPSHOT_KEYS]


def _is_outside(context: str, exten: str) -> bool:
    return context == _OUTSIDE_CONTEXT or len(exten.lstrip("+")) > _MAX_EXTENSION_DIGITS
