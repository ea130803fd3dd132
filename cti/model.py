"""The call model: AMI events in, calls and legs and effects out. No I/O, no clock.

This is the one file to open to understand how a call is followed. :class:`CallBook` holds the
channels (by ``Uniqueid``) and the calls they belong to (by ``Linkedid``); :func:`CallBook.apply`
looks the event up in :data:`HANDLERS` and the handler updates the book and returns effects
(``cti/effects.py``). Unknown events change nothing. Time always comes from the message
(:attr:`AmiMessage.time`: the PBX's ``Timestamp`` header, else the arrival time stamped by the
connection), so replaying a trace faster than real time gives the same durations.

Rules derived from what a real Asterisk 22 sends (``../shared/ami-traces``):

* An agent *answered* when a ``DialEnd`` with ``DialStatus: ANSWER`` names the agent's channel as
  destination, or when a ``Pickup`` event names the picking agent. The PBX's own ``Answer()`` before
  ``Queue()`` and ``VoiceMail()`` also put the caller's channel ``Up``; that is not an answer
  (07-queue-ringall-answered, 03-direct-noanswer-voicemail).
* An agent was *rung* when a ``DialBegin`` names the agent's channel as destination: a queue member
  whose phone answers ``503`` never reaches ``Ringing`` but was tried (36-queue-member-unavailable).
* ``Local/...;1``/``;2`` pairs are plumbing: only real endpoint channels count as agents; the
  ``;2`` half's ``DialBegin``/``DialEnd`` to ``PJSIP/104`` carries the agent's ring and answer. Which
  channel is a trunk, an agent or a Local half is read by :mod:`cti.channels` (shared with the agent board).
* A directed pickup starts the picking agent's channel under its *own* linkedid; the ``Pickup`` event
  merges that call into the picked one (29-directed-pickup).
* Direction: the first channel of a call is a trunk → inbound. An agent's channel → outbound when it
  dials a trunk (``CallDialing`` then, once: the number is known from that ``DialBegin``), internal when it
  dials an agent. A channel created by ``Originate`` (a ``DialBegin``
  without a source channel) is click-to-call: the agent's own phone rings first and is not "rung" for
  the call (16-click-to-call-answered). When that phone never answers, the number is only in the failed
  ``OriginateResponse`` (any AMI client's), matched by endpoint before or after the leg's ``Hangup``.
* Blind transfers show as ``BlindTransfer`` (AMI or SIP REFER, 31-phone-blind-transfer-refer) or, for
  an AMI ``Redirect``, as the caller's channel dialling again after it was answered
  (13-blind-transfer-redirect, 35-blind-transfer-external); attended ones as ``AttendedTransfer``. A
  consultation the target answered is no transfer by itself: the customer may hang up on hold before it
  completes.
* A short abandon is counted from the call's arrival at the PBX, not from the first ring.
* Resync (``cti/resync.py``, whose handlers are in this same table): after an outage the snapshot
  (``CoreShowChannels``) is reconciled with the calls the model knows; what changed meanwhile is derived
  from it, and every call that lived through the outage is marked ``complete: false``.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from operator import attrgetter

from asterisk.messages import AmiMessage

from .agents import AGENT_HANDLERS
from .ami_numbers import small_int
from .channels import (
    agent_of_channel_name,
    classify,
    leg_role,
    matches_in_full,
    number_of_dial_string,
    party,
)
from .clock import PbxClock
from .effects import (
    CallAnswered,
    CallDialing,
    CallEnded,
    CallRang,
    CallsMerged,
    CallStarted,
    CallTransferred,
    ChannelView,
    Effect,
    LegEnded,
)
from .phones import is_withheld, normalize_number
from .records import DEFAULT_PBX, AgentMiss, CallRecord, LegRecord, MissedEntry
from .resync import RESYNC_HANDLERS, ResyncState

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Dial-plan facts (from ``[pbx]`` of the config) the model needs to tell agents from trunks."""

    trunks: frozenset[str] = frozenset({"trunk"})
    agent_pattern: str = r"[1-9]\d{2,3}"
    short_abandon_seconds: float = 3.0
    voicemail_apps: frozenset[str] = frozenset({"voicemail"})
    region: str = "RU"
    #: The short id of the PBX this book follows: stamped on every record, missed entry and agent's miss.
    pbx: str = DEFAULT_PBX

    def is_agent(self, ext: str) -> bool:
        return matches_in_full(self.agent_pattern, ext)


# ---------------------------------------------------------------------------------------------
# Live state (mutable, internal). The finished, frozen form is cti.records.CallRecord.
# ---------------------------------------------------------------------------------------------


@dataclass(slots=True)
class Channel:
    uniqueid: str
    name: str
    kind: str  # trunk | agent | local | other
    agent: str | None  # the agent's extension when kind == "agent"
    created_at: float
    state: str = "Down"
    caller_num: str = ""
    caller_name: str = ""
    exten: str = ""
    rang_at: float | None = None
    up_at: float | None = None
    ended_at: float | None = None
    cause: int | None = None
    cause_txt: str | None = None
    dialed_at: float | None = None  # a DialBegin named it as destination
    dial_status: str | None = None  # last final DialEnd status as destination
    by_originate: bool = False
    connected_at: float | None = None  # DialEnd ANSWER / Pickup: it took the call
    dial_string: str = ""
    popped: bool = False  # its CallRang (screen-pop) was emitted
    #: Its last frozen view (``cti.context``), reused while its phase and times are unchanged: a call's
    #: snapshot is taken after most events, and its channels rarely all change at once.
    view: ChannelView | None = field(default=None, repr=False, compare=False)


