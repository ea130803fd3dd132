"""An AMI outage over a recorded trace: the model fed the trace with a gap, and what its journal must then say.

The PBX side is the replay PBX's own state code (:class:`asterisk.replay.PbxState`): it is fed every event of
the trace, the model only those outside the outage ``[k, j)``; at the reconnect the model gets what the daemon's
connection would hand it (``CtiDisconnected`` … ``CtiConnected``, ``CtiClock``, the ``CoreShowChannels`` and
``QueueStatus`` answers made by that state at that moment, ``Getvar`` answers for its ``VariableWanted``).

:func:`check` holds the journal against ``truth.json``. What the PBX cannot tell after an outage is decided from
the trace's own events, never listed by hand:

* a call whose every event fell in the outage never reached the daemon: it may be missing;
* a call that ended in the outage: present once, ``complete: false``, its caller right, and its answer right if
  the answer was seen before the outage (or if nobody answered); how it ended is not in any snapshot;
* ``missed_reason`` of an unanswered call is exact unless the one event that decides it fell in the outage: the
  caller's own ``HangupRequest`` (who hung up is in no snapshot), a leg's final ``DialEnd`` that was not an
  answer (no answer, cancelled; busy only if that leg's ``Hangup``, cause 17, fell in the outage too), or
  ``QueueCallerAbandon``;
* a directed pickup whose ``Pickup`` fell in the outage before the picker was bridged with the caller: nothing
  the daemon reads ties the two channels together afterwards (their ``BridgeEnter`` is not among the events it
  subscribes to), so the answer is not checked, and the picker's channel may be journaled as a call of its own;
* the recording is the one truth.json names, or, if its ``VarSet`` fell in the outage and the PBX replaced it
  with another file before the reconnect (35-blind-transfer-external), that other file (what ``Getvar`` tells).

Every other field the issue lists is exact: ``answered``, ``answered_by``, ``outcome``, ``transferred_to``,
``caller``, ``called``; talk time within 1 s for a call seen whole and 5 s for one marked incomplete; no call
doubled, none left in progress, none invented; a call that lived through the outage is ``complete: false``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from asterisk.messages import AmiMessage
from asterisk.replay import PbxState, Trace
from cti.effects import CallEnded, VariableWanted
from cti.model import CallBook, ModelConfig
from cti.records import CallRecord

#: Fields compared exactly for a call the outage did not end.
EXACT = ("answered", "answered_by", "missed_reason", "transferred_to", "caller", "called")
#: Talk-time slack (seconds): a call seen whole, and one marked incomplete (its answer time estimated).
TALK_SLACK_COMPLETE = 1.0
TALK_SLACK_INCOMPLETE = 5.0

Window = Callable[[list[AmiMessage], list[float], int], int]


def one_read(events: list[AmiMessage], times: list[float], k: int) -> int:
    """The smallest outage: the one TCP read (the events recorded at the same instant) starting at ``k``."""
    j = k
    while j < len(events) and times[j] == times[k]:
        j += 1
    return j


def seconds(span: float) -> Window:
    """Every event within ``span`` recorded seconds of event ``k``: a reconnect after a short drop."""

    def window(events: list[AmiMessage], times: list[float], k: int) -> int:
        j = k
        while j < len(events) and times[j] < times[k] + span:
            j += 1
        return j

    return window


@dataclass
class Outcome:
    records: list[CallRecord] = field(default_factory=list)
    left_in_progress: list[str] = field(default_factory=list)
    #: The outage: events ``[k, j)`` happened on the PBX while the daemon was away.
    k: int = 0
    j: int = 0


def _cti(event: str, at: float) -> AmiMessage:
    return AmiMessage(headers=[("Event", event), ("PbxTime", f"{at:.6f}")])


@dataclass(frozen=True)
class _PbxMoment:
    """What the PBX can tell after the first ``i`` events of a trace: its clock, its answers to the resync actions
    at that clock, and the variables ``Getvar`` reads (of the channels still up)."""

    clock: float
    core_show_channels: list[AmiMessage]
    queue_status: list[AmiMessage]
    variables: dict[str, dict[str, str]]


_TIMELINES: dict[str, list[_PbxMoment]] = {}


def _pbx_timeline(trace: Trace) -> list[_PbxMoment]:
    """The PBX side of a trace, moment by moment (``[i]``: after events ``[0, i)``), made once per trace.

    It is the same whatever outage the daemon has (the PBX goes on either way), so a sweep over every ``k`` reads
    it instead of feeding the replay PBX's state code the whole trace again for each ``k``.
    """
    if trace.name not in _TIMELINES:
        pbx = PbxState()
        pbx.seed(trace.snapshot, lambda ago: trace.epoch0 - ago)
        clock = trace.epoch0

        def moment() -> _PbxMoment:
            up = {c.fields.get("Channel") for c in pbx.channels.values()}
            return _PbxMoment(clock, pbx.core_show_channels(clock, []), pbx.queue_status(clock, []),
                              {name: dict(values) for name, values in pbx.variables.items() if name in up})

        timeline = [moment()]
        for event in trace.events:
            pbx.apply(event.message, clock)
            if "Timestamp" in event.message:
                clock = event.message.time
            timeline.append(moment())
        _TIMELINES[trace.name] = timeline
    return _TIMELINES[trace.name]


def replay_with_outage(trace: Trace, k: int, window: Window, config: ModelConfig | None = None) -> Outcome:
    """The model fed ``trace`` with the events ``[k, window(k))`` lost, and a resync at the reconnect."""
    events = [e.message for e in trace.events]
    times = [e.t for e in trace.events]
    timeline = _pbx_timeline(trace)
    book = CallBook(config or ModelConfig())
    out = Outcome(k=k)
    happened = 0  # events [0, happened) have happened on the PBX

    def feed(msg: AmiMessage) -> None:
        for effect in book.apply(msg):
            if isinstance(effect, CallEnded):
                out.records.append(effect.record)
            elif isinstance(effect, VariableWanted):
                value = timeline[happened].variables.get(effect.channel, {}).get(effect.variable, "")
                if value:  # a channel that hung up answers "No such channel": nothing to feed
                    feed(AmiMessage(headers=[("Event", "CtiVariable"), ("Uniqueid", effect.uniqueid),
                                             ("Variable", effect.variable), ("Value", value)]))

    def connect() -> None:
        now = timeline[happened]
        feed(_cti("CtiConnected", now.clock))
        feed(_cti("CtiClock", now.clock))
        for item in now.core_show_channels:
            feed(item)
        feed(AmiMessage(headers=[("Event", "CoreShowChannelsComplete"), ("EventList", "Complete"),
                                 ("ListItems", str(len(now.core_show_channels)))]))
        for item in now.queue_status:
            feed(item)

    connect()
    for i in range(k):
        happened = i + 1
        feed(events[i])
    out.j = j = window(events, times, k) if k < len(events) else k
    if k < len(events):
        feed(_cti("CtiDisconnected", timeline[happened].clock))
        happened = j
        connect()
    for i in range(j, len(events)):
        happened = i + 1
        feed(events[i])
    feed(_cti("CtiTick", timeline[happened].clock + 60))  # the daemon's heartbeat: time-outs inside the model expire
    out.left_in_progress = list(book.calls)
    return out


# -- the oracle --------------------------------------------------------------------------------------------


def _outcome_of(truth: dict[str, Any]) -> str:
    if truth["answered"]:
        return "answered"
    return "failed" if truth["direction"] == "outbound" else "missed"


_EVENTS_OF: dict[tuple[str, str], list[int]] = {}


def _events_of(trace: str, events: list[AmiMessage], linkedid: str) -> list[int]:
    """Indexes of one call's events: its linkedid, or a channel that joined it later (a pickup's picker)."""
    key = (trace, linkedid)
    if key not in _EVENTS_OF:
        uids = {m.get("Uniqueid") for m in events if m.get("Linkedid") == linkedid}
        _EVENTS_OF[key] = [i for i, m in enumerate(events) if m.get("Linkedid") == linkedid
                           or m.get("Uniqueid") in uids or m.get("TargetLinkedid") == linkedid]
    return _EVENTS_OF[key]


def _decides_the_reason(msg: AmiMessage, caller: str, lost: list[AmiMessage]) -> bool:
    name = msg.event
    return ((name == "HangupRequest" and msg.get("Uniqueid") == caller)
            or (name == "DialEnd" and msg.get("DialStatus") not in ("ANSWER", "") and not _told_by_hangup(msg, lost))
            or name == "QueueCallerAbandon")


def _told_by_hangup(dial_end: AmiMessage, lost: list[AmiMessage]) -> bool:
    """A ``BUSY`` whose leg hung up after the outage: that ``Hangup``'s cause 17 (user busy) tells it as well."""
    leg = dial_end.get("DestUniqueid")
    return dial_end.get("DialStatus") == "BUSY" and not any(
        m.event == "Hangup" and m.get("Uniqueid") == leg for m in lost)


