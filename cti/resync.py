"""The resync: what the model learns from a ``CoreShowChannels`` snapshot after an outage. No I/O, no clock.

An outage is any time the model did not see the PBX's events: the AMI connection dropped (``CtiDisconnected``
until the next ``CtiConnected``), or the daemon was down (it rebuilt its calls from the event journal, then
connected). Asterisk does not replay what happened meanwhile; at the reconnect the connection asks
``CoreShowChannels`` (and ``QueueStatus``), and this module reconciles that snapshot with the calls the model
knows. The handlers here are entries of :data:`cti.model.HANDLERS`, fed in this order by
``asterisk.connection``:

``CtiDisconnected``
    The outage starts (its moment is the earliest a change during the outage can have happened).
``CtiConnected``
    A new session: the calls in the book now lived through the outage.
``CtiClock``
    The PBX's clock right before the snapshot: the snapshot's items carry a ``Duration``, no ``Timestamp``.
``CoreShowChannel``
    One live channel. A new one is added (dated by its ``Duration``); every item is kept for the end.
``CoreShowChannelsComplete``
    The reconciliation, call by call (below).
``QueueEntry``
    A caller waiting in a queue: the call's queue, and that the caller waits in it now (every call's ``in_queue``
    is cleared at ``CtiConnected``: the listing says who still waits).

**What a snapshot can tell**, for every channel: its state (``Ringing``, ``Up``), its bridge, its connected
line, its dialplan application and extension, its age. From those the reconciliation derives what happened in
the outage, as the live handlers would have:

* an agent's leg of the call now ``Up`` answered (an inbound or internal call answered by that agent), a trunk
  leg now ``Up`` is the remote party of an outbound call answering, the caller's own channel ``Up`` (a
  click-to-call's agent phone) answered the ``Originate``;
* an agent's call found outbound here (its phone runs an outside number, or a trunk leg of it is up) gets its
  ``CallDialing`` (before its ``CallAnswered`` when answered already), as a live dial would: a CRM shows the agent
  the customer's card for a call the daemon joined mid-way too;
* an agent's leg now ``Ringing`` rang for the call (and gets its screen-pop);
* the caller's channel in ``VoiceMail`` was sent to voicemail, in ``Queue`` waits in that queue;
* the caller's channel of an answered inbound call at another extension than before was redirected there
  (a blind transfer, by AMI ``Redirect`` or the phone's REFER);
* an agent's channel alone in its own call, in one bridge with a channel of another call, picked that call up
  (a directed pickup whose ``Pickup`` event fell in the outage): the two calls are merged;
* a known channel the snapshot does not list hung up (dated at the snapshot: its real end is unknown).

**What it cannot tell**: the exact moment of anything in the outage; who hung up first in a call that ended in
it (``HangupRequest`` is never in a snapshot); the agents whose phones rang and stopped within it; a recording
started and replaced within it. A change in the outage is dated at the earliest moment it can have happened (the
outage's start, or the channel's creation if later), so the talk time of an answer in the outage is never less
than the truth and exceeds it by at most the outage. The recording is asked of the PBX (``VariableWanted`` →
``Getvar MIXMONITOR_FILENAME`` on every listed channel of the call), since its ``VarSet`` may have been lost.

Every call that lived through an outage, or that the snapshot found already in progress, is marked
``complete: false`` in the journal: part of it happened while the daemon was not watching, and its times,
its agents rung and its hang-up side are the best the PBX could tell afterwards, not what was seen.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from asterisk.messages import AmiMessage

from .ami_numbers import duration_seconds
from .effects import CallAnswered, Effect, VariableWanted
from .phones import is_withheld

if TYPE_CHECKING:
    from .model import Call, CallBook, Channel


#: The channel variable that names a MixMonitor recording (``VarSet``, or ``Getvar`` after an outage).
RECORDING_VARIABLE = "MIXMONITOR_FILENAME"
#: ``CoreShowChannel`` ``Application`` of a channel some other channel dialled (``(Outgoing Line)``).
_DIALLED_APPS = frozenset({"AppDial", "AppQueue"})


@dataclass(slots=True)
class ResyncState:
    """The model's memory of the outage and of the snapshot in progress (``CallBook.resync``)."""

    #: Uniqueids the snapshot in progress listed; ``None`` when no snapshot is in progress.
    listed: set[str] | None = None
    #: The snapshot's moment on the PBX's clock.
    at: float = 0.0
    #: When the model stopped seeing the PBX's events, if known (``CtiDisconnected``).
    outage_from: float | None = None
    #: Calls (linkedids) in progress when the session began: they lived through the outage.
    survivors: set[str] = field(default_factory=set)
    #: The snapshot's items, by uniqueid, in the order listed.
    items: dict[str, AmiMessage] = field(default_factory=dict)
    #: Uniqueids the snapshot in progress added to the book (not known before).
    added: set[str] = field(default_factory=set)


# -- the handlers ------------------------------------------------------------------------------