@dataclass(slots=True)
class Call:
    linkedid: str
    origin: str  # uniqueid of the first channel
    started_at: float
    pbx: str = DEFAULT_PBX  # the PBX the call is on (its book's ``config.pbx``)
    channels: dict[str, Channel] = field(default_factory=dict)
    live: set[str] = field(default_factory=set)
    direction: str | None = None
    caller: str | None = None
    caller_name: str | None = None
    called: str | None = None
    did: str | None = None
    queue: str | None = None
    answered_at: float | None = None
    answered_by: str | None = None
    agents_answered: list[str] = field(default_factory=list)
    rung: dict[str, float] = field(default_factory=dict)  # agent -> first ring
    transferred_to: str | None = None
    recordings: list[str] = field(default_factory=list)
    voicemail: bool = False
    queue_abandoned: bool = False
    #: The caller waits in ``queue`` now: from ``QueueCallerJoin`` (or a ``QueueEntry`` of a resync) until
    #: ``QueueCallerLeave`` (answered, abandoned, or sent on by a time-out: 10-queue-timeout-voicemail).
    in_queue: bool = False
    #: uniqueid -> time of its first HangupRequest, in arrival order (the first key hung up first).
    hangup_requests: dict[str, float] = field(default_factory=dict)
    voicemail_at: float | None = None
    linkedids: list[str] = field(default_factory=list)
    complete: bool = True
    originate_exten: str | None = None


# ---------------------------------------------------------------------------------------------


def _clean_name(value: str) -> str | None:
    return None if value in ("", "<unknown>", "unknown") else value


def _clean_number(value: str) -> str | None:
    return None if is_withheld(value) else value


def _mixmonitor_files(app_data: str) -> list[str]:
    """File names in ``MixMonitor(<file>,<options>)`` data, incl. ``r(<file>)``/``t(<file>)``."""
    first, _, options = app_data.partition(",")
    files = [first.strip()] if first.strip() else []
    if "(" in options:
        files.extend(_SPLIT_FILES.findall(options))
    return [f.rsplit("/", 1)[-1] for f in files]


#: MixMonitor's ``r(<file>)``/``t(<file>)`` options: the split recording's files.
_SPLIT_FILES = re.compile(r"[rt]\(([^)]+)\)")


