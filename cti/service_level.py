"""What a queue call counts for in the supervisor's figures: one definition for the live view, the wallboard and
the alerts, so the service level an alert fires on is the one the wallboard shows.

A *queue call* is a finished inbound call that went into a queue (``CallRecord.queue``). Its **wait** is the
time from the call's arrival at the PBX to its answer, or to its end when nobody answered (what the caller
lived, greeting included: the same clock the short-abandon rule in ``cti/model.py`` uses).

**Service level** within T seconds = answered within T / (answered + not answered), over the queue calls of a
period, where **short abandons** (the caller hung up within the PBX's ``short_abandon_seconds``: a wrong
number, not a lost customer) count in neither. A call not answered counts against the service level whatever
ended it (abandon, time-out to voicemail, no agent): the caller was not served. ``None`` when no call counts:
"no calls" is not "0 %" and must not raise an alert.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from .effects import CallContext
from .records import CallRecord

#: Missed reasons of a caller who hung up waiting (the queue's "abandoned"); a time-out to voicemail or a call
#: that found no agent is not answered but was not abandoned by the caller.
ABANDON_REASONS = frozenset({"abandoned", "caller_hangup_ringing"})


@dataclass(frozen=True, slots=True)
class QueueCall:
    """A finished queue call reduced to what the queue figures count."""

    queue: str
    pbx: str
    arrived_at: float
    wait_seconds: float
    answered: bool
    abandoned: bool  # the caller hung up waiting, after the short-abandon threshold
    short_abandon: bool
    talk_seconds: float
    answered_by: str | None


def queue_call(record: CallRecord) -> QueueCall | None:
    """The queue figures' view of a journal row; ``None`` for a call that went into no queue."""
    if record.queue is None or record.direction != "inbound":
        return None
    end = record.answered_at if record.answered and record.answered_at is not None else record.ended_at
    wait = max(0.0, (end if end is not None else record.started_at) - record.started_at)
    return QueueCall(
        queue=record.queue, pbx=record.pbx, arrived_at=record.started_at, wait_seconds=wait,
        answered=record.answered, abandoned=not record.answered and record.missed_reason in ABANDON_REASONS,
        short_abandon=record.missed_reason == "short_abandon", talk_seconds=record.talk_seconds,
        answered_by=record.answered_by,
    )


def service_level(calls: Iterable[QueueCall], within: float) -> float | None:
    """The share (0..1) of the counted calls answered within ``within`` seconds; ``None`` when none counts."""
    counted = served = 0
    for call in calls:
        if call.short_abandon:
            continue
        counted += 1
        if call.answered and call.wait_seconds <= within:
            served += 1
    return served / counted if counted else None


@dataclass(frozen=True, slots=True)
class WaitingCaller:
    """A caller waiting in a queue now: the supervisor's "waiting" column and the long-wait alert."""

    pbx: str
    queue: str
    linkedid: str
    caller: str | None
    caller_name: str | None
    since: float  # the call's arrival at the PBX: the same clock as ``QueueCall.wait_seconds``


def waiting_callers(calls: Iterable[CallContext]) -> list[WaitingCaller]:
    """The callers of these calls in progress who wait in a queue now, longest-waiting first.

    Waiting is the model's ``in_queue`` (``QueueCallerJoin`` until ``QueueCallerLeave``, or a resync's
    ``QueueEntry``): a caller the queue sent on to voicemail after its time-out still has a ``queue`` but no longer
    waits (10-queue-timeout-voicemail), and one whose call was answered never does.
    """
    out = [
        WaitingCaller(pbx=c.pbx, queue=c.queue, linkedid=c.linkedid, caller=c.caller, caller_name=c.caller_name,
                      since=c.started_at)
        for c in calls
        if c.in_queue and c.queue is not None and c.direction == "inbound" and c.answered_at is None and c.live
    ]
    out.sort(key=lambda w: w.since)
    return out
