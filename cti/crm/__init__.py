"""Calls pushed into CRMs (issue 16): the vocabulary every connector shares, pure.

The daemon is the single source of truth; a CRM is an output that may be down. So the push is split in three:

1. **What happened** (:class:`CrmCallEvent`), read from the pipeline's effects by :func:`call_events` (and, later,
   a call's transcript): an agent's outbound call dialling the customer, ringing at an agent's phone, ringing
   stopped, answered, ended (with its record), the transcript ready. One vocabulary for every CRM.
2. **What to send** (:class:`CrmRequest`): each CRM's *planner* (``cti/crm/bitrix24.py``, ``amocrm.py``,
   ``zammad.py``, ``onec.py``, ``webhook.py``) turns one event and the call's planner state (a JSON object it
   alone reads) into the next state and the requests to send, pure: :class:`Planner`. A request names values only
   an earlier answer gives (Bitrix24's ``CALL_ID`` from ``register``) by reference, ``{"$remote": "call_id"}``,
   and a recording by ``{"$recording": index}``: the sender fills them in when it sends (a recording link is signed
   then, so it expires from the moment the CRM gets it, not from the call's end).
3. **Sending** (``companion/crm/``): the state and the requests are written to the store's outbox in one
   transaction *before* anything is sent (:class:`CrmItem`), then sent in order per call, retried with back-off,
   given up after ``[crm] give_up_after``. Nothing is lost or sent twice across a restart: an item is taken with a
   lease and marked sent after the CRM's answer; an item in flight when the daemon was killed is sent again, and
   each connector makes that repeat harmless where its CRM allows (Bitrix24 answers a repeated ``register`` with
   the same ``CALL_ID``; Zammad updates the call of a ``callId``; the webhook carries an id to deduplicate by).

A call is keyed ``"{pbx}:{linkedid}"`` (:func:`call_key`), or ``"crm:{crm}:{id}"`` for a click-to-call the CRM
started before the PBX named the call.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from cti.effects import CallAnswered, CallDialing, CallEnded, CallRang, Effect, LegEnded
from cti.records import CallRecord
from cti.transcripts import Transcript

#: The CRMs the daemon pushes to: the ``[crm.<name>]`` sections of the configuration.
CrmName = Literal["bitrix24", "amocrm", "zammad", "onec", "webhook"]
CRM_NAMES: tuple[CrmName, ...] = ("bitrix24", "amocrm", "zammad", "onec", "webhook")

CrmEventKind = Literal["dialing", "ringing", "ring_stopped", "answered", "ended", "transcript"]


def call_key(pbx: str, linkedid: str) -> str:
    """The outbox's name of a call: one per PBX call (a merged pickup keeps its first linkedid)."""
    return f"{pbx}:{linkedid}"


@dataclass(frozen=True, slots=True)
class CrmCallEvent:
    """One thing that happened to a call, as every CRM planner reads it.

    ``dialing`` is an outbound call's first event, when the PBX dials the customer's number (``CallDialing``): its
    ``agent`` is the extension that dialled, ``called`` the number (the customer's phone rings from now on; a call
    the daemon saw only from its answer or its end, after a restart, has none). ``ringing``/``ring_stopped``/
    ``answered`` name the ``agent`` (extension) whose phone it was; ``ended`` carries
    the finished ``record`` (outcome, talk time, recordings); ``transcript`` the call's ``transcript``. ``caller``
    and ``called`` are as the journal has them (the external number of an inbound call is ``caller``, of an
    outbound one ``called``). ``external`` is the customer's number whatever the direction.
    """

    kind: CrmEventKind
    pbx: str
    linkedid: str
    at: float
    direction: str | None
    caller: str | None
    called: str | None
    agent: str | None = None
    #: The queue or DID the call came through (routing rules per queue).
    queue: str | None = None
    did: str | None = None
    #: ``ended``: the journal's record of the call.
    record: CallRecord | None = None
    #: ``transcript``: what was said, both sides.
    transcript: Transcript | None = None

    @property
    def key(self) -> str:
        return call_key(self.pbx, self.linkedid)

    @property
    def external(self) -> str | None:
        """The customer's number: the caller of an inbound call, the called number of an outbound one."""
        return self.called if self.direction == "outbound" else self.caller


@dataclass(frozen=True, slots=True)
class CrmRequest:
    """One request a planner wants sent, in its call's order.

    ``kind`` is the CRM's own name for it (``register``, ``show``, ``hide``, ``finish``, ``attachRecord``,
    ``attachTranscription``; ``newCall``, ``answer``, ``hangup``; ``call``; ``event``), which the connector maps to
    its URL and method; ``payload`` is JSON (references: the module's docstring).
    """

    kind: str
    payload: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Plan:
    """A planner's answer to one event: the call's next state (None: unchanged) and what to send."""

    state: dict[str, Any] | None
    requests: tuple[CrmRequest, ...] = ()


