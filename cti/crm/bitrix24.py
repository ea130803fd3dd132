"""Bitrix24's planner (issue 16): which telephony REST calls each event of a call asks for, pure.

Bitrix24 learns of a call made outside it through ``telephony.externalCall.*`` (``docs/crm.md``, "Bitrix24"):

* ``register`` once, at the first phone that rings (inbound, ``TYPE`` 2, ``SHOW`` 0: the card is shown by ``show``
  to each phone that rings), or when an agent's outbound call dials the customer (``dialing``: ``TYPE`` 1 for the
  agent, ``SHOW`` 1: the card pops for the agent while the customer's phone rings, as the commercial Asterisk
  modules do; one request, and Bitrix24 shows it to the registering user, named by id or inner phone alike).
  Bitrix24 answers the call's ``CALL_ID``, which every later request names by reference
  (``{"$remote": "call_id"}``). ``EXTERNAL_CALL_ID`` is the PBX's name of the call
  (``pbx:linkedid``), so two calls from one number at once never share a ``CALL_ID``; a ``register`` sent again
  after a crash has the same parameters, and Bitrix24 answers the same ``CALL_ID`` for 30 minutes.
* ``show`` the call's card to each agent whose phone rings, ``hide`` it for the others when one answers, and for an
  agent whose phone stops ringing unanswered.
* ``finish`` only at the call's end, when the outcome is known: ``USER_ID`` the agent who answered last (a transfer
  target), else the last rung; ``DURATION`` the talk in whole seconds; ``STATUS_CODE`` from the outcome
  (:func:`status_code`).
* ``attachRecord`` after ``finish`` for an answered call with a recording (a signed link, ``{"$recording": ...}``),
  ``attachTranscription`` when the transcript is ready, only after ``finish``.

A call Bitrix24 itself started (``ONEXTERNALCALLSTART``: click-to-call from a CRM card) comes with
``{"started_by": {"call_id": ...}}``: it is registered already, so it is only finished, with that ``CALL_ID``.

With ``route_to_responsible`` an inbound call's card is also shown to the client's responsible manager
(``showResponsible``, right after the first rung agent's ``show``: the connector asks
``telephony.externalCall.searchCrmEntities`` for the caller and shows the card to the first entity's
``ASSIGNED_BY``), whether or not their phone rings; it is hidden (``hideResponsible``) when someone else answers, or
before ``finish`` when nobody did.

An agent is named by ``USER_ID`` where ``[crm.bitrix24] users`` maps the extension, else by ``USER_PHONE_INNER``
(the extension: the «Внутренний номер» (inner phone) of the user's profile). ``show``/``hide`` take only user
ids: the connector turns inner phones into ids (``user.get``) when it sends them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from pathlib import PurePath
from typing import Any

from cti.records import CallRecord
from cti.transcripts import Transcript

from . import CrmCallEvent, CrmName, CrmRequest, Plan

#: ``STATUS_CODE`` of ``finish`` for a call that was not answered, by ``CallRecord.missed_reason``: the codes of
#: Bitrix24's list (200 successful, 304 missed, 603-S cancelled, 486 busy, 480 temporarily unavailable, 503
#: direction unavailable...).
MISSED_STATUS: Mapping[str, str] = {
    "no_answer": "304",  # rang until the PBX gave up (inbound), the remote never answered (outbound)
    "voicemail": "304",  # nobody answered: the caller left a message
    "busy": "486",  # every phone tried refused busy (inbound), the remote was busy (outbound)
    "abandoned": "603-S",  # the caller gave up waiting in a queue
    "short_abandon": "603-S",  # the caller hung up within seconds
    "caller_hangup_ringing": "603-S",  # the caller hung up while phones rang
    "unavailable": "480",  # no phone could be reached (inbound); the agent's own phone never answered (outbound)
    "failed": "503",  # the trunk refused the call (outbound: congestion, channel unavailable)
}

#: ``TYPE`` of ``register``: 1 outgoing, 2 incoming.
CALL_TYPES: Mapping[str, int] = {"outbound": 1, "inbound": 2}

#: File name extensions ``attachRecord`` takes for ``FILENAME``.
RECORD_SUFFIXES = (".wav", ".mp3")


def status_code(record: CallRecord) -> str:
    """``finish``'s ``STATUS_CODE`` for a finished call: 200 answered, else by its missed reason (304 unknown)."""
    if record.outcome == "answered":
        return "200"
    return MISSED_STATUS.get(record.missed_reason or "", "304")