class CallBook:
    """Every channel and call in progress. Feed it events with :meth:`apply`."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        self.config = config or ModelConfig()
        self.channels: dict[str, Channel] = {}
        self.calls: dict[str, Call] = {}
        self.call_of: dict[str, str] = {}  # uniqueid -> linkedid of its call
        self.aliases: dict[str, str] = {}  # absorbed linkedid -> the call it joined
        self.names: dict[str, str] = {}  # channel name -> uniqueid (live channels)
        #: The outage and the resync snapshot in progress (cti/resync.py).
        self.resync = ResyncState()
        #: The call the last applied event touched (for the event journal), or None.
        self.touched: str | None = None
        #: The PBX clock minus the local clock, learnt from events that carry a ``Timestamp``; it
        #: dates what has none (resync answers, our own CtiConnected) on the PBX's clock.
        self.clock = PbxClock()
        #: Time of the event being applied, on the PBX's clock.
        self.now: float = 0.0
        #: Click-to-call attempts whose agent phone never answered: the number they were for only
        #: arrives in the ``OriginateResponse``, which may come after the last Hangup. Channel name
        #: -> (call, deadline on the PBX clock).
        self.awaiting_originate: dict[str, tuple[Call, float]] = {}

    # -- entry point ----------------------------------------------------------------------

    def apply(self, msg: AmiMessage) -> list[Effect]:
        """Apply one AMI event; return what happened. Never raises for odd input: logs and skips."""
        self.touched = None
        handler = HANDLERS.get(msg.event)
        if handler is None:
            return []
        self.now = self.clock.time_of(msg)
        try:
            effects = handler(self, msg)
        except (KeyError, ValueError) as exc:
            log.warning("event %s not understood (%s); skipped", msg, exc)
            effects = []
        if self.awaiting_originate:
            effects.extend(self._expire_originates())
        return effects

    # -- helpers --------------------------------------------------------------------------

    def canonical(self, linkedid: str) -> str:
        while linkedid in self.aliases:
            linkedid = self.aliases[linkedid]
        return linkedid

    def _call_of_channel(self, uniqueid: str) -> tuple[Call, Channel] | None:
        lid = self.call_of.get(uniqueid)
        if lid is None:
            return None
        call = self.calls.get(lid)
        if call is None:
            return None
        self.touched = lid
        return call, call.channels[uniqueid]

    def _add_channel(self, msg: AmiMessage, t: float, created_at: float | None = None) -> list[Effect]:
        get = msg.fields.get
        uid = msg.fields["Uniqueid"]
        name = get("Channel", "")
        lid = self.canonical(get("Linkedid", "") or uid)
        kind, agent = classify(name, self.config)
        chan = Channel(
            uniqueid=uid, name=name, kind=kind, agent=agent,
            created_at=t if created_at is None else created_at,
            state=get("ChannelStateDesc", "Down"),
            caller_num=get("CallerIDNum", ""), caller_name=get("CallerIDName", ""), exten=get("Exten", ""),
        )
        effects: list[Effect] = []
        call = self.calls.get(lid)
        if call is None:
            call = Call(linkedid=lid, origin=lid, started_at=chan.created_at, linkedids=[lid], pbx=self.config.pbx)
            self.calls[lid] = call
        self.touched = lid
        call.channels[uid] = chan
        call.live.add(uid)
        self.channels[uid] = chan
        self.call_of[uid] = lid
        self.names[name] = uid
        if uid == call.origin:
            call.started_at = min(call.started_at, chan.created_at)
            self._set_origin_facts(call, chan)
            effects.append(CallStarted(lid, call.direction, call.caller, call.caller_name, call.called, t))
        return effects

    def _set_origin_facts(self, call: Call, chan: Channel) -> None:
        if chan.kind == "trunk":
            call.direction = "inbound"
            call.caller = _clean_number(chan.caller_num)
            call.caller_name = _clean_name(chan.caller_name)
            call.did = call.called = chan.exten or None
        else:
            call.caller = chan.agent or _clean_number(chan.caller_num)
            call.caller_name = _clean_name(chan.caller_name)

    def _answer(self, call: Call, chan: Channel, t: float) -> list[Effect]:
        if chan.connected_at is None:
            chan.connected_at = t
        if chan.agent is None or chan.agent in call.agents_answered:
            return []
        call.agents_answered.append(chan.agent)
        if call.answered_at is None:
            call.answered_at = t
            call.answered_by = chan.agent
        # Every agent who takes the call is news (a transfer target's pop turns to "talking"), while
        # answered_at/answered_by stay those of the first.
        return [CallAnswered(call.linkedid, chan.agent, t)]

    def _dialing(self, call: Call, t: float) -> CallDialing:
        """``CallDialing`` for a call just found outbound (live at its trunk's ``DialBegin``, or by a resync): the
        extension dialling out is the call's first agent phone (the caller's own, or a click-to-call's), else its
        caller."""
        origin = call.channels.get(call.origin)
        agent = origin.agent if origin is not None else None
        if agent is None:
            agent = next((c.agent for c in call.channels.values() if c.agent is not None), None) or call.caller
        return CallDialing(call.linkedid, agent, call.called, t)

    def _transfer(self, call: Call, target: str, kind: str, t: float) -> list[Effect]:
        if not target or call.transferred_to == target:
            return []
        call.transferred_to = target
        return [CallTransferred(call.linkedid, target, kind, t)]

    def _end_channel(self, call: Call, chan: Channel, t: float, cause: int | None, cause_txt: str | None
                     ) -> list[Effect]:
        effects: list[Effect] = []
        if chan.ended_at is None:
            chan.ended_at = t
            chan.cause = cause
            chan.cause_txt = cause_txt
        call.live.discard(chan.uniqueid)
        self.channels.pop(chan.uniqueid, None)
        self.call_of.pop(chan.uniqueid, None)
        if self.names.get(chan.name) == chan.uniqueid:
            del self.names[chan.name]
        if chan.agent is not None and chan.uniqueid != call.origin:
            effects.append(LegEnded(call.linkedid, chan.agent, chan.uniqueid, chan.connected_at is not None,
                                    cause, t))
        if not call.live:
            effects.extend(self._finish(call))
        return effects

    def _finish(self, call: Call) -> list[Effect]:
        del self.calls[call.linkedid]
        for lid in call.linkedids:
            if lid != call.linkedid:
                self.aliases.pop(lid, None)
        origin = call.channels.get(call.origin)
        if (origin is not None and origin.by_originate and call.direction is None and call.originate_exten is None
                and origin.up_at is None):
            self.awaiting_originate[origin.name] = (call, self.now + ORIGINATE_RESPONSE_WAIT)
            return []
        return [self._ended(call)]

    def _expire_originates(self) -> list[Effect]:
        due = [name for name, (_, deadline) in self.awaiting_originate.items() if deadline <= self.now]
        return [self._ended(self.awaiting_originate.pop(name)[0]) for name in due]

    def _ended(self, call: Call) -> CallEnded:
        record = build_record(call, self.config)
        missed = missed_entry(record, self.config)
        return CallEnded(record, missed, agent_misses(call, record))

    def merge(self, absorbed: str, into: str) -> list[Effect]:
        """Move every channel of call ``absorbed`` into call ``into`` (directed pickup)."""
        if absorbed == into or absorbed not in self.calls or into not in self.calls:
            return []
        src, dst = self.calls.pop(absorbed), self.calls[into]
        for uid, chan in src.channels.items():
            dst.channels[uid] = chan
            if uid in src.live:
                dst.live.add(uid)
                self.call_of[uid] = into
        dst.linkedids.extend(x for x in src.linkedids if x not in dst.linkedids)
        dst.recordings.extend(x for x in src.recordings if x not in dst.recordings)
        dst.started_at = min(dst.started_at, src.started_at)
        self.aliases[absorbed] = into
        self.touched = into
        return [CallsMerged(into, absorbed)]


Handler = Callable[[CallBook, AmiMessage], list[Effect]]

#: How long (PBX seconds) a failed click-to-call waits for its OriginateResponse before it is
#: journaled without the number it was for.
ORIGINATE_RESPONSE_WAIT = 5.0


# ---------------------------------------------------------------------------------------------
# Handlers, one per AMI event.
# ---------------------------------------------------------------------------------------------


def _new_channel(book: CallBook, msg: AmiMessage) -> list[Effect]:
    uid = msg.fields["Uniqueid"]
    if uid in book.channels:  # seen in a resync snapshot already
        book.touched = book.call_of.get(uid)
        return []
    return book._add_channel(msg, book.now)


def _new_state(book: CallBook, msg: AmiMessage) -> list[Effect]:
    get = msg.fields.get
    found = book._call_of_channel(get("Uniqueid", ""))
    if found is None:
        return []
    call, chan = found
    t = book.now
    chan.state = get("ChannelStateDesc", chan.state)
    if chan.state == "Ringing" and chan.rang_at is None:
        chan.rang_at = t
        return _screen_pop(call, chan, t)
    if chan.state == "Up" and chan.up_at is None:
        chan.up_at = t
    return []


def _screen_pop(call: Call, chan: Channel, t: float) -> list[Effect]:
    """``CallRang`` once an agent's phone, dialled for this call, really rings (a phone that answers
    503 is tried but never rings: no pop, 36-queue-member-unavailable). Dial and ring may come in
    either order; the pop goes out when both are known."""
    if (chan.popped or chan.agent is None or chan.uniqueid == call.origin or call.direction == "outbound"
            or chan.dialed_at is None or chan.rang_at is None):
        return []
    chan.popped = True
    return [CallRang(call.linkedid, chan.agent, chan.name, chan.uniqueid, call.caller, call.caller_name,
                     call.called, call.queue, t)]


def _dial_begin(book: CallBook, msg: AmiMessage) -> list[Effect]:
    get = msg.fields.get
    found = book._call_of_channel(get("DestUniqueid", ""))
    if found is None:
        return []
    call, dest = found
    t = book.now
    source_uid = get("Uniqueid", "")
    dest.dial_string = get("DialString", "")
    if dest.dialed_at is None:
        dest.dialed_at = t
    dest.dial_status = None
    if not source_uid:
        # Originate: the PBX calls the agent's own phone first (click-to-call).
        dest.by_originate = True
        return []
    effects: list[Effect] = []
    is_origin_source = source_uid == call.origin
    if is_origin_source and call.direction == "inbound" and call.did is None and get("Exten", "") not in ("", "s"):
        # First seen in a resync snapshot while in a subroutine (cti/resync.py): it dials from its DID.
        call.did = call.called = get("Exten", "")
    if call.direction is None and dest.uniqueid != call.origin:
        if dest.kind == "trunk":
            call.direction = "outbound"
            call.called = number_of_dial_string(dest.dial_string) or get("Exten", "") or None
            # The earliest moment an outbound call is known, with its number: the trunk's Newchannel came with
            # neither (33-phone-outbound-remote-hangup).
            effects.append(book._dialing(call, t))
        elif dest.kind == "agent":
            call.direction = "internal"
            call.called = dest.agent
    if dest.kind == "agent" and dest.uniqueid != call.origin and call.direction != "outbound":
        assert dest.agent is not None
        call.rung.setdefault(dest.agent, t)
        effects.extend(_screen_pop(call, dest, t))
    if is_origin_source and call.answered_at is not None and call.direction == "inbound":
        # The caller's channel dials again after an agent took it: an AMI Redirect (blind transfer).
        # Where it was sent is the caller channel's extension at this Dial (``transfer,600`` rings a
        # group; ``outbound,8916...`` an outside number); the dialled agent only if that is unknown.
        exten = get("Exten", "")
        target = exten if exten and exten != "s" and exten != call.did else (
            dest.agent if dest.kind == "agent" else number_of_dial_string(dest.dial_string))
        if target and target not in call.agents_answered:
            effects.extend(book._transfer(call, target, "redirect", t))
    return effects


def _dial_end(book: CallBook, msg: AmiMessage) -> list[Effect]:
    get = msg.fields.get
    found = book._call_of_channel(get("DestUniqueid", ""))
    if found is None:
        return []
    call, dest = found
    status = get("DialStatus", "")
    if dest.dial_status is None or dest.dial_status == "CANCEL":
        dest.dial_status = status
    if status != "ANSWER" or dest.uniqueid == call.origin:
        return []
    t = book.now
    if dest.kind == "agent" and call.direction != "outbound":
        return book._answer(call, dest, t)
    if dest.kind == "trunk" and call.direction == "outbound" and call.answered_at is None:
        dest.connected_at = t
        call.answered_at = t
        call.answered_by = call.called
        return [CallAnswered(call.linkedid, call.called or "", t)]
    if dest.connected_at is None:
        dest.connected_at = t
    return []


def _hangup(book: CallBook, msg: AmiMessage) -> list[Effect]:
    get = msg.fields.get
    found = book._call_of_channel(get("Uniqueid", ""))
    if found is None:
        return []
    call, chan = found
    cause = small_int(get("Cause", ""))  # a Q.850 cause: "²" or 30 digits are no cause at all (ami_numbers)
    return book._end_channel(call, chan, book.now, cause, get("Cause-txt", "") or None)


def _hangup_request(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """The far end of a channel hung up (a BYE/CANCEL), as opposed to the PBX ending it."""
    found = book._call_of_channel(msg.fields.get("Uniqueid", ""))
    if found is not None:
        call, chan = found
        call.hangup_requests.setdefault(chan.uniqueid, book.now)
    return []


def _pickup(book: CallBook, msg: AmiMessage) -> list[Effect]:
    get = msg.fields.get
    picker = book._call_of_channel(get("Uniqueid", ""))
    target = book._call_of_channel(get("TargetUniqueid", ""))
    if picker is None or target is None:
        return []
    effects = book.merge(picker[0].linkedid, target[0].linkedid)
    call, chan = target[0], picker[1]
    chan.dialed_at = chan.dialed_at or book.now
    effects.extend(book._answer(call, chan, book.now))
    return effects


def _blind_transfer(book: CallBook, msg: AmiMessage) -> list[Effect]:
    get = msg.fields.get
    found = book._call_of_channel(get("TransfereeUniqueid", "")) or book._call_of_channel(
        get("TransfererUniqueid", ""))
    if found is None or get("Result", "Success") != "Success":
        return []
    return book._transfer(found[0], get("Extension", ""), "blind", book.now)


def _attended_transfer(book: CallBook, msg: AmiMessage) -> list[Effect]:
    get = msg.fields.get
    if get("Result", "Success") != "Success":
        return []
    found = None
    for key in ("TransfereeUniqueid", "OrigTransfererUniqueid", "SecondTransfererUniqueid"):
        found = book._call_of_channel(get(key, ""))
        if found:
            break
    if found is None:
        return []
    config = book.config
    target = None
    for key in ("TransferTargetChannel", "SecondTransfererConnectedLineNum", "SecondTransfererExten"):
        value = get(key, "")
        if not value:
            continue
        target = agent_of_channel_name(value, config) if "/" in value else (value if config.is_agent(value) else None)
        if target:
            break
    if target is None:
        return []
    return book._transfer(found[0], target, "attended", book.now)


def _new_exten(book: CallBook, msg: AmiMessage) -> list[Effect]:
    get = msg.fields.get
    app = get("Application", "")
    if app not in ("VoiceMail", "MixMonitor", "Queue") and app.lower() not in book.config.voicemail_apps:
        return []
    found = book._call_of_channel(get("Uniqueid", ""))
    if found is None:
        return []
    call = found[0]
    data = get("AppData", "")
    if app.lower() in book.config.voicemail_apps:
        call.voicemail = True
        if call.voicemail_at is None:
            call.voicemail_at = book.now
    elif app == "MixMonitor":
        # Split recording (34-stereo-recording): the -in/-out files only show in the app data.
        for name in _mixmonitor_files(data)[1:]:
            if name not in call.recordings:
                call.recordings.append(name)
    elif app == "Queue" and call.queue is None:
        call.queue = data.partition(",")[0] or None
    return []


def _var_set(book: CallBook, msg: AmiMessage) -> list[Effect]:
    get = msg.fields.get
    if get("Variable", "") != "MIXMONITOR_FILENAME":
        return []
    found = book._call_of_channel(get("Uniqueid", ""))
    if found is None:
        return []
    name = get("Value", "").rsplit("/", 1)[-1]
    recs = found[0].recordings
    if name and name not in recs:
        # The main (mix) file goes before the -in/-out files the MixMonitor app data listed.
        first_split = next((i for i, r in enumerate(recs) if r.endswith(("-in.wav", "-out.wav"))), len(recs))
        recs.insert(first_split, name)
    return []


def _queue_caller_join(book: CallBook, msg: AmiMessage) -> list[Effect]:
    get = msg.fields.get
    found = book._call_of_channel(get("Uniqueid", ""))
    if found is not None:
        found[0].queue = get("Queue", "") or found[0].queue
        found[0].in_queue = True
    return []


def _queue_caller_leave(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """The caller left the queue: a member answered (it comes right before ``AgentConnect``, 07-queue-ringall-
    answered), the caller hung up (after ``QueueCallerAbandon``, 08-queue-abandon), or the queue timed out and the
    dial plan goes on (to voicemail, 10-queue-timeout-voicemail). Only the first two end the call: without this,
    a caller leaving a message would still count as waiting."""
    found = book._call_of_channel(msg.fields.get("Uniqueid", ""))
    if found is not None:
        found[0].in_queue = False
    return []


def _queue_caller_abandon(book: CallBook, msg: AmiMessage) -> list[Effect]:
    # Asterisk also says "abandon" when Queue() times out (10-queue-timeout-voicemail); only a
    # caller who hung up while waiting really abandoned: their own channel sent a HangupRequest before
    # this event. A member's 486 or a torn-down Local member may have sent one earlier: not the caller.
    uid = msg.fields.get("Uniqueid", "")
    found = book._call_of_channel(uid)
    if found is not None and _hung_up_itself(found[0], uid):
        found[0].queue_abandoned = True
    return []


def _agent_called(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """A queue tried a member; with a 503 phone no DialBegin/Ringing may follow (36-...)."""
    get = msg.fields.get
    found = book._call_of_channel(get("DestUniqueid", ""))
    if found is None:
        return []
    call, dest = found
    if dest.kind == "agent" and dest.agent is not None and dest.uniqueid != call.origin:
        call.rung.setdefault(dest.agent, book.now)
        if dest.dialed_at is None:
            dest.dialed_at = book.now
    call.queue = call.queue or get("Queue", "") or None
    return []


def _originate_response(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """Click-to-call's target number, from an ``Originate`` sent by any AMI client (ours, a CRM's...).

    A successful one names the channel and its ``Uniqueid``. A failed one (the agent's own phone never
    answered) names only the endpoint (``Channel: PJSIP/101``, ``Uniqueid: <unknown>``) and the originator's
    ActionID, and the number is nowhere else. Asterisk usually sends it about 1 ms *before* that leg's
    ``Hangup``, sometimes after the call ended: both are matched by the endpoint.
    """
    get = msg.fields.get
    exten = get("Exten", "") or None
    found = book._call_of_channel(get("Uniqueid", ""))
    if found is not None:
        found[0].originate_exten = exten
        return []
    requested = get("Channel", "")  # e.g. PJSIP/101: the endpoint, not the channel instance
    if not requested:
        return []
    live = _unanswered_originate(book, requested)
    if live is not None:
        live.originate_exten = exten
        book.touched = live.linkedid
        return []
    for name, (call, _) in list(book.awaiting_originate.items()):
        if name == requested or name.startswith(requested + "-"):
            del book.awaiting_originate[name]
            call.originate_exten = exten
            book.touched = call.linkedid
            return [book._ended(call)]
    return []


def _unanswered_originate(book: CallBook, endpoint: str) -> Call | None:
    """The live click-to-call whose agent phone ``endpoint`` (``PJSIP/101``) was rung by an ``Originate`` and
    never answered, and whose number is still unknown; the one whose dial already ended first (its
    ``DialEnd`` precedes the failed response), then the oldest."""
    candidates = []
    for call in book.calls.values():
        origin = call.channels.get(call.origin)
        if (origin is None or origin.uniqueid not in call.live or not origin.by_originate or origin.up_at is not None
                or call.originate_exten is not None or call.direction is not None):
            continue
        if origin.name == endpoint or origin.name.startswith(endpoint + "-"):
            candidates.append((origin.dial_status is None, origin.created_at, call))
    if not candidates:
        return None
    return min(candidates, key=lambda c: (c[0], c[1]))[2]


# -- the daemon's heartbeat ---------------------------------------------------------------------


def _cti_tick(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """A heartbeat from the daemon: only lets time-outs inside the model (awaited OriginateResponses) expire."""
    return []


HANDLERS: dict[str, Handler] = {
    "Newchannel": _new_channel,
    "Newstate": _new_state,
    "DialBegin": _dial_begin,
    "DialEnd": _dial_end,
    "Hangup": _hangup,
    "HangupRequest": _hangup_request,
    "Pickup": _pickup,
    "BlindTransfer": _blind_transfer,
    "AttendedTransfer": _attended_transfer,
    "Newexten": _new_exten,
    "VarSet": _var_set,
    "CtiVariable": _var_set,  # a Getvar answer for a VariableWanted, fed back by the daemon
    "QueueCallerJoin": _queue_caller_join,
    "QueueCallerAbandon": _queue_caller_abandon,
    "QueueCallerLeave": _queue_caller_leave,
    "AgentCalled": _agent_called,
    "OriginateResponse": _originate_response,
    **RESYNC_HANDLERS,  # CtiDisconnected, CtiConnected, CtiClock, CoreShowChannel(sComplete), QueueEntry
    "CtiTick": _cti_tick,
}

#: The AMI ``Filter`` expressions that let through exactly what :data:`HANDLERS` and the agent board's
#: :data:`cti.agents.AGENT_HANDLERS` read: the call, device and queue member events, plus from the noisy
#: ``dialplan`` class only the recording file name and the apps that matter. One real call makes
#: hundreds of VarSet/Newexten events; this keeps them off the wire.
AMI_FILTERS: tuple[str, ...] = (
    "Event: ("
    + "|".join(sorted({e for e in (*HANDLERS, *AGENT_HANDLERS) if e not in ("VarSet", "Newexten")
                       and not e.startswith("Cti")}))
    + ")",
    "Variable: MIXMONITOR_FILENAME",
    "Application: (VoiceMail|MixMonitor|Queue)",
)
#: Event classes asked for at login.
AMI_EVENT_CLASSES = "call,agent,dialplan"


# ---------------------------------------------------------------------------------------------
# From live state to the frozen record.
# ---------------------------------------------------------------------------------------------


def _direction(call: Call) -> str:
    if call.direction is not None:
        return call.direction
    origin = call.channels.get(call.origin)
    if origin is None or origin.kind == "trunk":
        return "inbound"
    if origin.by_originate:
        return "outbound"
    if any(c.kind == "agent" and c.uniqueid != call.origin for c in call.channels.values()):
        return "internal"
    return "outbound"


def _missed_reason(call: Call, direction: str, ended_at: float, config: ModelConfig) -> str:
    origin = call.channels.get(call.origin)
    legs = [c for c in call.channels.values() if c.uniqueid != call.origin and c.dialed_at is not None]
    statuses = {c.dial_status for c in legs if c.kind in ("agent", "trunk")}
    if direction == "outbound":
        if origin is not None and origin.by_originate and origin.up_at is None:
            return "unavailable"
        # The remote end's 486: the trunk leg's DialEnd says BUSY and its Hangup cause 17 (27-click-to-call-busy);
        # the cause alone still tells when the DialEnd fell in an outage.
        if "BUSY" in statuses or any(c.cause == 17 for c in legs if c.kind == "trunk"):
            return "busy"
        if statuses and statuses <= {"CHANUNAVAIL", "CONGESTION"}:
            return "failed"
        return "no_answer"
    # A short abandon is what the caller lived: a hang-up within the threshold of the call's arrival at the
    # PBX, rung phones or not (a queue caller who waited 15 s is not one because a phone began to ring 2 s
    # before). The caller's own HangupRequest dates the hang-up; the call's end stands in without one.
    left_at = call.hangup_requests.get(call.origin, ended_at)
    caller_left_early = left_at - min(call.started_at, left_at) < config.short_abandon_seconds
    if call.queue_abandoned:
        return "short_abandon" if caller_left_early else "abandoned"
    agent_legs = [c for c in legs if c.kind == "agent"]
    agent_statuses = {c.dial_status for c in agent_legs}
    if agent_legs and all(_refused_busy(c) for c in agent_legs):
        # Busy only when every phone tried was: one 486 while another rang is the caller's hang-up.
        return "busy"
    if call.voicemail:
        return "voicemail"
    if _hung_up_itself(call, call.origin):
        # The caller hung up, while phones rang or even before any did (during a greeting).
        return "short_abandon" if caller_left_early else "caller_hangup_ringing"
    if not call.rung or (agent_statuses and agent_statuses <= {"CHANUNAVAIL", "CONGESTION"}):
        return "unavailable"
    return "no_answer"


def _hung_up_itself(call: Call, uniqueid: str) -> bool:
    """That channel's far end hung up: a ``HangupRequest`` (its BYE/CANCEL) on the channel itself.

    Asked of the caller's own channel, never "whose HangupRequest came first in the call": a phone that
    refuses with 486 (04-direct-busy) and a Local member the queue tears down both send one on *their*
    channel before the caller does, while a PBX that ends the caller's channel (a Dial or queue timeout,
    ``Hangup()``) sends only a ``SoftHangupRequest`` (12-ringgroup-noanswer).
    """
    return uniqueid in call.hangup_requests


def _refused_busy(chan: Channel) -> bool:
    """The phone answered 486 Busy Here. ``Dial()`` says ``DialStatus: BUSY`` (04-direct-busy); ``Queue()``
    only reads the hang-up and says ``NOANSWER`` (as for a 503, 36-queue-member-unavailable), so there the
    channel's hang-up cause 17 (user busy) is what tells."""
    return chan.dial_status == "BUSY" or chan.cause == 17


