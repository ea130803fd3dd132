"""Every message the server sends a panel or any other WebSocket client is built here, and nowhere else.

From the core's facts (an effect of the call model with its :class:`~cti.effects.CallContext`, a change of
the missed-call register, a call snapshot, a caller card) to the pydantic models of ``messages.py``, with
who should get each: as wazo-calld's notifier is the one place that builds its events. The audience of an
event is its PBX and a set of that PBX's agent extensions: clients subscribed to one of them get it, ``all``
subscribers of that PBX always do (``hub.py``).

Nothing here reads the live ``CallBook``: an effect says everything about itself, so this runs in the
panel's own task, however far the model has moved on. :class:`Messages` holds only the site's constants
(time zone, region, each PBX's agents' names).

The event messages (one per effect a client sees, the panel's hot path: a busy PBX sends thousands a
second) are built as their wire form directly, plain dicts in the models' field order, with no pydantic
validation per message: the hub encodes each one once (``pydantic_core.to_json``, the same encoder as
``model_dump_json``). ``tests/ui_bridge/test_wire_messages.py`` checks that every one of them validates
against the published JSON Schema (``cti schema``) and equals what the pydantic model would send. The
rarer messages (a connection's own, the register's, a looked-up card) are still built as models.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import tzinfo
from typing import Any, Literal

from pydantic import BaseModel

from cti.alerts import Alert
from cti.complaint_rules import missing_fields
from cti.complaints import Complaint, Task
from cti.directory import Card, Contact
from cti.effects import (
    AgentStateChanged,
    CallAnswered,
    CallContext,
    CallEnded,
    CallRang,
    CallTransferred,
    Effect,
    LegEnded,
    PbxLinkChanged,
)
from cti.frozen import fast_init
from cti.keywords import KeywordMatch
from cti.live import LiveResult
from cti.phones import is_withheld, normalize_number
from cti.plates import display_plate
from cti.queue_figures import AgentFigures, QueueFigures
from cti.records import DEFAULT_PBX, CallRecord, MissedEntry
from cti.speech_identify import Offer
from store.repository import RegisterChange, User

from . import messages as m
from .numbers import NumberDisplay, NumberStyle
from .wire_time import WireTime

_DIRECTIONS = frozenset(("inbound", "outbound", "internal"))
#: A message as sent: the wire form of one of ``messages.py``'s server models (it may hold models, such as a
#: looked-up ``CallerCard``, which the encoder writes as their own JSON), or the model itself.
Wire = dict[str, Any]


@fast_init  # one per message sent (cti/frozen.py)
@dataclass(frozen=True, slots=True)
class Outgoing:
    """An event message, its PBX, and that PBX's agents whose own subscription gets it (the PBX's ``all``
    subscribers always do). ``pbx`` None: a message about no PBX in particular (every ``all`` subscriber).
    ``everyone``: every client of the PBX gets it, whatever its subscription (``pbx.status``)."""

    message: Wire | BaseModel
    extensions: frozenset[str]
    pbx: str | None = None
    everyone: bool = False


_NO_NAMES: Mapping[str, str] = {}


def _direction(value: str | None) -> Literal["inbound", "outbound", "internal"] | None:
    return value if value in _DIRECTIONS else None  # type: ignore[return-value]


class Messages:
    """Builds the messages; the site's time zone dates them, its region normalises numbers, and its region and
    ``[directory] number_style`` show them (``ui_bridge/numbers.py``)."""

    def __init__(self, tz: tzinfo | None, region: str,
                 agent_names: Mapping[str, Mapping[str, str]] | None = None,
                 number_style: NumberStyle = "international") -> None:
        self.tz = tz
        self.region = region
        #: A number as people read it, for the ``*_display`` fields.
        self.numbers = NumberDisplay(region, number_style)
        #: Each PBX's ``[pbx] agents`` (extension -> name), by PBX id.
        self.agent_names = agent_names or {}
        self._time = WireTime(tz)
        #: The wire card of each caller's number as the PBX gives it (normalising costs more than a lookup);
        #: emptied when full.
        self._cards: dict[str | None, Wire] = {}
        #: :meth:`for_effect`'s builder of each effect class clients see.
        self._builders: dict[type, Callable[[Any], Outgoing]] = {
            CallRang: self._ringing, LegEnded: self._leg_ended, CallAnswered: self._answered,
            CallTransferred: self._transferred, CallEnded: self._ended, AgentStateChanged: self._agent_state,
            PbxLinkChanged: self._pbx_status,
        }

    def time(self, epoch: float | None) -> str:
        return self._time(epoch) or ""

    # -- parts ---------------------------------------------------------------------------------------

    def card(self, number: str | None) -> m.CallerCard:
        """The card the PBX's number alone gives (before, or without, a directory lookup)."""
        if is_withheld(number):
            return m.CallerCard(number=None, withheld=True)
        key = normalize_number(number, self.region)
        return m.CallerCard(number=key, number_display=self.numbers(key))

    def _card_wire(self, number: str | None) -> Wire:
        """:meth:`card` on the wire, kept per number. Shared by the messages that carry it: a wire dict is
        never changed once built (``PopSequencer`` gives a pop its looked-up card in a new dict)."""
        card = self._cards.get(number)
        if card is None:
            if len(self._cards) >= _CARD_MEMO:
                self._cards.clear()
            card = self._cards[number] = self.card(number).model_dump(mode="json")
        return card

    def caller_card(self, card: Card) -> m.CallerCard:
        """A looked-up card (``ui_bridge/cards.py``) on the wire."""
        return m.CallerCard(
            number=card.number, number_display=self.numbers(card.number), withheld=card.withheld,
            name=card.contact.name if card.contact else None,
            status=card.status, contacts=[contact_info(c, self.numbers) for c in card.contacts],
            last_calls=[self.call_summary(r) for r in card.last_calls], open_missed=len(card.open_missed),
            sources=list(card.sources),
        )

    def call_summary(self, record: CallRecord) -> m.CallSummary:
        return m.CallSummary(linkedid=record.linkedid, started_at=self.time(record.started_at),
                             direction=record.direction, outcome=record.outcome, answered_by=record.answered_by,
                             missed_reason=record.missed_reason, pbx=record.pbx)

    def missed(self, entry: MissedEntry) -> m.MissedInfo:
        return m.MissedInfo.model_validate(self.missed_json(entry))

    def missed_json(self, entry: MissedEntry) -> dict[str, Any]:
        """A register entry as the API lists it: ``cti missed --format json``'s fields and the numbers shown."""
        return {**entry.to_json(self.tz), "caller_display": self.numbers(entry.caller),
                "called_display": self.numbers(entry.called)}

    def call_json(self, record: CallRecord) -> dict[str, Any]:
        """A journal row as the API lists it: ``cti calls --format json``'s fields and the numbers shown."""
        return {**record.to_json(self.tz), "caller_display": self.numbers(record.caller),
                "called_display": self.numbers(record.called)}

    def call_info(self, call: CallContext, card: m.CallerCard | None = None) -> m.CallInfo:
        """A call in progress as a client that connects mid-call sees it."""
        legs = [m.LegInfo(extension=c.agent, channel=c.name, state=c.phase) for c in call.legs if c.agent]
        return m.CallInfo(
            linkedid=call.linkedid, direction=_direction(call.direction), caller=call.caller,
            caller_name=call.caller_name, called=call.called, caller_display=self.numbers(call.caller),
            called_display=self.numbers(call.called), queue=call.queue, started_at=self.time(call.started_at),
            answered_at=self._time(call.answered_at), answered_by=call.answered_by,
            state="talking" if call.answered_at is not None else "ringing", agents=legs,
            card=card or self.card(call.caller), pbx=call.pbx,
        )

    def agent_state_wire(self, state: AgentStateChanged) -> Wire:
        """An ``agent.state`` message on the wire (:meth:`agent_state`'s fields, in its order)."""
        return {
            "type": "agent.state", "extension": state.extension,
            "name": state.name or self.agent_names.get(state.pbx, _NO_NAMES).get(state.extension),
            "state": state.state, "paused": state.paused, "paused_reason": state.paused_reason,
            "queues": list(state.queues), "paused_queues": list(state.paused_queues),
            "device_state": state.device_state, "at": self._time(state.at) or "", "pbx": state.pbx,
        }

    def supervisor_figures(self, pbx: str, day: str, at: float, within: float, queues: list[QueueFigures],
                           agents: list[AgentFigures]) -> m.SupervisorFigures:
        """One PBX's supervisor figures (``cti/queue_figures.py``; kept live by ``ui_bridge/supervisor.py``)."""
        return m.SupervisorFigures(
            pbx=pbx, day=day, at=self.time(at), service_level_seconds=within,
            queues=[m.QueueFiguresInfo(
                queue=q.queue, waiting=q.waiting, longest_wait_since=self._time(q.longest_wait_since),
                answered=q.answered, abandoned=q.abandoned, short_abandoned=q.short_abandoned,
                unanswered=q.unanswered, service_level=_rounded(q.service_level, 4),
                average_wait_seconds=_rounded(q.average_wait, 1), average_talk_seconds=_rounded(q.average_talk, 1),
            ) for q in queues],
            agents=[m.AgentFiguresInfo(
                extension=a.extension, name=a.name or self.agent_names.get(pbx, _NO_NAMES).get(a.extension),
                state=a.state if a.state in _AGENT_STATES else "unknown",  # type: ignore[arg-type]
                since=self._time(a.since), paused=a.paused, paused_reason=a.paused_reason, calls=a.calls,
                talk_seconds=round(a.talk_seconds, 1), misses=a.misses,
            ) for a in agents],
        )

    def agent_state(self, state: AgentStateChanged) -> m.AgentState:
        return m.AgentState(
            extension=state.extension,
            name=state.name or self.agent_names.get(state.pbx, _NO_NAMES).get(state.extension),
            state=state.state,  # type: ignore[arg-type]
            paused=state.paused, paused_reason=state.paused_reason, queues=list(state.queues),
            paused_queues=list(state.paused_queues), device_state=state.device_state, at=self.time(state.at),
            pbx=state.pbx,
        )

    # -- events --------------------------------------------------------------------------------------

    def for_effect(self, effect: Effect) -> Outgoing | None:
        """The message an effect becomes (its wire form), and its audience; None for effects clients do not see.

        Runs for every effect the panel gets: one lookup by the effect's class finds its builder (the effect
        classes are final: nothing subclasses them)."""
        build = self._builders.get(type(effect))
        return build(effect) if build is not None else None

    def _ringing(self, effect: CallRang) -> Outgoing:
        context = effect.context
        direction = context.direction if context is not None else None
        pbx = effect.pbx
        return Outgoing({
            "type": "call.ringing", "linkedid": effect.linkedid, "extension": effect.agent,
            "channel": effect.channel, "caller": effect.caller, "caller_name": effect.caller_name,
            "called": effect.called, "caller_display": self.numbers(effect.caller),
            "called_display": self.numbers(effect.called), "queue": effect.queue,
            "direction": direction if direction in _DIRECTIONS else None, "at": self._time(effect.at) or "",
            "card": self._card_wire(effect.caller), "pbx": pbx,
        }, frozenset((effect.agent,)), pbx)

    def _leg_ended(self, effect: LegEnded) -> Outgoing:
        pbx = effect.pbx
        return Outgoing({"type": "call.leg_ended", "linkedid": effect.linkedid, "extension": effect.agent,
                         "answered": effect.answered, "at": self._time(effect.at) or "",
                         "pbx": pbx}, frozenset((effect.agent,)), pbx)

    def _answered(self, effect: CallAnswered) -> Outgoing:
        pbx = effect.pbx
        return Outgoing({"type": "call.answered", "linkedid": effect.linkedid, "answered_by": effect.answered_by,
                         "at": self._time(effect.at) or "", "pbx": pbx},
                        _audience(effect.context) | {effect.answered_by}, pbx)

    def _transferred(self, effect: CallTransferred) -> Outgoing:
        pbx = effect.pbx
        return Outgoing({"type": "call.transferred", "linkedid": effect.linkedid,
                         "transferred_to": effect.transferred_to, "kind": effect.kind,
                         "at": self._time(effect.at) or "", "pbx": pbx},
                        _audience(effect.context) | {effect.transferred_to}, pbx)

    def _ended(self, effect: CallEnded) -> Outgoing:
        r = effect.record
        agents = sorted({*r.agents_answered, *r.agents_rung_not_answered,
                         *([r.answered_by] if r.answered_by else [])})
        return Outgoing({
            "type": "call.ended", "linkedid": r.linkedid, "direction": r.direction, "caller": r.caller,
            "caller_name": r.caller_name, "called": r.called, "caller_display": self.numbers(r.caller),
            "called_display": self.numbers(r.called), "outcome": r.outcome,
            "missed_reason": r.missed_reason, "answered_by": r.answered_by, "agents": agents,
            "talk_seconds": float(round(r.talk_seconds, 3)), "ring_seconds": float(round(r.ring_seconds, 3)),
            "hung_up_by": r.hung_up_by, "transferred_to": r.transferred_to,
            "at": self._time(r.ended_at if r.ended_at is not None else r.started_at) or "", "pbx": r.pbx,
        }, frozenset(agents) | effect.audience | ({r.transferred_to} if r.transferred_to else frozenset()), r.pbx)

    def _agent_state(self, effect: AgentStateChanged) -> Outgoing:
        return Outgoing(self.agent_state_wire(effect), frozenset((effect.extension,)), effect.pbx)

    def _pbx_status(self, effect: PbxLinkChanged) -> Outgoing:
        return Outgoing(self.pbx_status(effect.pbx, effect.connected, effect.at), frozenset(), effect.pbx,
                        everyone=True)

    def pbx_status(self, pbx: str, connected: bool, since: float) -> m.PbxStatus:
        """A ``pbx.status`` message: rare (a PBX lost or back), so built as its model."""
        return m.PbxStatus(pbx=pbx, connected=connected, since=self.time(since))

    def for_register(self, change: RegisterChange) -> list[Outgoing]:
        """The missed-call register's changes, for the ``all`` subscribers (admins and QA) of each entry's PBX."""
        out = [Outgoing(m.MissedNew(entry=self.missed(e)), frozenset(), e.pbx) for e in change.opened]
        out += [Outgoing(m.MissedUpdated(entry=self.missed(e)), frozenset(), e.pbx) for e in change.updated]
        # A call-back reached the customer: whoever had claimed the number is done (ui_bridge/register.py).
        out += [Outgoing(m.MissedReleased(number=c.number_key, by=c.by, why="call_back", pbx=c.pbx), frozenset(),
                         c.pbx) for c in change.released]
        return out

    def alert_info(self, alert: Alert) -> m.AlertInfo:
        """An alert of ``cti/alerts.py`` as its history and its messages show it."""
        return m.AlertInfo(
            id=alert.id, kind=alert.kind, key=alert.key, subject=alert.subject,
            status="active" if alert.active else "resolved", since=self._time(alert.since),
            raised_at=self.time(alert.raised_at), acknowledged_at=self._time(alert.acknowledged_at),
            acknowledged_by=alert.acknowledged_by, resolved_at=self._time(alert.resolved_at),
            figures=m.AlertFigures.model_validate({**alert.figures, "caller_display": self.numbers(
                caller if isinstance(caller := alert.figures.get("caller"), str) else None)}),
            pbx=alert.pbx)

    def for_alert(self, event: Literal["raised", "acknowledged", "resolved"], alert: Alert) -> Outgoing:
        """``alert.raised`` / ``alert.acknowledged`` / ``alert.resolved``, for the ``all`` subscribers of its PBX
        (admins; QA users see them too, and cannot acknowledge)."""
        info = self.alert_info(alert)
        message = (m.AlertRaised(alert=info) if event == "raised" else m.AlertAcknowledged(alert=info)
                   if event == "acknowledged" else m.AlertResolved(alert=info))
        return Outgoing(message, frozenset(), alert.pbx)

    def call_card(self, linkedid: str, card: m.CallerCard, pbx: str = DEFAULT_PBX) -> m.CallCard:
        return m.CallCard(linkedid=linkedid, card=card, pbx=pbx)

    # -- transcription (companion/transcriber.py) --------------------------------------------------------

    def call_flagged(self, pbx: str, linkedid: str, matches: Sequence[KeywordMatch],
                     record: CallRecord | None) -> Outgoing:
        """``call.flagged``: the keyword lists a call's transcript matched, with the call's caller and agent from its
        journal row (``record``; None when it has none), for the ``all`` subscribers of its PBX (admins and QA)."""
        caller = record.caller if record is not None and not is_withheld(record.caller) else None
        message = m.CallFlagged(
            linkedid=linkedid, flags=[hit.list for hit in matches],
            hits=[m.KeywordHit(flag=hit.list, phrase=hit.phrase, speaker=hit.speaker, at_second=round(hit.at_second, 2))
                  for hit in matches],
            caller=caller, caller_display=self.numbers(caller),
            answered_by=record.answered_by if record is not None else None,
            queue=record.queue if record is not None else None,
            started_at=self.time(record.started_at) if record is not None else None, pbx=pbx)
        return Outgoing(message, frozenset(), pbx)

    def call_transcribed(self, pbx: str, linkedid: str, flags: Sequence[str]) -> Outgoing:
        """``call.transcribed``: the call's transcript is stored (an open QA page reloads it)."""
        return Outgoing(m.CallTranscribed(linkedid=linkedid, flags=list(flags), pbx=pbx), frozenset(), pbx)

    # -- live audio (issue 17: companion/live/manager.py) -------------------------------------------------

    def transcript_part(self, context: CallContext, result: LiveResult) -> Outgoing:
        """``call.transcript.partial``/``.final``: a tapped lane's words, to the call's agents and the ``all``
        subscribers of its PBX."""
        words = [m.TranscriptWord(text=w.text, start=round(w.start, 3), end=round(w.end, 3), conf=round(w.conf, 3))
                 for w in result.words]
        part = m.CallTranscriptFinal if result.final else m.CallTranscriptPartial
        message = part(linkedid=context.linkedid, lane=result.lane, speaker=result.speaker, text=result.text,
                       words=words, start=round(result.start, 3), end=round(result.end, 3), pbx=context.pbx)
        return Outgoing(message, context.audience, context.pbx)

    def call_flagged_live(self, context: CallContext, matches: Sequence[KeywordMatch]) -> Outgoing:
        """``call.flagged`` with ``live``: a tapped call's final matched keyword lists while the call is up (the
        caller, agent and queue from the call as it is now), to the ``all`` subscribers of its PBX."""
        caller = context.caller if not is_withheld(context.caller) else None
        message = m.CallFlagged(
            linkedid=context.linkedid, flags=[hit.list for hit in matches],
            hits=[m.KeywordHit(flag=hit.list, phrase=hit.phrase, speaker=hit.speaker, at_second=round(hit.at_second, 2))
                  for hit in matches],
            caller=caller, caller_display=self.numbers(caller), answered_by=context.answered_by, queue=context.queue,
            started_at=self.time(context.started_at), pbx=context.pbx, live=True)
        return Outgoing(message, frozenset(), context.pbx)

    def call_identify(self, context: CallContext, offer: Offer, contact: Contact | None) -> Outgoing:
        """``call.identify``: «Это …?», to the call's agents (the ``all`` subscribers of its PBX see it too)."""
        message = m.CallIdentify(
            linkedid=context.linkedid, contact_id=offer.contact_id, name=offer.name,
            confidence=round(offer.confidence, 3),
            heard=[m.IdentifyEvidence(kind=e.kind, said=e.said, speaker=e.speaker, confidence=round(e.confidence, 3))
                   for e in offer.evidence],
            contact=contact_info(contact, self.numbers) if contact is not None else None, pbx=context.pbx)
        return Outgoing(message, context.audience, context.pbx)

    # -- complaints (ui_bridge/complaints.py) -----------------------------------------------------------

    def complaint_info(self, c: Complaint, *, type_title: str, now: float) -> m.ComplaintInfo:
        """A complaint on the wire (``overdue`` as of ``now``; ``missing``: what its stage still needs)."""
        phone = c.client_phone
        return m.ComplaintInfo(
            id=c.id, number=c.number, type=c.type, type_title=type_title, kind=c.kind, stage=c.stage, status=c.status,
            source=c.source, responsible=c.responsible, assignee=c.assignee,
            stage_entered_at=self.time(c.stage_entered_at),
            stage_due_at=self.time(c.stage_due_at) if c.stage_due_at is not None else None,
            overdue=c.stage != "closed" and c.stage_due_at is not None and c.stage_due_at < now,
            missing=[r.name for r in missing_fields(c)] if c.stage != "closed" else [],
            created_at=self.time(c.created_at), created_by=c.created_by, updated_at=self.time(c.updated_at),
            revision=c.revision, client_name=c.client_name, client_phone=phone,
            client_phone_display=self.numbers(phone) if phone else None, client_email=c.client_email,
            contact_id=c.contact_id, car=c.car, plate=c.plate, subject_kind=c.subject_kind, subject=c.subject,
            comment=c.comment, justified=c.justified, result=c.result, fields=dict(c.fields),
            calls=[m.ComplaintCall(pbx=call.pbx, linkedid=call.linkedid) for call in c.calls],
            register_contact_id=c.register_contact_id,
            action_plan=[m.ComplaintPlanRow(when=r.when, what=r.what, who=r.who, result=r.result,
                                            effort_hours=r.effort_hours) for r in c.action_plan],
            attachments=[m.ComplaintAttachmentInfo(id=a.id, file_name=a.file_name, content_type=a.content_type,
                                                   size=a.size, by=a.by, at=self.time(a.at),
                                                   url=f"/api/complaints/attachments/{a.id}") for a in c.attachments],
            closed_at=self.time(c.closed_at) if c.closed_at is not None else None)

    def complaint_task(self, task: Task, number: str, *, now: float) -> m.ComplaintTaskInfo:
        """A stage's task on the wire (``overdue`` as of ``now``)."""
        return m.ComplaintTaskInfo(
            id=task.id, complaint_id=task.complaint_id, number=number, stage=task.stage, assignee=task.assignee,
            created_at=self.time(task.created_at),
            due_at=self.time(task.due_at) if task.due_at is not None else None,
            overdue=task.state == "open" and task.due_at is not None and task.due_at < now, state=task.state,
            done_at=self.time(task.done_at) if task.done_at is not None else None,
            escalated_at=self.time(task.escalated_at) if task.escalated_at is not None else None)

    # -- a connection's own messages -------------------------------------------------------------------

    def hello(self, user: User, now: float, pbxs: list[m.PbxInfo] | None = None) -> m.Hello:
        return m.Hello(server_time=self.time(now), user=user_info(user), pbxs=pbxs or [])

    def state(self, scope: Literal["own", "all"], extension: str | None, calls: list[m.CallInfo],
              agents: list[AgentStateChanged]) -> m.State:
        return m.State(scope=scope, extension=extension, calls=calls,
                       agents=[self.agent_state(a) for a in agents])

    def reply(self, request_id: str, data: dict[str, Any]) -> m.Reply:
        return m.Reply(id=request_id, data=data)

    def error(self, request_id: str | None, code: m.ErrorCode, message: str, by: str | None = None) -> m.Error:
        return m.Error(id=request_id, code=code, message=message, by=by)


