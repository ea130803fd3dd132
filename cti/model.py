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
  ``;2`` half's ``DialBegin``/``DialEnd`` to ``PJSIP/104`` carries the agent's ring and answer.
* A directed pickup starts the picking agent's channel under its *own* linkedid; the ``Pickup`` event
  merges that call into the picked one (29-directed-pickup).
* Direction: the first channel of a call is a trunk → inbound. An agent's channel → outbound when it
  dials a trunk, internal when it dials an agent. A channel created by ``Originate`` (a ``DialBegin``
  without a source channel) is click-to-call: the agent's own phone rings first and is not "rung" for
  the call (16-click-to-call-answered).
* Blind transfers show as ``BlindTransfer`` (AMI or SIP REFER, 31-phone-blind-transfer-refer) or, for
  an AMI ``Redirect``, as the caller's channel dialling again after it was answered
  (13-blind-transfer-redirect, 35-blind-transfer-external); attended ones as ``AttendedTransfer``.
* Resync: the connection sends ``CtiConnected`` and then the ``CoreShowChannels``/``QueueStatus``
  answers go through this same table. Applying a snapshot twice changes nothing; channels the
  snapshot no longer lists ended while the daemon was away (``CoreShowChannelsComplete``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from asterisk.messages import AmiMessage

from .agents import AGENT_HANDLERS
from .clock import PbxClock
from .effects import (
    CallAnswered,
    CallEnded,
    CallRang,
    CallsMerged,
    CallStarted,
    CallTransferred,
    Effect,
    LegEnded,
    VariableWanted,
)
from .phones import is_withheld, normalize_number
from .records import AgentMiss, CallRecord, LegRecord, MissedEntry

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """Dial-plan facts (from ``[pbx]`` of the config) the model needs to tell agents from trunks."""

    trunks: frozenset[str] = frozenset({"trunk"})
    agent_pattern: str = r"[1-9]\d{2,3}"
    short_abandon_seconds: float = 3.0
    voicemail_apps: frozenset[str] = frozenset({"voicemail"})
    region: str = "RU"

    def is_agent(self, ext: str) -> bool:
        return _fullmatch(self.agent_pattern, ext)


_PATTERNS: dict[str, re.Pattern[str]] = {}


def _fullmatch(pattern: str, text: str) -> bool:
    compiled = _PATTERNS.get(pattern)
    if compiled is None:
        compiled = _PATTERNS[pattern] = re.compile(pattern)
    return compiled.fullmatch(text) is not None


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


@dataclass(slots=True)
class Call:
    linkedid: str
    origin: str  # uniqueid of the first channel
    started_at: float
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
    #: uniqueid -> time of its first HangupRequest, in arrival order (the first key hung up first).
    hangup_requests: dict[str, float] = field(default_factory=dict)
    voicemail_at: float | None = None
    linkedids: list[str] = field(default_factory=list)
    complete: bool = True
    originate_exten: str | None = None


# ---------------------------------------------------------------------------------------------


def _channel_kind(name: str, config: ModelConfig) -> tuple[str, str | None]:
    """('trunk'|'agent'|'local'|'other', agent extension) from a channel name like PJSIP/101-0000002c."""
    tech, _, rest = name.partition("/")
    if tech == "Local":
        return "local", None
    endpoint = rest.rsplit("-", 1)[0] if "-" in rest else rest
    if endpoint in config.trunks:
        return "trunk", None
    if config.is_agent(endpoint):
        return "agent", endpoint
    return "other", None


def agent_of_channel_name(name: str, config: ModelConfig) -> str | None:
    """The agent behind a channel name, Local channels included (``Local/104@transfer-0001;1``)."""
    kind, agent = _channel_kind(name, config)
    if agent is not None:
        return agent
    if kind == "local":
        exten = name.partition("/")[2].partition("@")[0]
        return exten if config.is_agent(exten) else None
    return None


def _number_of_dial_string(dial_string: str) -> str:
    """``89161234567@trunk`` / ``PJSIP/89161234567@trunk`` / ``104`` -> the number or extension."""
    target = dial_string.rsplit("/", 1)[-1]
    return target.partition("@")[0]


def _clean_name(value: str) -> str | None:
    return None if value in ("", "<unknown>", "unknown") else value


def _clean_number(value: str) -> str | None:
    return None if is_withheld(value) else value


def _duration_seconds(text: str) -> float:
    """``HH:MM:SS`` (CoreShowChannel ``Duration``) in seconds; 0 when unreadable."""
    try:
        h, m, s = text.split(":")
        return int(h) * 3600 + int(m) * 60 + float(s)
    except ValueError:
        return 0.0


def _mixmonitor_files(app_data: str) -> list[str]:
    """File names in ``MixMonitor(<file>,<options>)`` data, incl. ``r(<file>)``/``t(<file>)``."""
    first, _, options = app_data.partition(",")
    files = [first.strip()] if first.strip() else []
    files.extend(m.group(1) for m in re.finditer(r"[rt]\(([^)]+)\)", options))
    return [f.rsplit("/", 1)[-1] for f in files]


class CallBook:
    """Every channel and call in progress. Feed it events with :meth:`apply`."""

    def __init__(self, config: ModelConfig | None = None) -> None:
        self.config = config or ModelConfig()
        self.channels: dict[str, Channel] = {}
        self.calls: dict[str, Call] = {}
        self.call_of: dict[str, str] = {}  # uniqueid -> linkedid of its call
        self.aliases: dict[str, str] = {}  # absorbed linkedid -> the call it joined
        self.names: dict[str, str] = {}  # channel name -> uniqueid (live channels)
        self.snapshot: set[str] | None = None
        #: Agent legs found ringing by the snapshot in progress (their screen-pop waits for its end).
        self.snapshot_rings: list[str] = []
        self.snapshot_at: float = 0.0
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
        handler = HANDLERS.get(msg.get("Event"))
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
        uid = msg["Uniqueid"]
        name = msg.get("Channel")
        lid = self.canonical(msg.get("Linkedid") or uid)
        kind, agent = _channel_kind(name, self.config)
        chan = Channel(
            uniqueid=uid, name=name, kind=kind, agent=agent,
            created_at=t if created_at is None else created_at,
            state=msg.get("ChannelStateDesc", "Down"),
            caller_num=msg.get("CallerIDNum"), caller_name=msg.get("CallerIDName"), exten=msg.get("Exten"),
        )
        effects: list[Effect] = []
        call = self.calls.get(lid)
        if call is None:
            call = Call(linkedid=lid, origin=lid, started_at=chan.created_at, linkedids=[lid])
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
    uid = msg["Uniqueid"]
    if uid in book.channels:  # seen in a resync snapshot already
        book.touched = book.call_of.get(uid)
        return []
    return book._add_channel(msg, book.now)


def _new_state(book: CallBook, msg: AmiMessage) -> list[Effect]:
    found = book._call_of_channel(msg.get("Uniqueid"))
    if found is None:
        return []
    call, chan = found
    t = book.now
    chan.state = msg.get("ChannelStateDesc", chan.state)
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
    found = book._call_of_channel(msg.get("DestUniqueid"))
    if found is None:
        return []
    call, dest = found
    t = book.now
    source_uid = msg.get("Uniqueid")
    dest.dial_string = msg.get("DialString")
    if dest.dialed_at is None:
        dest.dialed_at = t
    dest.dial_status = None
    if not source_uid:
        # Originate: the PBX calls the agent's own phone first (click-to-call).
        dest.by_originate = True
        return []
    effects: list[Effect] = []
    is_origin_source = source_uid == call.origin
    if call.direction is None and dest.uniqueid != call.origin:
        if dest.kind == "trunk":
            call.direction = "outbound"
            call.called = _number_of_dial_string(dest.dial_string) or msg.get("Exten") or None
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
        exten = msg.get("Exten")
        target = exten if exten and exten != "s" and exten != call.did else (
            dest.agent if dest.kind == "agent" else _number_of_dial_string(dest.dial_string))
        if target and target not in call.agents_answered:
            effects.extend(book._transfer(call, target, "redirect", t))
    return effects


def _dial_end(book: CallBook, msg: AmiMessage) -> list[Effect]:
    found = book._call_of_channel(msg.get("DestUniqueid"))
    if found is None:
        return []
    call, dest = found
    status = msg.get("DialStatus")
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
    found = book._call_of_channel(msg.get("Uniqueid"))
    if found is None:
        return []
    call, chan = found
    cause_text = msg.get("Cause")
    cause = int(cause_text) if cause_text.isdigit() else None
    return book._end_channel(call, chan, book.now, cause, msg.get("Cause-txt") or None)


def _hangup_request(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """The far end of a channel hung up (a BYE/CANCEL), as opposed to the PBX ending it."""
    found = book._call_of_channel(msg.get("Uniqueid"))
    if found is not None:
        call, chan = found
        call.hangup_requests.setdefault(chan.uniqueid, book.now)
    return []


def _pickup(book: CallBook, msg: AmiMessage) -> list[Effect]:
    picker = book._call_of_channel(msg.get("Uniqueid"))
    target = book._call_of_channel(msg.get("TargetUniqueid"))
    if picker is None or target is None:
        return []
    effects = book.merge(picker[0].linkedid, target[0].linkedid)
    call, chan = target[0], picker[1]
    chan.dialed_at = chan.dialed_at or book.now
    effects.extend(book._answer(call, chan, book.now))
    return effects


def _blind_transfer(book: CallBook, msg: AmiMessage) -> list[Effect]:
    found = book._call_of_channel(msg.get("TransfereeUniqueid")) or book._call_of_channel(
        msg.get("TransfererUniqueid"))
    if found is None or msg.get("Result", "Success") != "Success":
        return []
    return book._transfer(found[0], msg.get("Extension"), "blind", book.now)


def _attended_transfer(book: CallBook, msg: AmiMessage) -> list[Effect]:
    if msg.get("Result", "Success") != "Success":
        return []
    found = None
    for key in ("TransfereeUniqueid", "OrigTransfererUniqueid", "SecondTransfererUniqueid"):
        found = book._call_of_channel(msg.get(key))
        if found:
            break
    if found is None:
        return []
    config = book.config
    target = None
    for key in ("TransferTargetChannel", "SecondTransfererConnectedLineNum", "SecondTransfererExten"):
        value = msg.get(key)
        if not value:
            continue
        target = agent_of_channel_name(value, config) if "/" in value else (value if config.is_agent(value) else None)
        if target:
            break
    if target is None:
        return []
    return book._transfer(found[0], target, "attended", book.now)


def _new_exten(book: CallBook, msg: AmiMessage) -> list[Effect]:
    app = msg.get("Application")
    if app not in ("VoiceMail", "MixMonitor", "Queue") and app.lower() not in book.config.voicemail_apps:
        return []
    found = book._call_of_channel(msg.get("Uniqueid"))
    if found is None:
        return []
    call = found[0]
    data = msg.get("AppData")
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
    if msg.get("Variable") != "MIXMONITOR_FILENAME":
        return []
    found = book._call_of_channel(msg.get("Uniqueid"))
    if found is None:
        return []
    name = msg.get("Value").rsplit("/", 1)[-1]
    recs = found[0].recordings
    if name and name not in recs:
        # The main (mix) file goes before the -in/-out files the MixMonitor app data listed.
        first_split = next((i for i, r in enumerate(recs) if r.endswith(("-in.wav", "-out.wav"))), len(recs))
        recs.insert(first_split, name)
    return []


def _queue_caller_join(book: CallBook, msg: AmiMessage) -> list[Effect]:
    found = book._call_of_channel(msg.get("Uniqueid"))
    if found is not None:
        found[0].queue = msg.get("Queue") or found[0].queue
    return []


def _queue_caller_abandon(book: CallBook, msg: AmiMessage) -> list[Effect]:
    # Asterisk also says "abandon" when Queue() times out (10-queue-timeout-voicemail); only a
    # caller who hung up while waiting really abandoned: their own channel sent a HangupRequest before
    # this event. A member's 486 or a torn-down Local member may have sent one earlier: not the caller.
    uid = msg.get("Uniqueid")
    found = book._call_of_channel(uid)
    if found is not None and _hung_up_itself(found[0], uid):
        found[0].queue_abandoned = True
    return []


def _agent_called(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """A queue tried a member; with a 503 phone no DialBegin/Ringing may follow (36-...)."""
    found = book._call_of_channel(msg.get("DestUniqueid"))
    if found is None:
        return []
    call, dest = found
    if dest.kind == "agent" and dest.agent is not None and dest.uniqueid != call.origin:
        call.rung.setdefault(dest.agent, book.now)
        if dest.dialed_at is None:
            dest.dialed_at = book.now
    call.queue = call.queue or msg.get("Queue") or None
    return []


def _originate_response(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """Click-to-call's target number; for a failed attempt it may come after the call ended."""
    exten = msg.get("Exten") or None
    found = book._call_of_channel(msg.get("Uniqueid"))
    if found is not None:
        found[0].originate_exten = exten
        return []
    requested = msg.get("Channel")  # e.g. PJSIP/101: the endpoint, not the channel instance
    for name, (call, _) in list(book.awaiting_originate.items()):
        if name == requested or name.startswith(requested + "-"):
            del book.awaiting_originate[name]
            call.originate_exten = exten
            book.touched = call.linkedid
            return [book._ended(call)]
    return []


# -- resync ------------------------------------------------------------------------------------


def _cti_connected(book: CallBook, msg: AmiMessage) -> list[Effect]:
    book.snapshot = set()
    book.snapshot_rings = []
    book.snapshot_at = book.now
    return []


def _cti_tick(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """A heartbeat from the daemon: only lets time-outs inside the model (awaited OriginateResponses) expire."""
    return []


def _cti_clock(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """The PBX's clock, read right after login: resync answers carry no Timestamp of their own."""
    if book.snapshot is not None:
        book.snapshot_at = book.now
    return []


def _core_show_channel(book: CallBook, msg: AmiMessage) -> list[Effect]:
    uid = msg["Uniqueid"]
    t = book.snapshot_at or book.now
    if book.snapshot is not None:
        book.snapshot.add(uid)
    if uid in book.channels:
        book.touched = book.call_of.get(uid)
        return []
    created = t - _duration_seconds(msg.get("Duration"))
    lid = book.canonical(msg.get("Linkedid") or uid)
    is_new_call = lid not in book.calls
    effects = book._add_channel(msg, t, created_at=created)
    call, chan = book.calls[lid], book.channels[uid]
    if is_new_call:
        call.complete = False  # it began before we were connected
    if not call.complete:
        # Its MixMonitor started before we were here: ask the PBX for the file name.
        effects.append(VariableWanted(uid, chan.name, "MIXMONITOR_FILENAME"))
    state = chan.state
    if state == "Ringing":
        chan.rang_at = created
    if uid == call.origin:
        app = msg.get("Application")
        if app == "Queue":
            call.queue = msg.get("ApplicationData").partition(",")[0] or None
        if chan.kind == "agent" and chan.exten:
            ext = chan.exten
            call.direction = "internal" if book.config.is_agent(ext) else "outbound"
            call.called = ext
        return effects
    # A leg of the call: dialled by the origin (AppDial/AppQueue "(Outgoing Line)").
    chan.dialed_at = created
    if chan.kind == "agent" and call.direction != "outbound":
        assert chan.agent is not None
        call.rung.setdefault(chan.agent, created)
        if state == "Up":
            chan.up_at = created
            effects.extend(book._answer(call, chan, created))
        else:
            # Popped once the snapshot is complete: the caller's own channel may be listed after this one.
            book.snapshot_rings.append(uid)
    elif chan.kind == "trunk" and state == "Up" and call.answered_at is None:
        call.direction = "outbound"
        chan.connected_at = created
        call.answered_at = created
        call.called = call.called or _clean_number(chan.caller_num)
        call.answered_by = call.called
    return effects


def _core_show_channels_complete(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """Every channel the snapshot did not list hung up while we were away."""
    seen, book.snapshot = book.snapshot, None
    if seen is None:
        return []
    t = book.snapshot_at or book.now
    effects: list[Effect] = []
    rings, book.snapshot_rings = book.snapshot_rings, []
    for uid in rings:
        found = book._call_of_channel(uid)
        if found is not None:
            effects.extend(_screen_pop(found[0], found[1], t))
    for uid in [u for u in book.channels if u not in seen]:
        found = book._call_of_channel(uid)
        if found is None:
            continue
        call, chan = found
        call.complete = False
        effects.extend(book._end_channel(call, chan, t, None, "ended while the daemon was disconnected"))
    return effects


def _queue_entry(book: CallBook, msg: AmiMessage) -> list[Effect]:
    found = book._call_of_channel(msg.get("Uniqueid"))
    if found is not None and found[0].queue is None:
        found[0].queue = msg.get("Queue") or None
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
    "AgentCalled": _agent_called,
    "OriginateResponse": _originate_response,
    "CtiConnected": _cti_connected,
    "CtiClock": _cti_clock,
    "CtiTick": _cti_tick,
    "CoreShowChannel": _core_show_channel,
    "CoreShowChannelsComplete": _core_show_channels_complete,
    "QueueEntry": _queue_entry,
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
        if "BUSY" in statuses:
            return "busy"
        if statuses and statuses <= {"CHANUNAVAIL", "CONGESTION"}:
            return "failed"
        return "no_answer"
    ring_start = min(call.rung.values(), default=call.started_at)
    caller_left_early = ended_at - min(ring_start, ended_at) < config.short_abandon_seconds
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


def _role(chan: Channel | None) -> str:
    if chan is None:
        return "pbx"
    return {"agent": "agent", "trunk": "customer"}.get(chan.kind, "pbx")


def _hung_up_by(call: Call) -> str:
    """Who ended the call: the first party that hung up on a connected call; for a call nobody took,
    the caller if they hung up, else the PBX (timeout, busy, voicemail done...)."""
    if call.answered_at is None:
        return _role(call.channels.get(call.origin)) if call.origin in call.hangup_requests else "pbx"
    after = [(t, uid) for uid, t in call.hangup_requests.items() if t >= call.answered_at
             and (uid == call.origin or call.channels[uid].connected_at is not None)]
    return _role(call.channels.get(min(after)[1])) if after else "pbx"


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
    if transferred_to is None and direction == "inbound" and len(call.agents_answered) > 1:
        # A second agent took over the same call and no transfer event said so (a consultation
        # leg answered, then the first agent left): the call was handed over.
        transferred_to = call.agents_answered[-1]
    missed_reason = None if answered else _missed_reason(call, direction, end, config)
    if answered:
        outcome = "answered"
    elif direction == "outbound":
        outcome = "failed"
    else:
        outcome = "missed"
    origin = call.channels.get(call.origin)
    legs = tuple(
        LegRecord(
            uniqueid=c.uniqueid, channel=c.name,
            role="caller" if c.uniqueid == call.origin else ("agent" if c.kind == "agent" else
                                                          "external" if c.kind == "trunk" else c.kind),
            agent=c.agent, number=_number_of_dial_string(c.dial_string) if c.dial_string else None,
            started_at=c.created_at, answered_at=c.connected_at or c.up_at, ended_at=c.ended_at,
            status=c.dial_status or ("up" if c.up_at else "ended"), hangup_cause=c.cause,
            hangup_cause_txt=c.cause_txt,
        )
        for c in sorted(call.channels.values(), key=lambda c: c.created_at)
    )
    return CallRecord(
        linkedid=call.linkedid,
        direction=direction,  # type: ignore[arg-type]
        caller=call.caller,
        caller_name=call.caller_name,
        called=called,
        answered=answered,
        answered_by=call.answered_by,
        missed_reason=missed_reason,
        talk_seconds=max(0.0, end - call.answered_at) if call.answered_at is not None else 0.0,
        transferred_to=transferred_to,
        agents_rung_not_answered=rung_not_answered,
        recording=call.recordings[0] if call.recordings else None,
        started_at=call.started_at,
        answered_at=call.answered_at,
        ended_at=ended_at,
        outcome=outcome,  # type: ignore[arg-type]
        # Waiting time: until an agent answered, voicemail took the call, or the call ended.
        ring_seconds=max(0.0, (call.answered_at or call.voicemail_at or end) - call.started_at),
        queue=call.queue,
        did=call.did,
        hangup_cause=origin.cause if origin else None,
        hangup_cause_txt=origin.cause_txt if origin else None,
        hung_up_by=_hung_up_by(call),
        recordings=tuple(call.recordings),
        linkedids=tuple(call.linkedids),
        agents_answered=tuple(call.agents_answered),
        complete=call.complete,
        legs=legs,
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
        agents_rung=record.agents_rung_not_answered,
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
            answered_by=record.answered_by, caller=record.caller,
        ))
    return tuple(out)