def _hung_up_by(call: Call) -> str:
    """Who ended the call: the first party that hung up on a connected call; for a call nobody took,
    the caller if they hung up, else the PBX (timeout, busy, voicemail done...)."""
    if call.answered_at is None:
        return party(call.channels[call.origin].kind) if call.origin in call.hangup_requests else "pbx"
    after = [(t, uid) for uid, t in call.hangup_requests.items() if t >= call.answered_at
             and (uid == call.origin or call.channels[uid].connected_at is not None)]
    return party(call.channels[min(after)[1]].kind) if after else "pbx"


def _handed_over_to(call: Call) -> str | None:
    """The agent a call was handed over to when no transfer event said so (an ``AttendedTransfer`` lost while
    the daemon was disconnected): a later agent who was on the call when the agents who answered before had
    all left, with the caller still on the line.

    A second agent who answered is not enough: in an attended transfer the target answers the consultation
    while the customer waits on hold, and if the customer hangs up before the transfer completes (no
    ``AttendedTransfer``, no ``BridgeMerge``, no ATTENDEDTRANSFER in CEL) the first agent and the target are
    left talking to each other: the customer never reached the target, the call was not transferred.
    """
    if len(call.agents_answered) < 2:
        return None
    origin = call.channels.get(call.origin)
    if origin is None:
        return None
    never = float("inf")
    target, earlier = call.agents_answered[-1], set(call.agents_answered[:-1])
    legs = [c for c in call.channels.values() if c.uniqueid != call.origin and c.connected_at is not None]
    earlier_ends = [never if c.ended_at is None else c.ended_at for c in legs if c.agent in earlier]
    if not earlier_ends:
        return None
    earlier_left = max(earlier_ends)
    caller_left = never if origin.ended_at is None else origin.ended_at
    if earlier_left >= caller_left:
        return None  # the caller left first: nobody was handed the caller
    for leg in legs:
        if (leg.agent == target and leg.connected_at is not None and leg.connected_at <= earlier_left
                and (never if leg.ended_at is None else leg.ended_at) > earlier_left):
            return target
    return None