#: The agent states the protocol knows (``messages.AgentFiguresInfo.state``).
_AGENT_STATES = frozenset(("idle", "ringing", "in_call", "paused", "offline", "unknown"))


def _rounded(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


#: Numbers whose wire card :meth:`Messages._card_wire` keeps at most.
_CARD_MEMO = 4096


def _audience(context: CallContext | None) -> frozenset[str]:
    return context.audience if context is not None else frozenset()


def user_info(user: User) -> m.UserInfo:
    if user.role == "integration":  # a DMS's token reaches no panel route and no socket (ui_bridge/routes/gate.py)
        raise ValueError("an integration user has no place in the panel")
    return m.UserInfo(name=user.name, role=user.role, extension=user.extension, display_name=user.display_name)


def contact_info(contact: Contact, numbers: NumberDisplay | None = None) -> m.ContactInfo:
    """A contact on the wire; ``numbers`` shows its phones (``phones_display``; empty without it)."""
    return m.ContactInfo(
        id=contact.id, name=contact.name, kind=contact.kind, phones=list(contact.phones),
        phones_display=numbers.all(contact.phones) if numbers is not None else [], email=contact.email,
        notes=contact.notes, source="local" if contact.id is not None else "crm",
        vehicles=[m.VehicleInfo(make=v.make, model=v.model, year=v.year,
                                plate=display_plate(v.plate) if v.plate else None, vin=v.vin)
                  for v in contact.vehicles],
    )