class Planner(Protocol):
    """A CRM's pure half: which requests an event of a call asks for (no clock, no I/O)."""

    name: CrmName

    def plan(self, state: dict[str, Any], event: CrmCallEvent) -> Plan:
        """``state``: what this planner kept for the call so far (``{}`` for a call it has not seen). A call the CRM
        itself started (click-to-call) comes with ``{"started_by": {...}}`` first: the CRM's own fields for it (the
        Bitrix24 ``CALL_ID`` the ``ONEXTERNALCALLSTART`` event named), so the planner finishes that call rather
        than registering a new one."""
        ...


ItemState = Literal["pending", "sent", "failed"]


@dataclass(frozen=True, slots=True)
class CrmItem:
    """One request in the store's outbox (``store.repository.CrmOutbox``): queued, sent or given up."""

    id: int
    crm: CrmName
    call: str
    #: Its place in its call's sequence (1, 2, ...): sent in this order.
    seq: int
    kind: str
    payload: dict[str, Any]
    created_at: float
    attempts: int
    next_try_at: float
    sent_at: float | None = None
    failed_at: float | None = None
    last_error: str | None = None
    #: What the CRM's answer gave that later requests of the call refer to (``{"call_id": "externalCall.…"}``).
    answer: dict[str, Any] = field(default_factory=dict)
    #: When an admin put it back after it was given up (``cti crm retry``, «Повторить»): its tries start again.
    retried_at: float | None = None

    @property
    def state(self) -> ItemState:
        if self.sent_at is not None:
            return "sent"
        return "failed" if self.failed_at is not None else "pending"


@dataclass(frozen=True, slots=True)
class CrmStatus:
    """One CRM's outbox as ``cti crm status``, ``/api/health`` and the admin's panel show it."""

    crm: CrmName
    pending: int
    failed: int
    sent: int
    #: When the oldest pending request was queued (the lag is ``now`` minus it); None when nothing waits.
    oldest_pending_at: float | None
    last_error: str | None = None


def _context_fields(effect: CallRang | LegEnded | CallAnswered) -> dict[str, Any]:
    ctx = effect.context
    return {"pbx": effect.pbx, "linkedid": effect.linkedid, "at": effect.at,
            "direction": ctx.direction if ctx is not None else None,
            "caller": ctx.caller if ctx is not None else None,
            "called": ctx.called if ctx is not None else None,
            "queue": ctx.queue if ctx is not None else None}


def call_events(effect: Effect) -> list[CrmCallEvent]:
    """The CRM events one pipeline effect makes (none for most): an outbound call dialling the customer, a phone
    ringing, its ring stopping unanswered, an agent answering, the call's end. Internal calls (agent to agent) are not
    a CRM's business (and never dial out)."""
    if isinstance(effect, CallDialing):
        ctx = effect.context
        return [CrmCallEvent(kind="dialing", pbx=effect.pbx, linkedid=effect.linkedid, at=effect.at,
                             direction="outbound", caller=ctx.caller if ctx is not None else effect.agent,
                             called=effect.number, agent=effect.agent)]
    if isinstance(effect, CallRang):
        if effect.context is not None and effect.context.direction == "internal":
            return []
        return [CrmCallEvent(kind="ringing", agent=effect.agent, **_context_fields(effect))]
    if isinstance(effect, LegEnded):
        if effect.answered or (effect.context is not None and effect.context.direction == "internal"):
            return []
        return [CrmCallEvent(kind="ring_stopped", agent=effect.agent, **_context_fields(effect))]
    if isinstance(effect, CallAnswered):
        ctx = effect.context
        if ctx is not None and ctx.direction == "internal":
            return []
        # An outbound call is "answered" by the customer (the model's answered_by is their number): the agent of
        # the CRM event is the extension that called out.
        agent: str | None = effect.answered_by
        if ctx is not None and ctx.direction == "outbound":
            agent = next((c.agent for c in ctx.channels if c.agent is not None), ctx.caller)
        return [CrmCallEvent(kind="answered", agent=agent, **_context_fields(effect))]
    if isinstance(effect, CallEnded):
        record = effect.record
        if record.direction == "internal":
            return []
        agent = record.answered_by
        if record.direction == "outbound":  # the extension that called out (see CallAnswered above)
            agent = next((leg.agent for leg in record.legs if leg.agent is not None), record.caller)
        return [CrmCallEvent(kind="ended", pbx=record.pbx, linkedid=record.linkedid,
                             at=record.ended_at if record.ended_at is not None else record.started_at,
                             direction=record.direction, caller=record.caller, called=record.called,
                             agent=agent, queue=record.queue, did=record.did, record=record)]
    return []