def cti_disconnected(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """The connection ended: from now on the PBX's events are lost until the next snapshot."""
    if book.resync.outage_from is None:
        book.resync.outage_from = book.now
    return []


def cti_connected(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """A new session: a snapshot follows; every call in the book lived through an outage."""
    state = book.resync
    state.listed = set()
    state.items = {}
    state.added = set()
    state.at = book.now
    state.survivors = set(book.calls)
    for call in book.calls.values():
        # Who waits in a queue now is what the QueueStatus after the snapshot lists (``queue_entry``): a caller
        # who left a queue during the outage (answered, hung up, sent to voicemail) must not stay waiting.
        call.in_queue = False
    return []


def cti_clock(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """The PBX's clock, read right after login: resync answers carry no Timestamp of their own."""
    if book.resync.listed is not None:
        book.resync.at = book.now
    return []


def core_show_channel(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """One live channel: a new one joins the book (dated by its age); the item is reconciled at the end."""
    state = book.resync
    uid = msg["Uniqueid"]
    if state.listed is not None:
        state.listed.add(uid)
        state.items[uid] = msg
    if uid in book.channels:
        book.touched = book.call_of.get(uid)
        return []
    t = state.at or book.now
    lid = book.canonical(msg.get("Linkedid") or uid)
    is_new_call = lid not in book.calls
    effects = book._add_channel(msg, t, created_at=t - duration_seconds(msg.get("Duration")))
    call = book.calls[lid]
    if is_new_call:
        call.complete = False  # it began before we were connected
    if uid == call.origin and call.direction == "inbound" and msg.get("Exten") == "s":
        call.did = call.called = None  # in a subroutine (Gosub rec,s,1): its DID shows when it dials
    state.added.add(uid)
    if state.listed is None:  # an item outside a snapshot (a listing asked by someone else): reconcile now
        effects.extend(_reconcile_channels(book, [(uid, msg)], t))
    return effects


def core_show_channels_complete(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """The snapshot is whole: reconcile every call with it, then end the channels it did not list."""
    state = book.resync
    seen, state.listed = state.listed, None
    if seen is None:
        return []
    t = state.at or book.now
    for lid in state.survivors:
        call = book.calls.get(book.canonical(lid))
        if call is not None:
            call.complete = False
    effects: list[Effect] = []
    effects.extend(_merge_pickups(book, state.items))
    effects.extend(_reconcile_channels(book, list(state.items.items()), t))
    for uid in state.items:
        found = book._call_of_channel(uid)
        if found is not None and not found[0].complete:
            # Its MixMonitor's VarSet may have been lost (or sent before we were here): ask the PBX.
            effects.append(VariableWanted(uid, found[1].name, RECORDING_VARIABLE))
    for uid in [u for u in book.channels if u not in seen]:
        found = book._call_of_channel(uid)
        if found is None:
            continue
        call, chan = found
        call.complete = False
        effects.extend(book._end_channel(call, chan, t, None, "ended while the daemon was disconnected"))
    state.items, state.added, state.survivors, state.outage_from = {}, set(), set(), None
    return effects


def queue_entry(book: CallBook, msg: AmiMessage) -> list[Effect]:
    """A caller waiting in a queue (``QueueStatus``): the call's queue, if not known yet, and the caller waiting in
    it now (``QueueStatus`` lists only the callers still waiting, not those a member took)."""
    found = book._call_of_channel(msg.get("Uniqueid"))
    if found is not None:
        call = found[0]
        if call.queue is None:
            call.queue = msg.get("Queue") or None
        call.in_queue = call.answered_at is None
    return []


#: The entries of :data:`cti.model.HANDLERS` this module answers.
RESYNC_HANDLERS = {
    "CtiDisconnected": cti_disconnected,
    "CtiConnected": cti_connected,
    "CtiClock": cti_clock,
    "CoreShowChannel": core_show_channel,
    "CoreShowChannelsComplete": core_show_channels_complete,
    "QueueEntry": queue_entry,
}


# -- the reconciliation ------------------------------------------------------------------------


def _earliest(book: CallBook, chan: Channel, added: bool) -> float:
    """The earliest moment a change seen in the snapshot can have happened to this channel."""
    if added:
        return chan.created_at
    start = book.resync.outage_from
    return max(chan.created_at, start if start is not None else book.resync.at or book.now)


def _reconcile_channels(book: CallBook, items: Iterable[tuple[str, AmiMessage]], t: float) -> list[Effect]:
    """Each listed channel's present state against what the model knew; ringing legs popped last, once the
    caller's own channel (which may be listed after them) has given the call its facts."""
    from .model import _screen_pop  # the model imports this module for its table; the pop rule stays there

    effects: list[Effect] = []
    rings: list[tuple[Call, Channel, float]] = []
    for uid, item in items:
        found = book._call_of_channel(uid)
        if found is None:
            continue
        call, chan = found
        added = uid in book.resync.added
        earliest = _earliest(book, chan, added)
        if uid == call.origin:
            effects.extend(_reconcile_origin(book, call, chan, item, earliest, added))
        else:
            rang = chan.rang_at is None
            effects.extend(_reconcile_leg(book, call, chan, item, earliest))
            if rang and chan.rang_at is not None:
                rings.append((call, chan, t))
    for call, chan, at in rings:
        effects.extend(_screen_pop(call, chan, at))
    return effects


def _reconcile_origin(book: CallBook, call: Call, chan: Channel, item: AmiMessage, earliest: float,
                      added: bool) -> list[Effect]:
    """The caller's own channel: answered (a click-to-call's agent phone), in a queue, in voicemail, redirected."""
    effects: list[Effect] = []
    state = item.get("ChannelStateDesc") or chan.state
    chan.state = state
    if state == "Up" and chan.up_at is None:
        chan.up_at = earliest
    app, exten = item.get("Application"), item.get("Exten")
    _note_application(book, call, app, item.get("ApplicationData"), earliest)
    if chan.kind == "agent" and exten and exten != "s" and call.direction is None:
        # An agent's phone calling out (or a click-to-call's) whose dial fell in the outage: the extension it
        # runs is the number dialled.
        call.direction = "internal" if book.config.is_agent(exten) else "outbound"
        call.called = exten
        if call.direction == "outbound":
            effects.append(book._dialing(call, earliest))
    elif (not added and call.direction == "inbound" and call.answered_at is not None and exten
          and exten not in ("s", chan.exten, call.did) and exten not in call.agents_answered):
        # The caller's channel runs another extension after an agent took it: a Redirect or a phone's REFER
        # (13-blind-transfer-redirect, 31-phone-blind-transfer-refer) whose events fell in the outage.
        effects.extend(book._transfer(call, exten, "redirect", earliest))
    return effects


def _reconcile_leg(book: CallBook, call: Call, chan: Channel, item: AmiMessage, earliest: float) -> list[Effect]:
    """A leg of the call (dialled by the caller's side): rang, or answered, while the model was away."""
    state = item.get("ChannelStateDesc") or chan.state
    chan.state = state
    _note_application(book, call, item.get("Application"), item.get("ApplicationData"), earliest)
    if chan.dialed_at is None:
        chan.dialed_at = earliest
    effects: list[Effect] = []
    if chan.kind == "agent" and call.direction != "outbound":
        assert chan.agent is not None
        call.rung.setdefault(chan.agent, chan.rang_at or chan.dialed_at)
        if state == "Ringing" and chan.rang_at is None:
            chan.rang_at = earliest
        if state == "Up":
            if chan.up_at is None:
                chan.up_at = earliest
            if chan.connected_at is None:
                effects.extend(book._answer(call, chan, earliest))
    elif chan.kind == "trunk" and state == "Up" and call.direction in (None, "outbound"):
        if chan.up_at is None:
            chan.up_at = earliest
        if call.answered_at is None:
            # The remote party of an outbound call answered (its trunk leg is up).
            found_outbound = call.direction is None
            call.direction = "outbound"
            chan.connected_at = earliest
            call.answered_at = earliest
            call.called = call.called or (None if is_withheld(chan.caller_num) else chan.caller_num)
            if found_outbound:  # its dial fell in the outage too: the CRMs learn it is outbound, then answered
                effects.append(book._dialing(call, earliest))
            call.answered_by = call.called
            effects.append(CallAnswered(call.linkedid, call.called or "", earliest))
    elif chan.kind == "trunk" and state == "Up" and chan.connected_at is None:
        chan.connected_at = earliest  # an outside number a transferred inbound call reached
    return effects


def _note_application(book: CallBook, call: Call, app: str, data: str, earliest: float) -> None:
    """What the application a channel runs says: the queue it waits in, or voicemail (with ``b``, Asterisk's
    busy greeting: the phones it dialled were busy, 04-direct-busy, when their ``DialEnd`` was lost)."""
    if app == "Queue" and call.queue is None:
        call.queue = data.partition(",")[0] or None
    elif app.lower() in book.config.voicemail_apps and not call.voicemail:
        call.voicemail = True
        call.voicemail_at = earliest
        if "b" in data.partition(",")[2].partition(",")[0]:
            for leg in call.channels.values():
                if leg.kind == "agent" and leg.uniqueid != call.origin and leg.connected_at is None:
                    leg.dial_status = leg.dial_status or "BUSY"


def _merge_pickups(book: CallBook, items: dict[str, AmiMessage]) -> list[Effect]:
    """An agent's channel alone in its own call, bridged with a channel of another call, picked that call up
    (29-directed-pickup: the picker's channel keeps its own linkedid while it talks): merge it in, as the
    ``Pickup`` event would have."""
    by_bridge: dict[str, list[str]] = {}
    for uid, item in items.items():
        if item.get("BridgeId"):
            by_bridge.setdefault(item["BridgeId"], []).append(uid)
    effects: list[Effect] = []
    for uids in by_bridge.values():
        calls = {book.call_of[u] for u in uids if u in book.call_of}
        if len(calls) < 2:
            continue
        for uid in uids:
            picker = book.calls.get(book.call_of.get(uid, ""))
            if picker is None or picker.origin != uid or len(picker.live) != 1:
                continue
            if picker.channels[uid].kind != "agent":
                continue
            others = [book.call_of[u] for u in uids if book.call_of.get(u) not in (None, picker.linkedid)]
            if others:
                effects.extend(book.merge(picker.linkedid, others[0]))
    return effects