def transcript_messages(transcript: Transcript) -> list[dict[str, Any]]:
    """``attachTranscription``'s ``MESSAGES``: each run of one side's words a phrase, ``SIDE`` ``User`` (the agent)
    or ``Client`` (the customer; also words whose speaker could not be told), whole seconds (start rounded
    down, stop up, at least a second after the start)."""
    messages: list[dict[str, Any]] = []
    side: str | None = None
    words: list[str] = []
    start = stop = 0.0
    for word in transcript.words:
        this = "User" if word.speaker == "agent" else "Client"
        if this != side and words:
            messages.append(_message(side or this, words, start, stop))
            words = []
        if not words:
            start = word.start
        side = this
        words.append(word.text)
        stop = word.end
    if words and side is not None:
        messages.append(_message(side, words, start, stop))
    return messages


def _message(side: str, words: list[str], start: float, stop: float) -> dict[str, Any]:
    begin = max(0, math.floor(start))
    return {"SIDE": side, "START_TIME": begin, "STOP_TIME": max(begin + 1, math.ceil(stop)),
            "MESSAGE": " ".join(words)}


@dataclass(frozen=True)
class Bitrix24Planner:
    """The planner of ``[crm.bitrix24]``: ``users`` maps extensions to Bitrix24 user ids; ``crm_create`` lets
    ``register`` create a lead for an unknown number; ``line`` is the ``LINE_NUMBER`` shown (else the DID);
    ``attach_records``: recordings are handed over (``[crm] public_url`` set: links can be signed); ``tz`` the
    zone ``CALL_START_DATE`` is written in, with its offset, as the portal shows it to its users (the site's,
    ``[pbx] timezone``; None: the machine's); ``route_to_responsible``: the client's responsible manager sees the
    card too (module docstring)."""

    users: Mapping[str, str | int] = field(default_factory=dict)
    crm_create: bool = True
    line: str | None = None
    attach_records: bool = True
    tz: tzinfo | None = UTC
    route_to_responsible: bool = False
    name: CrmName = "bitrix24"

    def plan(self, state: dict[str, Any], event: CrmCallEvent) -> Plan:
        if state.get("finished"):
            if event.kind == "transcript" and event.transcript is not None and not state.get("transcript"):
                return self._transcript(state, event.transcript)
            return Plan(None)
        if event.kind == "transcript":
            return Plan(None)  # a call never finished in Bitrix24 (nobody rang): nothing to attach it to
        direction = str(state.get("direction") or event.direction)
        if direction not in CALL_TYPES:
            return Plan(None)  # not a call with a customer (an internal call seen without its context)
        new = dict(state)
        new["direction"] = direction
        requests: list[CrmRequest] = []
        if event.kind == "ended":
            return self._ended(new, event, requests)
        agent = self._agent(event, direction)
        if direction == "outbound":
            # The agent dialled: registered with its card shown at the dial (or, seen only from its answer after a
            # restart, then), nothing at the answer, finished at its end.
            if agent is not None and not new.get("registered"):
                self._register(new, event, agent, requests, show=event.kind in ("dialing", "answered"))
                if requests:
                    new["shown"] = [agent]
            return Plan(new, tuple(requests))
        if agent is None:
            return Plan(None)
        shown: list[str] = list(new.get("shown", []))
        if event.kind == "ringing":
            self._register(new, event, agent, requests)
            new["rung"] = agent
            if agent not in shown:
                shown.append(agent)
                requests.append(self._card("show", new, [agent]))
            self._show_responsible(new, event, requests)
        elif event.kind == "ring_stopped":
            if agent not in shown or agent == new.get("answered"):
                return Plan(None)  # a phone never shown (busy at once, unreachable), or already hidden
            shown.remove(agent)
            requests.append(self._card("hide", new, [agent]))
        elif event.kind == "answered":
            self._register(new, event, agent, requests)
            new["answered"] = agent
            if agent not in shown:  # picked up from another phone, or answered before we saw it ring
                shown.append(agent)
                requests.append(self._card("show", new, [agent]))
            others = [a for a in shown if a != agent]
            if others:
                requests.append(self._card("hide", new, others))
            self._hide_responsible(new, requests, keep=agent)
            shown = [agent]
        new["shown"] = shown
        return Plan(new, tuple(requests))

    # -- the requests ------------------------------------------------------------------------------------------

    def _agent(self, event: CrmCallEvent, direction: str) -> str | None:
        """The agent an event is about: for an outbound call the one who dialled (the call's caller)."""
        if direction == "outbound":
            return event.agent or event.caller
        return event.agent

    def _user(self, extension: str) -> dict[str, Any]:
        """How a request names an agent: the Bitrix24 user id the settings give, else the inner phone."""
        user = self.users.get(extension)
        if user is None:
            return {"USER_PHONE_INNER": extension}
        return {"USER_ID": int(user) if isinstance(user, str) and user.isdigit() else user}

    def _call_id(self, state: Mapping[str, Any]) -> Any:
        started = state.get("started_by")
        if isinstance(started, Mapping) and started.get("call_id"):
            return str(started["call_id"])
        return {"$remote": "call_id"}

    def _register(self, state: dict[str, Any], event: CrmCallEvent, agent: str, out: list[CrmRequest],
                  show: bool = False) -> None:
        """``register`` the call unless it was (or Bitrix24 started it: it is registered there already); ``show``: the
        card pops for ``agent`` with it (``SHOW`` 1: an outbound call in progress)."""
        if state.get("registered") or isinstance(state.get("started_by"), Mapping):
            state["registered"] = True
            return
        state["registered"] = True
        direction = state["direction"]
        number = event.external
        # The portal shows the date as written: in the site's zone, with its offset (UTC only where the site is).
        start = datetime.fromtimestamp(event.at, UTC).astimezone(self.tz)
        payload: dict[str, Any] = {
            **self._user(agent),
            "PHONE_NUMBER": number or "anonymous",
            "TYPE": CALL_TYPES[direction],
            "CALL_START_DATE": start.isoformat(timespec="seconds"),
            # A withheld number makes no lead: it would match every other withheld caller.
            "CRM_CREATE": 1 if self.crm_create and number else 0,
            "SHOW": 1 if show else 0,
            "EXTERNAL_CALL_ID": event.key,
        }
        line = self.line or (event.called if direction == "inbound" else None)
        if line:
            payload["LINE_NUMBER"] = line
        out.append(CrmRequest("register", payload))

    def _show_responsible(self, state: dict[str, Any], event: CrmCallEvent, out: list[CrmRequest]) -> None:
        """``showResponsible`` once per inbound call from a known number (``route_to_responsible``)."""
        if (not self.route_to_responsible or state.get("responsible") or state["direction"] != "inbound"
                or not event.external or isinstance(state.get("started_by"), Mapping)):
            return
        state["responsible"] = "shown"
        out.append(CrmRequest("showResponsible", {"CALL_ID": self._call_id(state), "PHONE_NUMBER": event.external}))

    def _hide_responsible(self, state: dict[str, Any], out: list[CrmRequest], keep: str | None = None) -> None:
        """``hideResponsible``: the responsible's card hidden, unless they are ``keep`` (the agent who answered: the
        connector compares the users)."""
        if state.get("responsible") != "shown":
            return
        state["responsible"] = "hidden"
        payload: dict[str, Any] = {"CALL_ID": self._call_id(state)}
        if keep is not None:
            payload["KEEP"] = self._user(keep)
        out.append(CrmRequest("hideResponsible", payload))

    def _card(self, kind: str, state: Mapping[str, Any], agents: list[str]) -> CrmRequest:
        """``show``/``hide`` for these agents: ``USER_ID`` for those the settings map, ``USER_PHONE_INNER`` (turned
        into ids by the connector) for the others."""
        payload: dict[str, Any] = {"CALL_ID": self._call_id(state)}
        ids = [u["USER_ID"] for u in map(self._user, agents) if "USER_ID" in u]
        inner = [a for a in agents if a not in self.users]
        if ids:
            payload["USER_ID"] = ids
        if inner:
            payload["USER_PHONE_INNER"] = inner
        return CrmRequest(kind, payload)

    def _ended(self, state: dict[str, Any], event: CrmCallEvent, out: list[CrmRequest]) -> Plan:
        record = event.record
        if record is None:
            return Plan(None)
        agent = self._finisher(state, record)
        if agent is None:
            return Plan(None)  # no phone ever rang (the caller left in the menu): Bitrix24 needs a user to log it
        if not state.get("registered"):
            # Nothing rang that we saw (a busy phone refuses at once; a call already up when the daemon started; a
            # click-to-call whose agent never picked up dialled nobody): registered now, dated from the call's start.
            start = CrmCallEvent(kind="ringing", pbx=event.pbx, linkedid=event.linkedid, at=record.started_at,
                                 direction=event.direction, caller=event.caller, called=event.called)
            self._register(state, start, agent, out)
        self._hide_responsible(state, out)  # nobody answered (else it was hidden then)
        started = state.get("started_by")
        user = ({"USER_ID": started["user_id"]} if isinstance(started, Mapping) and started.get("user_id")
                else self._user(agent))
        out.append(CrmRequest("finish", {
            "CALL_ID": self._call_id(state), **user,
            "DURATION": round(record.talk_seconds) if record.outcome == "answered" else 0,
            "STATUS_CODE": status_code(record),
            "ADD_TO_CHAT": 0,
        }))
        state["finished"] = True
        state["shown"] = []
        if self.attach_records and record.outcome == "answered" and record.recordings:
            # One record per call: Bitrix24 replaces a call's record with the next one attached, so the first file
            # (the mix where the PBX also wrote each side apart) is the one handed over.
            name = PurePath(record.recordings[0]).name
            payload: dict[str, Any] = {"CALL_ID": self._call_id(state), "RECORD_URL": {
                "$recording": {"pbx": record.pbx, "linkedid": record.linkedid, "index": 0}}}
            if name.lower().endswith(RECORD_SUFFIXES):
                payload["FILENAME"] = name
            out.append(CrmRequest("attachRecord", payload))
        return Plan(state, tuple(out))

    def _finisher(self, state: Mapping[str, Any], record: CallRecord) -> str | None:
        """Who the call is finished for: the agent who answered last, else the last rung (the dialling agent of an
        outbound call)."""
        if record.direction == "outbound":
            return record.caller
        if record.agents_answered:
            return record.agents_answered[-1]
        answered = state.get("answered") or record.answered_by or state.get("rung")
        if answered:
            return str(answered)
        return record.agents_rung_not_answered[-1] if record.agents_rung_not_answered else None

    def _transcript(self, state: dict[str, Any], transcript: Transcript) -> Plan:
        messages = transcript_messages(transcript)
        if not messages:
            return Plan(None)
        return Plan({**state, "transcript": True}, (CrmRequest("attachTranscription", {
            "CALL_ID": self._call_id(state), "MESSAGES": messages}),))