_created_at = attrgetter("created_at")


def build_record(call: Call, config: ModelConfig) -> CallRecord:
    """Freeze a finished call into its journal row."""
    direction = _direction(call)
    ended_at = max((c.ended_at for c in call.channels.values() if c.ended_at is not None), default=None)
    end = ended_at if ended_at is not None else call.started_at
    answered = call.answered_at is not None
    called = call.called
    if called is None and call.originate_exten:
        called = call.originate_exten
    rung_not_answered = tuple(a for a in call.rung if a not in call.agents_answered)
    transferred_to = call.transferred_to
    if transferred_to is None and direction == "inbound":
        transferred_to = _handed_over_to(call)
    missed_reason = None if answered else _missed_reason(call, direction, end, config)
    if answered:
        outcome = "answered"
    elif direction == "outbound":
        outcome = "failed"
    else:
        outcome = "missed"
    origin = call.channels.get(call.origin)
    legs = tuple(
        LegRecord(  # positional, in field order (as CallRecord below)
            c.uniqueid, c.name, leg_role(c.kind, c.uniqueid == call.origin),  # uniqueid, channel, role
            c.agent, number_of_dial_string(c.dial_string) if c.dial_string else None,  # agent, number
            c.created_at, c.connected_at or c.up_at, c.ended_at,  # started_at, answered_at, ended_at
            c.dial_status or ("up" if c.up_at else "ended"),  # status
            c.cause, c.cause_txt,  # hangup_cause, hangup_cause_txt
        )
        for c in sorted(call.channels.values(), key=_created_at)
    )
    # Positional, in field order: a call's record is built at every call's end, and a keyword call of 27
    # parameters costs about twice a positional one.
    return CallRecord(
        call.linkedid,  # linkedid
        direction,  # type: ignore[arg-type]  # direction
        call.caller,  # caller
        call.caller_name,  # caller_name
        called,  # called
        answered,  # answered
        call.answered_by,  # answered_by
        missed_reason,  # missed_reason
        max(0.0, end - call.answered_at) if call.answered_at is not None else 0.0,  # talk_seconds
        transferred_to,  # transferred_to
        rung_not_answered,  # agents_rung_not_answered
        call.recordings[0] if call.recordings else None,  # recording
        call.started_at,  # started_at
        call.answered_at,  # answered_at
        ended_at,  # ended_at
        outcome,  # type: ignore[arg-type]  # outcome
        # Waiting time: until an agent answered, voicemail took the call, or the call ended.
        max(0.0, (call.answered_at or call.voicemail_at or end) - call.started_at),  # ring_seconds
        call.queue,  # queue
        call.did,  # did
        origin.cause if origin else None,  # hangup_cause
        origin.cause_txt if origin else None,  # hangup_cause_txt
        _hung_up_by(call),  # hung_up_by
        tuple(call.recordings),  # recordings
        tuple(call.linkedids),  # linkedids
        tuple(call.agents_answered),  # agents_answered
        call.complete,  # complete
        legs,  # legs
        config.pbx,  # pbx
    )


