"""Finished facts: the call journal row, the missed-call entry, the per-agent miss.

These are frozen values produced by the call model when a call ends (``CallEnded.record``) and read
back from the store. Field names follow ``truth.json`` of the AMI traces (see
``../shared/ami-traces/README.md``), which is also the ``cti calls --format json`` interface.
Times are epoch seconds (float) inside; they become ISO 8601 with an offset only at the edges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo
from typing import Any, Literal

from .frozen import fast_init

Direction = Literal["inbound", "outbound", "internal"]
Outcome = Literal["answered", "missed", "failed"]
MissedReason = Literal[
    "no_answer", "busy", "caller_hangup_ringing", "short_abandon", "abandoned", "voicemail", "unavailable",
    "failed",
]
#: The id of the PBX a single-PBX site's calls belong to: a ``[pbx]`` section without ``id``, and every row an
#: older store held before PBXs had ids (a linkedid is unique only within its PBX: the journal's key is the pair).
DEFAULT_PBX = "main"

LegStatus = Literal["ringing", "up", "answered", "cancelled", "no_answer", "busy", "unavailable", "failed",
                    "answered_elsewhere", "ended"]


@fast_init  # built at every call's end (cti/frozen.py)
@dataclass(frozen=True, slots=True)
class LegRecord:
    """One channel of a call, as the journal keeps it."""

    uniqueid: str
    channel: str
    role: str  # caller | agent | external | local | pbx
    agent: str | None
    number: str | None
    started_at: float
    answered_at: float | None
    ended_at: float | None
    status: str
    hangup_cause: int | None
    hangup_cause_txt: str | None


@fast_init  # built at every call's end (cti/frozen.py)
@dataclass(frozen=True, slots=True)
class CallRecord:
    """A call (one Asterisk Linkedid, or several merged by a pickup) after it ended."""

    linkedid: str
    direction: Direction
    caller: str | None
    caller_name: str | None
    called: str | None
    answered: bool
    answered_by: str | None
    missed_reason: str | None
    talk_seconds: float
    transferred_to: str | None
    agents_rung_not_answered: tuple[str, ...]
    recording: str | None
    started_at: float
    answered_at: float | None
    ended_at: float | None
    outcome: Outcome
    ring_seconds: float = 0.0
    queue: str | None = None
    did: str | None = None
    hangup_cause: int | None = None
    hangup_cause_txt: str | None = None
    hung_up_by: str | None = None  # caller | agent | pbx
    recordings: tuple[str, ...] = ()
    linkedids: tuple[str, ...] = ()
    agents_answered: tuple[str, ...] = ()
    complete: bool = True  # False when part of the call happened while the daemon was not connected
    legs: tuple[LegRecord, ...] = field(default=(), compare=False)
    pbx: str = DEFAULT_PBX  # the short id of the PBX the call went through (config ``[[pbx]] id``)

    def to_json(self, tz: tzinfo | None = None) -> dict[str, Any]:
        """The ``cti calls --format json`` object: truth.json's fields plus times and outcome."""
        return {
            "linkedid": self.linkedid,
            "direction": self.direction,
            "caller": self.caller,
            "caller_name": self.caller_name,
            "called": self.called,
            "answered": self.answered,
            "answered_by": self.answered_by,
            "missed_reason": self.missed_reason,
            "talk_seconds": round(self.talk_seconds, 3),
            "transferred_to": self.transferred_to,
            "agents_rung_not_answered": list(self.agents_rung_not_answered),
            "recording": self.recording,
            "started_at": iso_time(self.started_at, tz),
            "answered_at": iso_time(self.answered_at, tz),
            "ended_at": iso_time(self.ended_at, tz),
            "outcome": self.outcome,
            "ring_seconds": round(self.ring_seconds, 3),
            "queue": self.queue,
            "did": self.did,
            "hangup_cause": self.hangup_cause,
            "hangup_cause_txt": self.hangup_cause_txt,
            "hung_up_by": self.hung_up_by,
            "recordings": list(self.recordings),
            "agents_answered": list(self.agents_answered),
            "complete": self.complete,
            "linkedids": list(self.linkedids),
            "pbx": self.pbx,
        }


@fast_init  # built at the end of every call it concerns (cti/frozen.py)
@dataclass(frozen=True, slots=True)
class AgentMiss:
    """An agent whose phone rang for a call and who did not answer it (kept per agent)."""

    linkedid: str
    agent: str
    rang_at: float
    ring_seconds: float
    reason: str  # no_answer | busy | unavailable | answered_elsewhere | caller_hung_up
    answered_by: str | None  # who took the call instead, if anyone
    caller: str | None
    pbx: str = DEFAULT_PBX

    def to_json(self, tz: tzinfo | None = None) -> dict[str, Any]:
        return {
            "linkedid": self.linkedid, "agent": self.agent, "rang_at": iso_time(self.rang_at, tz),
            "ring_seconds": round(self.ring_seconds, 3), "reason": self.reason,
            "answered_by": self.answered_by, "caller": self.caller, "pbx": self.pbx,
        }


MissedStatus = Literal["open", "closed"]
ClosedBy = Literal["callback", "called_again", "manual"]


@fast_init  # built at the end of every call it concerns (cti/frozen.py)
@dataclass(frozen=True, slots=True)
class MissedEntry:
    """A row of the missed-call register, with its call-back state."""

    linkedid: str
    caller: str | None  # as the PBX presented it
    caller_key: str | None  # normalised number used to match call-backs; None when withheld
    caller_name: str | None
    called: str | None
    queue: str | None
    reason: str
    missed_at: float
    ring_seconds: float
    agents_rung: tuple[str, ...] = ()
    id: int | None = None
    status: MissedStatus = "open"
    closed_at: float | None = None
    closed_by: ClosedBy | None = None
    closed_linkedid: str | None = None
    comment: str | None = None
    pbx: str = DEFAULT_PBX  # the register is per PBX: a call-back closes only its own PBX's entries

    def to_json(self, tz: tzinfo | None = None) -> dict[str, Any]:
        return {
            "id": self.id, "linkedid": self.linkedid, "caller": self.caller, "caller_name": self.caller_name,
            "called": self.called, "queue": self.queue, "reason": self.reason,
            "missed_at": iso_time(self.missed_at, tz), "ring_seconds": round(self.ring_seconds, 3),
            "agents_rung": list(self.agents_rung), "status": self.status,
            "closed_at": iso_time(self.closed_at, tz), "closed_by": self.closed_by,
            "closed_linkedid": self.closed_linkedid, "comment": self.comment, "pbx": self.pbx,
        }


def iso_time(epoch: float | None, tz: tzinfo | None = None) -> str | None:
    """ISO 8601 with an offset (milliseconds), in ``tz`` or the machine's local zone."""
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz).astimezone(tz).isoformat(timespec="milliseconds")