def _pickup_untied(events: list[AmiMessage], indexes: list[int], k: int, j: int) -> bool:
    """A ``Pickup`` fell in the outage and the picker was not yet bridged at the reconnect."""
    for i in indexes:
        if k <= i < j and events[i].event == "Pickup":
            picker = events[i].get("Uniqueid")
            return not any(m.event == "BridgeEnter" and m.get("Uniqueid") == picker for m in events[i:j])
    return False


def _recordings_allowed(events: list[AmiMessage], indexes: list[int], want: str | None, k: int, j: int
                        ) -> set[str | None]:
    files = [(i, events[i].get("Value").rsplit("/", 1)[-1]) for i in indexes
             if events[i].event == "VarSet" and events[i].get("Variable") == "MIXMONITOR_FILENAME"]
    allowed: set[str | None] = {want}
    if not files:
        allowed.add(None)  # named before the recording began (25-resync-midcall): no VarSet, nothing to ask
    if any(name == want and k <= i < j for i, name in files):
        allowed |= {name for i, name in files if name != want and i < j}
    return allowed


def check(trace: Trace, truth: list[dict[str, Any]], got: Outcome) -> list[str]:
    """What is wrong with the journal ``got`` after the outage ``[got.k, got.j)``; empty when right."""
    events = [e.message for e in trace.events]
    k, j = got.k, got.j
    problems = [f"left in progress: {got.left_in_progress}"] if got.left_in_progress else []
    by_id: dict[str, list[CallRecord]] = {}
    for record in got.records:
        for linkedid in dict.fromkeys((record.linkedid, *record.linkedids)):
            by_id.setdefault(linkedid, []).append(record)
    known = {t["linkedid"] for t in truth}
    # An untied pickup's picker is, to the daemon, a call of its own from the picker's phone.
    known |= {events[i].get("Linkedid") for i in range(k, j) if events[i].event == "Pickup"
              and _pickup_untied(events, [i], k, j)}
    problems += [f"{r.linkedid}: no such call in truth.json" for r in got.records if r.linkedid not in known]
    for want in truth:
        lid = want["linkedid"]
        indexes = _events_of(trace.name, events, lid)
        # The call lives from its first event to its last channel's Hangup (events after it change nothing).
        hangups = [i for i in indexes if events[i].event == "Hangup"]
        first, last = (indexes[0], hangups[-1] if hangups else indexes[-1]) if indexes else (-1, -1)
        records = by_id.get(lid, [])
        if len(records) > 1:
            problems.append(f"{lid}: journaled {len(records)} times")
            continue
        if not records:
            if not (k <= first and last < j):
                problems.append(f"{lid}: missing from the journal")
            continue
        row = records[0]
        touched = any(k <= i < j for i in indexes) or (first < k and last >= j)
        if k <= last < j:  # it ended in the outage
            if row.complete:
                problems.append(f"{lid}: ended in the outage, yet complete")
            if row.caller != want["caller"]:
                problems.append(f"{lid}: caller {row.caller!r} != {want['caller']!r}")
            answer_seen = any(i < k and ((events[i].event == "DialEnd" and events[i].get("DialStatus") == "ANSWER")
                                         or events[i].event == "Pickup") for i in indexes)
            if answer_seen or not want["answered"]:
                for name in ("answered", "answered_by"):
                    if getattr(row, name) != want[name]:
                        problems.append(f"{lid}: {name} {getattr(row, name)!r} != {want[name]!r}")
            continue
        lost = [events[i] for i in indexes if k <= i < j]
        for name in EXACT:
            if name == "missed_reason" and any(_decides_the_reason(m, lid, lost) for m in lost):
                if (row.missed_reason is None) != (want["missed_reason"] is None):
                    problems.append(f"{lid}: missed_reason {row.missed_reason!r} != {want['missed_reason']!r}")
                continue
            if name in ("answered", "answered_by", "missed_reason") and _pickup_untied(events, indexes, k, j):
                continue
            if getattr(row, name) != want[name]:
                problems.append(f"{lid}: {name} {getattr(row, name)!r} != {want[name]!r}")
        if not _pickup_untied(events, indexes, k, j):
            if row.outcome != _outcome_of(want):
                problems.append(f"{lid}: outcome {row.outcome} != {_outcome_of(want)}")
            slack = TALK_SLACK_COMPLETE if row.complete else TALK_SLACK_INCOMPLETE
            if abs(row.talk_seconds - want["talk_seconds"]) > slack:
                problems.append(f"{lid}: talk {row.talk_seconds:.2f} s != {want['talk_seconds']} "
                                f"(complete: {row.complete})")
        if row.recording not in _recordings_allowed(events, indexes, want["recording"], k, j):
            problems.append(f"{lid}: recording {row.recording!r} != {want['recording']!r}")
        if touched and first < k and row.complete:
            problems.append(f"{lid}: lived through the outage, yet complete")
    return problems