def missed_entry(record: CallRecord, config: ModelConfig) -> MissedEntry | None:
    """The missed-call register row for an inbound call no agent answered (docs/missed-calls.md)."""
    if record.direction != "inbound" or record.answered:
        return None
    return MissedEntry(
        linkedid=record.linkedid, caller=record.caller,
        caller_key=normalize_number(record.caller, config.region), caller_name=record.caller_name,
        called=record.called, queue=record.queue, reason=record.missed_reason or "no_answer",
        missed_at=record.started_at, ring_seconds=record.ring_seconds,
        agents_rung=record.agents_rung_not_answered, pbx=record.pbx,
    )


_AGENT_MISS_REASON = {"BUSY": "busy", "CHANUNAVAIL": "unavailable", "CONGESTION": "unavailable",
                      "NOANSWER": "no_answer"}


def agent_misses(call: Call, record: CallRecord) -> tuple[AgentMiss, ...]:
    """One row per agent who was rung for this call and did not answer it."""
    out = []
    for agent in record.agents_rung_not_answered:
        legs = [c for c in call.channels.values() if c.agent == agent and c.uniqueid != call.origin]
        last = next((c for c in reversed(legs) if c.dial_status), None)
        status = None if last is None else ("BUSY" if _refused_busy(last) else last.dial_status)
        if status != "BUSY" and all(c.rang_at is None for c in legs):
            # Tried but never rang: the device refused (503 answers show as NOANSWER with cause 34,
            # 36-queue-member-unavailable).
            reason = "unavailable"
        elif status in _AGENT_MISS_REASON:
            reason = _AGENT_MISS_REASON[status]
        elif record.answered:
            reason = "answered_elsewhere"
        else:
            reason = "caller_hung_up"
        ends = [c.ended_at for c in legs if c.ended_at is not None]
        rang_at = call.rung[agent]
        out.append(AgentMiss(
            linkedid=record.linkedid, agent=agent, rang_at=rang_at,
            ring_seconds=max(0.0, (max(ends) if ends else rang_at) - rang_at), reason=reason,
            answered_by=record.answered_by, caller=record.caller, pbx=record.pbx,
        ))
    return tuple(out)
