"""amoCRM's (and Kommo's) planner (issue 16, ``docs/crm.md`` "amoCRM / Kommo"): one call note per call, pure.

amoCRM learns of a call through ``POST /api/v4/calls`` (its "calls API"): a call with its direction, duration,
source, the customer's phone, a link to the recording and a status; amoCRM finds the contact or company with that
phone and adds the call to its card (or to the one open lead of it). It has no "ringing" or "answered" for an
outside PBX (the card pops through its telephony widgets, not this API), so the call is sent **once, at its end**,
when everything about it is known:

* ``direction`` ``inbound``/``outbound``; ``phone`` the customer's number (a call without one, a withheld number, is
  not sent: amoCRM could attach it to no card); ``duration`` the talk in whole seconds (0 for a call nobody took);
  ``source`` ``[crm.amocrm] source``; ``created_at`` the call's start (Unix seconds).
* ``uniq`` the outbox's key of the call, ``pbx:linkedid``: unique per call, also with several PBXs.
* ``call_status`` from our outcome (:func:`call_status`, the table in ``docs/crm.md``).
* ``responsible_user_id`` and ``created_by``: the amoCRM user of the agent who answered (inbound) or called
  (outbound), when ``[crm.amocrm] users`` names one; else left out (amoCRM keeps the card's responsible).
* ``link`` a signed link to the call's first recording (``{"$recording": ...}``), filled in when it is sent, so it
  expires from the moment amoCRM gets it; left out for a call with no recording (the connector also leaves it out
  when no link can be made: no ``[crm] public_url``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from cti.records import CallRecord

from . import CrmCallEvent, CrmName, CrmRequest, Plan

#: The one request kind: ``POST /api/v4/calls``.
CALL = "call"

#: amoCRM's ``call_status``: 1 left a message, 2 call back later, 3 not there, 4 talked, 5 wrong number, 6 not
#: reached, 7 busy.
LEFT_MESSAGE, CALL_BACK, NOT_THERE, TALKED, WRONG_NUMBER, NOT_REACHED, BUSY = 1, 2, 3, 4, 5, 6, 7

#: ``call_status`` of a call nobody answered, by ``CallRecord.missed_reason``.
MISSED_STATUS: Mapping[str, int] = {
    "no_answer": NOT_REACHED,  # rang until the PBX gave up (inbound), the remote never answered (outbound)
    "voicemail": LEFT_MESSAGE,  # nobody answered, voicemail took the call
    "busy": BUSY,  # every phone tried refused busy (inbound), the remote was busy (outbound)
    "abandoned": NOT_REACHED,  # the caller gave up waiting in a queue
    "short_abandon": NOT_REACHED,  # the caller hung up within seconds
    "caller_hangup_ringing": NOT_REACHED,  # the caller hung up while phones rang
    "unavailable": NOT_THERE,  # no agent's phone could be reached (inbound), the agent's own phone never answered
    "failed": NOT_REACHED,  # the trunk refused the call (outbound: congestion, channel unavailable)
}
#: Q.850 causes of a remote leg that mean the number does not exist: 1 unallocated number, 28 invalid format.
WRONG_NUMBER_CAUSES = frozenset({1, 28})


def call_status(record: CallRecord) -> int:
    """``call_status`` for a finished call: 4 talked when answered, 5 when the network said the number does not
    exist, else by its missed reason (6 not reached when unknown)."""
    if record.outcome == "answered":
        return TALKED
    if record.direction == "outbound" and any(
            leg.hangup_cause in WRONG_NUMBER_CAUSES for leg in record.legs if leg.role == "external"):
        return WRONG_NUMBER
    return MISSED_STATUS.get(record.missed_reason or "", NOT_REACHED)


def _duration(record: CallRecord) -> int:
    """The talk in whole seconds; 0 for a call nobody took. Never more than the call lasted (a call partly seen
    through an outage has only what the PBX told of it)."""
    if record.outcome != "answered":
        return 0
    talk = record.talk_seconds
    if record.ended_at is not None:
        talk = min(talk, record.ended_at - record.started_at)
    return max(math.floor(talk), 0)


class AmoCrmPlanner:
    """``users``: extension → amoCRM user id (``[crm.amocrm] users``); ``source``: ``[crm.amocrm] source``.
    Keeps ``{"sent": true}`` once the call is queued, so an end seen twice (a resync) sends it once."""

    name: CrmName = "amocrm"

    def __init__(self, users: Mapping[str, str | int] | None = None, source: str = "CTI Companion") -> None:
        self.users = dict(users or {})
        self.source = source

    def plan(self, state: dict[str, Any], event: CrmCallEvent) -> Plan:
        if event.kind != "ended" or event.record is None or state.get("sent"):
            return Plan(state=None)
        payload = self.payload(event, event.record)
        if payload is None:
            return Plan(state={**state, "sent": False, "skipped": "no customer number"})
        return Plan(state={**state, "sent": True}, requests=(CrmRequest(CALL, payload),))

    def payload(self, event: CrmCallEvent, record: CallRecord) -> dict[str, Any] | None:
        """The call as ``POST /api/v4/calls`` takes it (one element of its list), None for a call without a
        customer's number or with an internal direction."""
        if record.direction not in ("inbound", "outbound") or not event.external:
            return None
        call: dict[str, Any] = {
            "direction": record.direction,
            "uniq": event.key,
            "duration": _duration(record),
            "source": self.source,
            "phone": event.external,
            "call_status": call_status(record),
            "created_at": int(record.started_at),
        }
        user = self._user(event.agent) if record.outcome == "answered" or record.direction == "outbound" else None
        if user is not None:
            call["responsible_user_id"] = user
            call["created_by"] = user
        if record.recordings:
            call["link"] = {"$recording": {"pbx": record.pbx, "linkedid": record.linkedid, "index": 0}}
        return call

    def _user(self, extension: str | None) -> int | str | None:
        if extension is None or extension not in self.users:
            return None
        user = self.users[extension]
        return int(user) if isinstance(user, str) and user.isdigit() else user
