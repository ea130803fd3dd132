"""The generic webhook's planner (issue 16, ``docs/crm.md`` "Generic webhook"): one JSON event per CRM event, pure.

For everything that is not Bitrix24, amoCRM, Zammad or 1C: a receiver gets each thing that happened to a call, in
the call's order, as one ``POST`` (``companion/crm/webhook.py`` signs and sends it). Nothing here needs an earlier
answer, so the planner keeps no state of its own: it only passes on what the CRM that started a call
(``started_by``) said about it.

The payload's shape is documented in ``docs/crm.md`` and is the receiver's contract: keys are only ever added. Times
are ISO 8601 in UTC; numbers as the journal has them; a recording as a signed link filled in when the event is sent
(``{"$recording": ...}``: ``companion/crm/references.py``), never a path.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from cti.records import CallRecord
from cti.transcripts import Transcript

from . import CrmCallEvent, CrmName, CrmRequest, Plan

#: The request kind every webhook item has (``X-CTI-Event`` carries the event's own kind).
EVENT = "event"


def iso(at: float | None) -> str | None:
    """Epoch seconds as ISO 8601 in UTC with milliseconds (``2026-11-24T00:16:00.120Z``)."""
    if at is None:
        return None
    return datetime.fromtimestamp(at, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class WebhookPlanner:
    """``users``: extension → the receiver's user id (``[crm.webhook] users``), sent beside each extension."""

    name: CrmName = "webhook"

    def __init__(self, users: Mapping[str, str | int] | None = None) -> None:
        self.users = dict(users or {})

    def plan(self, state: dict[str, Any], event: CrmCallEvent) -> Plan:
        if event.kind == "ended" and state.get("ended"):
            # Told already: a daemon killed after the push queued the end but before the journal kept it rebuilds the
            # call at its restart, and the resync ends it a second time.
            return Plan(state=None)
        payload = self.payload(state, event)
        ended = {**state, "ended": True} if event.kind == "ended" else None
        return Plan(state=ended, requests=(CrmRequest(EVENT, payload),))

    def payload(self, state: Mapping[str, Any], event: CrmCallEvent) -> dict[str, Any]:
        """The event's JSON (``docs/crm.md``): the call, the moment, the agent; the result of an ended call, the
        words of a transcript."""
        out: dict[str, Any] = {
            "event": event.kind,
            "call": {"id": event.key, "pbx": event.pbx, "linkedid": event.linkedid, "direction": event.direction,
                     "caller": event.caller, "called": event.called, "customer": event.external,
                     "queue": event.queue, "did": event.did},
            "at": iso(event.at),
            "agent": event.agent,
            "user": self.users.get(event.agent) if event.agent is not None else None,
        }
        started_by = state.get("started_by")
        if isinstance(started_by, dict):
            out["started_by"] = started_by
        if event.record is not None:
            out["result"] = self._result(event.record)
        if event.transcript is not None:
            out["transcript"] = _transcript(event.transcript)
        return out

    def _result(self, record: CallRecord) -> dict[str, Any]:
        return {
            "outcome": record.outcome,
            "missed_reason": record.missed_reason,
            "answered_by": record.answered_by if record.direction != "outbound" else None,
            "answered_user": self.users.get(record.answered_by) if record.answered_by else None,
            "started_at": iso(record.started_at),
            "answered_at": iso(record.answered_at),
            "ended_at": iso(record.ended_at),
            "ring_seconds": round(record.ring_seconds, 3),
            "talk_seconds": round(record.talk_seconds, 3),
            "hung_up_by": record.hung_up_by,
            "transferred_to": record.transferred_to,
            "agents_rung_not_answered": list(record.agents_rung_not_answered),
            "complete": record.complete,
            "recordings": [{"index": i, "url": {"$recording": {"pbx": record.pbx, "linkedid": record.linkedid,
                                                               "index": i}}}
                           for i in range(len(record.recordings))],
        }


def _transcript(transcript: Transcript) -> dict[str, Any]:
    return {
        "engine": transcript.engine,
        "model": transcript.model,
        "language": transcript.language,
        "duration": round(transcript.duration, 3),
        "text": {"agent": transcript.text("agent"), "customer": transcript.text("customer")},
        "words": [{"speaker": w.speaker, "text": w.text, "start": round(w.start, 2), "end": round(w.end, 2)}
                  for w in transcript.words],
    }
