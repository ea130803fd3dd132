"""Zammad's planner (issue 16, ``docs/crm.md`` "Zammad"): which Generic CTI events each event of a call asks for.

Zammad's Generic CTI (``POST /api/v1/cti/<token>``) keeps a caller log of three events per call, matched by
``callId`` (``docs.zammad.org``, "Generic CTI"):

* ``newCall`` once, at the first phone that rings (inbound) or when an agent's outbound call dials the customer
  (``dialing``, else its first event seen): the numbers, the direction (``in``/``out``) and, outbound, the agent who
  calls (``user``, a real name). So Zammad's caller log shows the outbound call ringing at the customer's, and its
  answer when the customer answers. Zammad may
  answer it with ``{"action": "reject"}`` (its blocklist): the connector hangs the call up when configured to.
* ``answer`` once, when the call is first answered: inbound with the agent (``user``, ``answeringNumber``: Zammad
  finds its user by phone, login or id). An outbound ``answer`` names nobody: Zammad writes an answer's ``user`` over
  the called party's name, which outbound is the customer's. A transfer's later answers are not sent: Zammad would
  restart its talk time.
* ``hangup`` at the call's end with ``cause`` from our outcome (:data:`CAUSES`). Zammad keeps a call it got no
  ``hangup`` for as ringing for ever, so **every call that got a ``newCall`` gets a ``hangup``**: the state says what
  was sent, it is kept in the store with the outbox, and the end (also one the daemon learnt only from a resync)
  sends what is missing: a call first seen at its end gets ``newCall`` and ``hangup`` (Zammad logs every external
  call, also one abandoned in a queue before any phone rang); an answered call whose ``answer`` was never sent gets
  it before its ``hangup`` (Zammad counts an inbound call hung up in state ``newCall`` as missed).

``callId`` is the outbox's key of the call, ``pbx:linkedid`` (unique per call, also with several PBXs). An agent's
real name is filled in by the connector when it sends (``{"$agent": {"pbx", "extension"}}``: the panel user's
display name for that extension), since only the store knows it; ``answeringNumber`` is the extension's Zammad
user from ``[crm.zammad] users`` when given (a login, an id), else the extension itself (a Zammad user whose phone
is the extension).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cti.records import CallRecord

from . import CrmCallEvent, CrmName, CrmRequest, Plan

NEW_CALL = "newCall"
ANSWER = "answer"
HANGUP = "hangup"

#: ``cause`` of ``hangup`` for a call nobody answered, by ``CallRecord.missed_reason``. Zammad's causes:
#: ``normalClearing`` (talked), ``busy``, ``cancel`` (the caller hung up first), ``noAnswer``, ``congestion`` (not
#: reachable), ``notFound`` (no such number, or the party offline), ``forwarded``.
CAUSES: Mapping[str, str] = {
    "no_answer": "noAnswer",  # rang until the PBX gave up (inbound), the remote never answered (outbound)
    "voicemail": "noAnswer",  # nobody answered: voicemail took it
    "busy": "busy",  # every phone tried refused busy (inbound), the remote was busy (outbound)
    "abandoned": "cancel",  # the caller gave up waiting in a queue
    "short_abandon": "cancel",  # the caller hung up within seconds
    "caller_hangup_ringing": "cancel",  # the caller hung up while phones rang
    "unavailable": "notFound",  # no phone could be reached (inbound); the agent's own phone never answered (outbound)
    "failed": "congestion",  # the trunk refused the call (outbound: congestion, channel unavailable)
}
#: What Zammad takes for a withheld number.
ANONYMOUS = "anonymous"


def cause(record: CallRecord) -> str:
    """``hangup``'s ``cause`` for a finished call: ``normalClearing`` when answered, else by its missed reason."""
    if record.outcome == "answered":
        return "normalClearing"
    return CAUSES.get(record.missed_reason or "", "noAnswer")


def agent_ref(pbx: str, extension: str) -> dict[str, Any]:
    """An agent's real name, left for the connector to fill in (it reads the panel's users)."""
    return {"$agent": {"pbx": pbx, "extension": extension}}


class ZammadPlanner:
    """``users``: extension → the Zammad user (login, id or phone) named in ``answeringNumber``
    (``[crm.zammad] users``); an extension not in it is sent as it is.

    The state of a call: ``call`` (the fields every event of it repeats, fixed by its ``newCall``), ``agent`` (the
    extension that called out), ``answered`` and ``ended`` (what was queued)."""

    name: CrmName = "zammad"

    def __init__(self, users: Mapping[str, str | int] | None = None) -> None:
        self.users = {k: str(v) for k, v in (users or {}).items()}

    def plan(self, state: dict[str, Any], event: CrmCallEvent) -> Plan:
        if state.get("ended") or event.kind not in ("dialing", "ringing", "answered", "ended"):
            return Plan(state=None)
        direction = _direction(event.direction)
        if direction is None:  # a leg whose call already ended in the same message: its end says everything
            return Plan(state=None)
        new = dict(state)
        requests: list[CrmRequest] = []
        if "call" not in new:
            requests.append(self._new_call(new, event, direction))
        if event.kind == "answered" and not new.get("answered"):
            requests.append(self._answer(new, event.pbx, event.agent))
            new["answered"] = True
        if event.kind == "ended":
            record = event.record
            if record is not None and record.outcome == "answered" and not new.get("answered"):
                requests.append(self._answer(new, event.pbx, event.agent))
                new["answered"] = True
            requests.append(self._hangup(new, event, record))
            new["ended"] = True
        if not requests:
            return Plan(state=None)
        return Plan(state=new, requests=tuple(requests))

    # -- the three events ----------------------------------------------------------------------------------------

    def _new_call(self, state: dict[str, Any], event: CrmCallEvent, direction: str) -> CrmRequest:
        """``newCall``; sets ``state["call"]``, the fields every later event of the call repeats."""
        if direction == "in":
            call = {"from": event.caller or ANONYMOUS, "to": event.called or event.did or "", "direction": "in",
                    "callId": event.key}
            if event.queue:
                call["queue"] = event.queue  # Zammad's Caller Log Filter (its default is the number dialled)
        else:
            call = {"from": event.caller or "", "to": event.called or "", "direction": "out",
                    "callId": event.key}
        state["call"] = call
        payload: dict[str, Any] = {"event": NEW_CALL, **call}
        if direction == "out" and event.agent:
            state["agent"] = event.agent
            payload["user"] = agent_ref(event.pbx, event.agent)
        return CrmRequest(NEW_CALL, payload)

    def _answer(self, state: dict[str, Any], pbx: str, agent: str | None) -> CrmRequest:
        payload: dict[str, Any] = {"event": ANSWER, **state["call"]}
        if state["call"]["direction"] == "in" and agent:
            payload["user"] = agent_ref(pbx, agent)
            payload["answeringNumber"] = self.users.get(agent, agent)
            state["answered_by"] = agent
        return CrmRequest(ANSWER, payload)

    def _hangup(self, state: dict[str, Any], event: CrmCallEvent, record: CallRecord | None) -> CrmRequest:
        payload: dict[str, Any] = {"event": HANGUP, **state["call"],
                                   "cause": cause(record) if record is not None else "normalClearing"}
        if state["call"]["direction"] == "in":
            agent = (record.answered_by if record is not None else None) or state.get("answered_by")
            if agent and (record is None or record.outcome == "answered"):
                payload["answeringNumber"] = self.users.get(agent, agent)
        return CrmRequest(HANGUP, payload)


def _direction(direction: str | None) -> str | None:
    return {"inbound": "in", "outbound": "out"}.get(direction or "")
