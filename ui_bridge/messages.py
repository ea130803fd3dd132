"""The WebSocket protocol, defined once: every message either side may send, as pydantic models.

``cti schema`` writes the JSON Schema generated from these models and ``docs/protocol.md`` is generated
from their docstrings and examples (``ui_bridge/protocol_doc.py``), so the three never disagree.

Every message is a JSON object with a ``type``. Requests from the client carry an ``id`` (any string of
1 to 64 characters the client chooses, without control characters); each is answered by exactly one
``reply`` or ``error`` carrying the same ``id``. Every request field that ends up in an action for the PBX
has a pattern, and a request that breaks one gets a ``bad_message`` error naming the field: nothing of it
reaches the PBX. Times are
ISO 8601 strings with the PBX's UTC offset.

A daemon may follow several PBXs. A linkedid and an extension are unique only within their PBX, so every
message about a call, a missed call or an agent carries its ``pbx`` (the PBX's short id; ``hello`` lists the
PBXs you see with their names), and a request about a call or an extension may name it (``pbx``): it must
when you see several PBXs and the request would be ambiguous without it. You only ever receive, and may only
act on, the PBXs your user belongs to. ``PROTOCOL_VERSION`` goes up when a change can break a client;
new message types and new optional fields do not break clients, which must ignore what they do not know.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter
from pydantic_core import PydanticCustomError

from cti.records import DEFAULT_PBX

PROTOCOL_VERSION = 1

#: The ``pbx`` of every message about a call, a missed call or an agent: a linkedid and an extension mean
#: something only within their PBX.
_PBX_ABOUT = ("The short id of the PBX this is about (a linkedid and an extension are unique only within their "
              "PBX); 'main' on a site with one PBX")


def _pbx_field() -> Any:
    return Field(default=DEFAULT_PBX, description=_PBX_ABOUT)


#: The description of every ``*_display`` field: a number as people read it, next to the number as given.
_DISPLAY = ("The number of the field named without '_display', as people read it ([directory] number_style: "
            "+7 916 123-45-67 or 8 (916) 123-45-67); an extension, or text that is not a phone number, as given; "
            "null when that field is null")


def _display_field() -> Any:
    return Field(default=None, description=_DISPLAY)


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(frozen=True, json_schema_extra={"examples": list(examples)})


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True)


# -- parts --------------------------------------------------------------------------------------------


class PbxInfo(_Wire):
    """A PBX the user sees: its short id (what messages carry as ``pbx``), its name for people, and the daemon's
    link to it at the moment of ``hello`` (then ``pbx.status`` tells each change)."""

    id: str
    name: str
    connected: bool | None = Field(default=None, description="Whether the daemon is connected to this PBX (and has "
                                   "resynced with it); null when not known (another node follows it, and has "
                                   "not said yet)")
    since: str | None = Field(default=None, description="Since when it is so; null when not known")


class UserInfo(_Wire):
    name: str
    role: Literal["agent", "admin", "qa", "employee"]
    extension: str | None = None
    display_name: str | None = None


class VehicleInfo(_Wire):
    make: str | None = None
    model: str | None = None
    year: int | None = None
    plate: str | None = Field(default=None, description="As printed, in Cyrillic: А 123 ВС 777")
    vin: str | None = None


class ContactInfo(_Wire):
    id: int | None = Field(default=None, description="The directory's id; null for a contact from the CRM")
    name: str
    kind: Literal["private", "corporate", "partner", "employee"] = "private"
    phones: list[str] = []
    phones_display: list[str] = Field(default=[], description="The phones as people read them, in the same order "
                                      "([directory] number_style)")
    email: str | None = None
    notes: str | None = Field(default=None, description="Free text from the directory or the CRM: show it as text")
    vehicles: list[VehicleInfo] = []
    source: Literal["local", "crm"] = "local"


class CallSummary(_Wire):
    linkedid: str
    started_at: str
    direction: Literal["inbound", "outbound", "internal"]
    outcome: Literal["answered", "missed", "failed"]
    answered_by: str | None = None
    missed_reason: str | None = None
    pbx: str = _pbx_field()


class CallerCard(_Wire):
    """Who is calling: the directory's contacts for the number (several when a number is shared), their
    cars, the last calls and how many missed calls of the number are still open."""

    number: str | None = Field(default=None, description="The caller's number normalised: country code and digits, "
                               "e.g. 79161234567 for 8 (916) 123-45-67; null when withheld")
    number_display: str | None = _display_field()
    withheld: bool = False
    name: str | None = Field(default=None, description="The first contact's name (not the PBX's caller name)")
    status: Literal["unknown", "new", "repeat"] = Field(
        default="unknown", description="repeat: called within [directory] repeat_days; unknown: withheld")
    contacts: list[ContactInfo] = []
    last_calls: list[CallSummary] = []
    open_missed: int = 0
    sources: list[str] = Field(default=[], description="Where the card comes from: local, crm")


class LegInfo(_Wire):
    extension: str
    channel: str
    state: Literal["ringing", "talking", "dialing", "ended"]


class CallInfo(_Wire):
    """A call in progress, as a client that connects mid-call sees it."""

    linkedid: str
    direction: Literal["inbound", "outbound", "internal"] | None
    caller: str | None
    caller_name: str | None
    called: str | None
    caller_display: str | None = _display_field()
    called_display: str | None = _display_field()
    queue: str | None
    started_at: str
    answered_at: str | None
    answered_by: str | None
    state: Literal["ringing", "talking"]
    agents: list[LegInfo]
    card: CallerCard | None = None
    pbx: str = _pbx_field()


class MissedInfo(_Wire):
    id: int
    linkedid: str
    caller: str | None
    caller_name: str | None
    called: str | None
    caller_display: str | None = _display_field()
    called_display: str | None = _display_field()
    queue: str | None
    reason: str
    missed_at: str | None
    ring_seconds: float
    agents_rung: list[str]
    status: Literal["open", "closed"]
    closed_at: str | None
    closed_by: str | None
    closed_linkedid: str | None
    comment: str | None
    pbx: str = _pbx_field()


# -- server → client ------------------------------------------------------------------------------------

_AT = "2026-11-24T10:15:02.114+03:00"


class Hello(_Wire):
    """First message after the handshake: who the server thinks you are."""

    model_config = _examples({"type": "hello", "protocol": 1, "server_time": _AT,
                              "user": {"name": "anna", "role": "agent", "extension": "101",
                                       "display_name": "Анна Смирнова"},
                              "pbxs": [{"id": "msk", "name": "Москва, Варшавка", "connected": True,
                                        "since": "2026-11-24T08:00:01.503+03:00"}]})
    type: Literal["hello"] = "hello"
    protocol: int = PROTOCOL_VERSION
    server_time: str
    user: UserInfo
    pbxs: list[PbxInfo] = Field(default=[], description="The PBXs you see, in the configuration's order: the "
                                "calls, agents and missed calls of these only. With more than one, the panel "
                                "shows each message's PBX by its name, and a request about a call names it")


class State(_Wire):
    """The current state of what you are subscribed to: sent after ``hello`` and after each ``subscribe``.

    A client that connects mid-call learns its calls from here at once, then follows them by the events."""

    model_config = _examples({
        "type": "state", "scope": "own", "extension": "101",
        "calls": [{"linkedid": "1795480456.101", "direction": "inbound", "caller": "89161234567",
                   "caller_name": "Иван Петров", "called": "74951234567", "queue": "support",
                   "started_at": _AT, "answered_at": None, "answered_by": None, "state": "ringing",
                   "agents": [{"extension": "101", "channel": "PJSIP/101-00000031", "state": "ringing"}],
                   "card": {"number": "79161234567", "withheld": False, "name": None, "status": "unknown"},
                   "pbx": "msk"}],
        "agents": [{"type": "agent.state", "extension": "101", "name": "Анна Смирнова", "state": "ringing",
                    "paused": False, "paused_reason": None, "queues": ["support"], "paused_queues": [],
                    "device_state": "RINGING", "at": _AT, "pbx": "msk"}],
    })
    type: Literal["state"] = "state"
    scope: Literal["own", "all"]
    extension: str | None
    calls: list[CallInfo]
    agents: list[AgentState]


class CallRinging(_Wire):
    """The screen-pop: an agent's phone is ringing for a call (sent to that agent and to ``all`` subscribers)."""

    model_config = _examples({
        "type": "call.ringing", "linkedid": "1795480456.101", "extension": "101",
        "channel": "PJSIP/101-00000031", "caller": "89161234567", "caller_name": "Иван Петров",
        "called": "74951234567", "caller_display": "+7 916 123-45-67", "called_display": "+7 495 123-45-67",
        "queue": "support", "direction": "inbound", "at": _AT,
        "card": {"number": "79161234567", "number_display": "+7 916 123-45-67", "withheld": False,
                 "name": "Иванов Пётр Сергеевич", "status": "repeat",
                 "contacts": [{"id": 7, "name": "Иванов Пётр Сергеевич", "kind": "private",
                               "phones": ["8 916 123-45-67"], "phones_display": ["+7 916 123-45-67"],
                               "email": "ivanov@example.ru", "notes": "Предпочитает звонки после 18:00",
                               "vehicles": [{"make": "Toyota", "model": "Camry", "year": 2019,
                                             "plate": "А 123 ВС 777", "vin": None}], "source": "local"}],
                 "last_calls": [{"linkedid": "1795400000.12", "started_at": "2026-11-20T12:01:33.000+03:00",
                                 "direction": "inbound", "outcome": "answered", "answered_by": "102",
                                 "missed_reason": None}],
                 "open_missed": 0, "sources": ["local"]}, "pbx": "msk"})
    type: Literal["call.ringing"] = "call.ringing"
    linkedid: str
    extension: str = Field(description="The agent extension that is ringing")
    channel: str
    caller: str | None
    caller_name: str | None
    called: str | None = Field(description="The number the caller dialled (the DID for inbound calls)")
    caller_display: str | None = _display_field()
    called_display: str | None = _display_field()
    queue: str | None
    direction: Literal["inbound", "outbound", "internal"] | None
    at: str
    card: CallerCard | None = None
    pbx: str = _pbx_field()


class CallCard(_Wire):
    """The caller card of a call changed: an agent attached a contact to it or created one."""

    model_config = _examples({"type": "call.card", "linkedid": "1795480456.101", "card": {
        "number": "79161234567", "withheld": False, "name": "Иванов Пётр", "status": "new",
        "contacts": [{"id": 7, "name": "Иванов Пётр", "kind": "private", "phones": ["8 916 123-45-67"],
                      "email": None, "notes": None, "vehicles": [], "source": "local"}],
        "last_calls": [], "open_missed": 0, "sources": ["local"]}, "pbx": "msk"})
    type: Literal["call.card"] = "call.card"
    linkedid: str
    card: CallerCard
    pbx: str = _pbx_field()


class CallLegEnded(_Wire):
    """An agent's phone stopped ringing or hung up: close the pop (``answered`` tells whether they took it)."""

    model_config = _examples({"type": "call.leg_ended", "linkedid": "1795480456.101", "extension": "102",
                              "answered": False, "at": _AT, "pbx": "msk"})
    type: Literal["call.leg_ended"] = "call.leg_ended"
    linkedid: str
    extension: str
    answered: bool
    at: str
    pbx: str = _pbx_field()


class CallAnswered(_Wire):
    """An agent took the call. Sent again for each agent who takes it later (after a transfer), with
    ``answered_by`` that agent."""

    model_config = _examples({"type": "call.answered", "linkedid": "1795480456.101", "answered_by": "101",
                              "at": _AT, "pbx": "msk"})
    type: Literal["call.answered"] = "call.answered"
    linkedid: str
    answered_by: str
    at: str
    pbx: str = _pbx_field()


class CallTransferred(_Wire):
    model_config = _examples({"type": "call.transferred", "linkedid": "1795480456.101",
                              "transferred_to": "104", "kind": "redirect", "at": _AT, "pbx": "msk"})
    type: Literal["call.transferred"] = "call.transferred"
    linkedid: str
    transferred_to: str
    kind: Literal["blind", "attended", "redirect"]
    at: str
    pbx: str = _pbx_field()


class CallEnded(_Wire):
    """The call is over; the journal row it became (``cti calls``) has the same facts."""

    model_config = _examples({
        "type": "call.ended", "linkedid": "1795480456.101", "direction": "inbound", "caller": "89161234567",
        "caller_name": "Иван Петров", "called": "74951234567", "outcome": "answered", "missed_reason": None,
        "answered_by": "101", "agents": ["101", "102", "105"], "talk_seconds": 42.5, "ring_seconds": 4.1,
        "hung_up_by": "caller", "transferred_to": None, "at": _AT, "pbx": "msk"})
    type: Literal["call.ended"] = "call.ended"
    linkedid: str
    direction: Literal["inbound", "outbound", "internal"]
    caller: str | None
    caller_name: str | None
    called: str | None
    caller_display: str | None = _display_field()
    called_display: str | None = _display_field()
    outcome: Literal["answered", "missed", "failed"]
    missed_reason: str | None
    answered_by: str | None
    agents: list[str] = Field(description="Every agent whose phone took part (rung or answered)")
    talk_seconds: float
    ring_seconds: float
    hung_up_by: str | None
    transferred_to: str | None
    at: str
    pbx: str = _pbx_field()


class MissedNew(_Wire):
    """A call entered the missed-call register (sent to ``all`` subscribers once it is saved)."""

    model_config = _examples({"type": "missed.new", "entry": {
        "id": 17, "linkedid": "1795480456.101", "caller": "89161234567", "caller_name": "Иван Петров",
        "called": "74951234567", "queue": "support", "reason": "queue_abandoned", "missed_at": _AT,
        "ring_seconds": 12.0, "agents_rung": ["101", "102"], "status": "open", "closed_at": None,
        "closed_by": None, "closed_linkedid": None, "comment": None, "pbx": "msk"}})
    type: Literal["missed.new"] = "missed.new"
    entry: MissedInfo


class MissedUpdated(_Wire):
    """A register entry changed: closed by a call-back, by the caller calling again, or by hand."""

    model_config = _examples({"type": "missed.updated", "entry": {
        "id": 17, "linkedid": "1795480456.101", "caller": "89161234567", "caller_name": "Иван Петров",
        "called": "74951234567", "queue": "support", "reason": "queue_abandoned", "missed_at": _AT,
        "ring_seconds": 12.0, "agents_rung": ["101", "102"], "status": "closed",
        "closed_at": "2026-11-24T10:31:40.000+03:00", "closed_by": "manual", "closed_linkedid": None,
        "comment": "перезвонили, записан на ТО", "pbx": "msk"}})
    type: Literal["missed.updated"] = "missed.updated"
    entry: MissedInfo


class ClaimInfo(_Wire):
    """"Calling back, taken by Anna": who calls a number of the register back now, and until when."""

    pbx: str = _pbx_field()
    number: str = Field(description="The number claimed, normalised (as a missed entry's number is matched: "
                        "79161234567); the register groups a caller's entries by it")
    caller: str | None = Field(description="The number as the caller's newest entry wrote it")
    by: str = Field(description="The user who claimed it (their login name)")
    by_name: str | None = Field(description="Their display name, for people")
    claimed_at: str
    until: str = Field(description="The claim ends by itself then ([register] claim_minutes after it was taken)")


class CallbackResultInfo(_Wire):
    """What a call-back of a number came to, recorded on the entries of that number then open."""

    pbx: str = _pbx_field()
    number: str
    result: Literal["reached", "no_answer", "busy", "wrong_number", "left_message"]
    comment: str | None
    by: str
    at: str
    entries: list[int] = Field(description="The register entries it was recorded on")


class MissedClaimed(_Wire):
    """Somebody took a number of the register to call it back (sent to the ``all`` subscribers of its PBX)."""

    model_config = _examples({"type": "missed.claimed", "claim": {
        "pbx": "msk", "number": "79161234567", "caller": "+7 916 123-45-67", "by": "anna",
        "by_name": "Анна Смирнова", "claimed_at": _AT, "until": "2026-11-24T10:25:02.114+03:00"}})
    type: Literal["missed.claimed"] = "missed.claimed"
    claim: ClaimInfo


class MissedReleased(_Wire):
    """A number's claim ended: its holder released it (``released``), recorded a result (``result``), a call-back
    reached the customer (``call_back``), or its time was up (``timeout``)."""

    model_config = _examples({"type": "missed.released", "number": "79161234567", "by": "anna",
                              "why": "call_back", "pbx": "msk"})
    type: Literal["missed.released"] = "missed.released"
    number: str
    by: str = Field(description="Who had claimed it")
    why: Literal["released", "result", "call_back", "timeout"]
    pbx: str = _pbx_field()


class MissedResultRecorded(_Wire):
    """A call-back's result was recorded on the entries of a number (``reached`` and ``wrong_number`` also close
    them: ``missed.updated`` follows for each)."""

    model_config = _examples({"type": "missed.result_recorded", "result": {
        "pbx": "msk", "number": "79161234567", "result": "no_answer", "comment": "не берёт трубку", "by": "anna",
        "at": _AT, "entries": [17, 21]}})
    type: Literal["missed.result_recorded"] = "missed.result_recorded"
    result: CallbackResultInfo


class AgentState(_Wire):
    """An agent's state changed (from device-state and queue-member events of the PBX)."""

    model_config = _examples({"type": "agent.state", "extension": "101", "name": "Анна Смирнова",
                              "state": "paused", "paused": True, "paused_reason": "break",
                              "queues": ["support", "support-linear"], "paused_queues": ["support"],
                              "device_state": "NOT_INUSE", "at": _AT, "pbx": "msk"})
    type: Literal["agent.state"] = "agent.state"
    extension: str
    name: str | None
    state: Literal["idle", "ringing", "in_call", "paused", "offline", "unknown"]
    paused: bool
    paused_reason: str | None
    queues: list[str]
    paused_queues: list[str]
    device_state: str
    at: str
    pbx: str = _pbx_field()


class PbxStatus(_Wire):
    """The daemon's link to a PBX was lost, or is back: sent to every user who sees that PBX (agents too).

    ``connected: false``: the daemon does not see the PBX's events since ``since``; the calls in progress shown for
    it may have ended or changed meanwhile (the panel marks them uncertain). ``connected: true``: logged in again
    and resynced: the calls that ended meanwhile have had their ``call.ended`` just before this message, and what
    the client shows of the PBX is its truth again. ``hello`` lists each PBX's state at connect."""

    model_config = _examples({"type": "pbx.status", "pbx": "msk", "connected": False, "since": _AT})
    type: Literal["pbx.status"] = "pbx.status"
    pbx: str = Field(description="The PBX's short id")
    connected: bool
    since: str = Field(description="When the link was lost, or came back (the daemon's clock)")


class AlertFigures(_Wire):
    """What an alert's message shows, as evaluated when it was raised; which fields are set depends on its kind
    (``long_wait``: queue, caller, caller_name, linkedid, wait_seconds; ``service_level``: queue, service_level,
    counted_calls, answered_within, within_seconds, window_minutes, threshold_percent; ``paused``: extension, name,
    reason, paused_seconds; ``missed``: missed_id, linkedid, caller, caller_name, queue, reason, age_seconds).
    ``threshold_seconds`` is the setting the condition crossed."""

    queue: str | None = None
    caller: str | None = None
    caller_display: str | None = Field(default=None, description="``caller`` formatted by its region, for people")
    caller_name: str | None = None
    linkedid: str | None = None
    extension: str | None = None
    name: str | None = None
    reason: str | None = None
    missed_id: int | None = None
    wait_seconds: float | None = None
    paused_seconds: float | None = None
    age_seconds: float | None = None
    service_level: float | None = Field(default=None, description="Percent, over the window")
    counted_calls: int | None = None
    answered_within: int | None = None
    within_seconds: float | None = None
    window_minutes: float | None = None
    threshold_seconds: float | None = None
    threshold_percent: float | None = None


class AlertInfo(_Wire):
    """An alert to the supervisor (``docs/panel.md``, Alerts): raised once for a condition, acknowledged by a
    supervisor, resolved (kept in the history) when the condition ended."""

    id: int
    kind: Literal["long_wait", "service_level", "paused", "missed"]
    key: str = Field(description="The condition's stable key, e.g. long_wait:msk:1795480456.101, "
                     "service_level:msk:support, paused:msk:101, missed:msk:17")
    subject: str = Field(description="What it is about, for people: the caller's number, the queue, the extension")
    status: Literal["active", "resolved"]
    since: str | None = Field(description="When the condition began (null for a service level)")
    raised_at: str
    acknowledged_at: str | None = None
    acknowledged_by: str | None = Field(default=None, description="The user who acknowledged it")
    resolved_at: str | None = None
    figures: AlertFigures
    pbx: str = _pbx_field()


_ALERT_EXAMPLE: dict[str, Any] = {
    "id": 42, "kind": "long_wait", "key": "long_wait:msk:1795480456.101", "subject": "89161234567",
    "status": "active", "since": "2026-11-24T10:13:27.000+03:00", "raised_at": _AT, "acknowledged_at": None,
    "acknowledged_by": None, "resolved_at": None,
    "figures": {"queue": "support", "caller": "89161234567", "caller_name": "Иван Петров",
                "linkedid": "1795480456.101", "wait_seconds": 95.1, "threshold_seconds": 90.0},
    "pbx": "msk"}


class AlertRaised(_Wire):
    """A condition of ``[alerts]`` began: sent to the ``all`` subscribers of its PBX (the panel of an admin shows it
    with a sound). Raised once per condition, not repeated while it holds."""

    model_config = _examples({"type": "alert.raised", "alert": _ALERT_EXAMPLE})
    type: Literal["alert.raised"] = "alert.raised"
    alert: AlertInfo


class AlertAcknowledged(_Wire):
    """A supervisor acknowledged an alert (``alert.ack``): ``acknowledged_by`` and ``acknowledged_at`` say who and
    when, for the other supervisors."""

    model_config = _examples({"type": "alert.acknowledged", "alert": {
        **_ALERT_EXAMPLE, "acknowledged_at": "2026-11-24T10:15:09.000+03:00", "acknowledged_by": "boss"}})
    type: Literal["alert.acknowledged"] = "alert.acknowledged"
    alert: AlertInfo


class AlertResolved(_Wire):
    """An alert's condition ended (the caller was answered or left, the agent unpaused, ...): it leaves the active
    alerts and stays in the history (``GET /api/alerts``)."""

    model_config = _examples({"type": "alert.resolved", "alert": {
        **_ALERT_EXAMPLE, "status": "resolved", "resolved_at": "2026-11-24T10:16:40.000+03:00"}})
    type: Literal["alert.resolved"] = "alert.resolved"
    alert: AlertInfo


class QueueFiguresInfo(_Wire):
    """One queue's figures: who waits now, and the day so far (``docs/panel.md``, supervisor view)."""

    queue: str
    waiting: int = Field(description="Callers waiting in the queue now")
    longest_wait_since: str | None = Field(description="When the caller waiting longest arrived at the PBX (the "
                                           "longest wait ticks from it); null when nobody waits")
    answered: int = Field(description="Queue calls of the day an agent answered")
    abandoned: int = Field(description="The caller hung up waiting, after [pbx] short_abandon_seconds")
    short_abandoned: int = Field(description="The caller hung up within [pbx] short_abandon_seconds: in no other "
                                 "figure, the service level included")
    unanswered: int = Field(description="Neither answered nor abandoned: the queue timed out (to voicemail), "
                            "nobody was available")
    service_level: float | None = Field(description="0..1: the share answered within service_level_seconds of "
                                        "their arrival, short abandons left out; null when no call counts")
    average_wait_seconds: float | None = Field(description="Of the answered calls; null when none was answered")
    average_talk_seconds: float | None = Field(description="Of the answered calls; null when none was answered")


class AgentFiguresInfo(_Wire):
    """One agent's figures: the state now and since when, and the day so far."""

    extension: str
    name: str | None
    state: Literal["idle", "ringing", "in_call", "paused", "offline", "unknown"]
    since: str | None = Field(description="When the agent's state last changed (the time in it ticks from it)")
    paused: bool
    paused_reason: str | None
    calls: int = Field(description="Calls the agent took today (answered, or took by a transfer)")
    talk_seconds: float = Field(description="Their talk time today")
    misses: int = Field(description="Calls their phone rang for today and they did not take (the per-agent misses)")


class SupervisorFigures(_Wire):
    """The supervisor's figures of one PBX: per queue and per agent, for the day so far in the PBX's time zone
    (``day``), sent to ``all`` subscribers (admins and QA) of that PBX when a figure changed, at most about once a
    second. Counts come from the journal's rows of the day; waits and times in a state tick in the client from
    ``longest_wait_since`` and ``since``, with no message per second. ``GET /api/supervisor`` gives the same for
    each of your PBXs at once."""

    model_config = _examples({
        "type": "supervisor.figures", "pbx": "msk", "day": "2026-11-24", "at": _AT, "service_level_seconds": 20.0,
        "queues": [{"queue": "support", "waiting": 2, "longest_wait_since": "2026-11-24T10:14:21.070+03:00",
                    "answered": 41, "abandoned": 3, "short_abandoned": 1, "unanswered": 2, "service_level": 0.826,
                    "average_wait_seconds": 14.2, "average_talk_seconds": 187.5}],
        "agents": [{"extension": "101", "name": "Анна Смирнова", "state": "in_call",
                    "since": "2026-11-24T10:12:50.001+03:00", "paused": False, "paused_reason": None, "calls": 17,
                    "talk_seconds": 3120.4, "misses": 2}]})
    type: Literal["supervisor.figures"] = "supervisor.figures"
    pbx: str = _pbx_field()
    day: str = Field(description="The day the counts are of (YYYY-MM-DD, the PBX's time zone): they start again "
                     "at its midnight")
    at: str = Field(description="When the figures were taken: a client keeps the latest of a PBX")
    service_level_seconds: float = Field(description="[supervisor] service_level_seconds")
    queues: list[QueueFiguresInfo]
    agents: list[AgentFiguresInfo]


# -- the contact script (issue 13: ui_bridge/script_desk.py) ----------------------------------------------------


class ScriptEmployeeInfo(_Wire):
    """Someone a call can be passed to or a reminder assigned to (``id`` is what an answer names)."""

    id: str
    name: str
    extension: str | None = None


class ScriptOptionInfo(_Wire):
    """One button of a ``choice`` step: ``value`` is what the answer sends (``{"option": value}``)."""

    label: str
    value: str


class ScriptFieldInfo(_Wire):
    """One typed field of a ``fields`` step; the server reads the value (``docs/contact-script.md``, Field types)."""

    name: str
    type: Literal["text", "phone", "plate", "make", "date", "time", "datetime", "employee", "number"]
    label: str
    required: bool
    multiline: bool = False
    choices: list[ScriptEmployeeInfo] = Field(default=[], description="An employee field's list to pick from")


class ScriptStepInfo(_Wire):
    """The step a run waits at: what to say (``text``) and what the agent answers (by ``kind``)."""

    id: str
    kind: Literal["prompt", "choice", "fields", "identify", "pick_earlier", "transfer", "reminder", "register",
                  "end"]
    title: str
    text: str
    options: list[ScriptOptionInfo] = Field(default=[], description="choice: the buttons")
    fields: list[ScriptFieldInfo] = Field(default=[], description="fields: the typed fields")
    client_kind: str | None = Field(default=None, description="identify: the kind of a new client (private, "
                                    "corporate, partner, employee)")
    car: Literal["required", "optional", "none"] | None = Field(default=None, description="identify: whether a new "
                                                               "client's car (make, model, plate) is asked")
    name_required: bool = Field(default=False, description="identify: a new client's name must be typed")
    required: bool = Field(default=True, description="pick_earlier: false when 'none of these' is allowed")
    employees: list[ScriptEmployeeInfo] = Field(default=[], description="transfer, reminder: whom the agent may "
                                                "pick")
    employee: ScriptEmployeeInfo | None = Field(default=None, description="transfer, reminder: who it goes to "
                                                "unless the agent picks another (the script's choice)")
    mode: Literal["blind", "attended"] | None = Field(default=None, description="transfer: how")
    number: str | None = Field(default=None, description="reminder: the number to call back unless another is "
                               "typed (the new client's phone, else the caller's)")
    stages: list[str] = Field(default=[], description="register: the stage flags the contact gets")


class ScriptTransferInfo(_Wire):
    """The transfer a run's current step asked for: ``pending`` until the target's phone answers or not."""

    employee: ScriptEmployeeInfo
    mode: Literal["blind", "attended"]
    state: Literal["pending", "failed"]
    message: str | None = Field(default=None, description="Why it failed (the PBX refused it, the call is over)")


class ScriptRunInfo(_Wire):
    """A run of a contact script as the agent's panel shows it (kept server-side: a reload or a second tab shows the
    same run at the same step)."""

    id: int
    status: Literal["open", "registered", "ended", "discarded"]
    script: str = Field(description="The script's name")
    title: str
    version: str = Field(description="The script's version (from its content) this run follows")
    label: str | None = Field(default=None, description="The author's own version label")
    channel: Literal["phone", "visit", "internet", "mobile", "invitation"]
    agent: str = Field(description="The extension of the agent following it")
    linkedid: str | None = Field(description="The call it was launched for; null for a run started by hand")
    caller: str | None
    caller_display: str | None = _display_field()
    contact_id: int | None = Field(description="The directory's card the call came with, if any")
    call_active: bool = Field(description="Its call is still in progress (false: ended, or no call): an open run "
                              "stays until it is finished or discarded")
    started_at: str
    step: ScriptStepInfo | None = Field(description="The step to show; null once the run is finished")
    route: list[str] = Field(description="The titles of the steps passed, in order (the progress)")
    can_go_back: bool
    transfer: ScriptTransferInfo | None = None
    reason: str | None = Field(default=None, description="The reason chosen so far")
    discard_reason: str | None = None
    notice: Literal["transfer_answered", "transfer_not_answered", "transfer_failed"] | None = Field(
        default=None, description="What the last change was, when the PBX made it: the transfer's target answered, did "
        "not answer in time, or the transfer could not be made (then ``notice_detail`` says why)")
    notice_detail: str | None = None
    pbx: str = _pbx_field()


class ScriptRun(_Wire):
    """A run of the contact script started or moved on: to the agent following it (every tab of theirs) and to the
    ``all`` subscribers of its PBX (who may ignore it). Sent when an inbound call the agent answered launches it
    (with the pop), after each step, when a transfer's result comes from the PBX, and when it is finished."""

    model_config = _examples({
        "type": "script.run", "pbx": "msk", "run": {
            "id": 12, "status": "open", "script": "car-service", "title": "Входящий звонок — автосервис",
            "version": "3f2a9c01b7de", "label": "2026.1", "channel": "phone", "agent": "101",
            "linkedid": "1795480456.101", "caller": "79161234567", "caller_display": "+7 916 123-45-67",
            "contact_id": None, "call_active": True, "started_at": _AT, "route": [], "can_go_back": False,
            "step": {"id": "reason", "kind": "choice", "title": "Причина обращения",
                     "text": "Автосервис, здравствуйте! Чем могу помочь?",
                     "options": [{"label": "Как добраться", "value": "directions"},
                                 {"label": "Интересуется ремонтом — частник", "value": "repair_private"}]},
            "pbx": "msk"}})
    type: Literal["script.run"] = "script.run"
    run: ScriptRunInfo
    pbx: str = _pbx_field()


# -- call-back reminders (issue 13: ui_bridge/reminders.py) ------------------------------------------------------


class ReminderCard(_Wire):
    """The client's card as it was when the reminder was made (the assignee's panel reads no directory)."""

    name: str | None = None
    kind: str | None = None
    cars: list[str] = Field(default=[], description="Each car as people read it: make, model, plate")
    phones: list[str] = []
    note: str | None = None


class ReminderInfo(_Wire):
    """A call-back reminder (``docs/contact-script.md``, Reminders): an employee is to call a client back at
    ``due_at``. Its assignee sees it (by extension, or by user), and the admins once it is escalated."""

    id: int
    employee: str = Field(description="The script's employee id ([scripts.employees])")
    employee_name: str
    extension: str | None = Field(description="The employee's phone on the PBX (the call button calls from it)")
    user: str | None = Field(default=None, description="The panel user of the employee, when one is known")
    number: str = Field(description="The client's number to call")
    number_display: str | None = Field(default=None, description=_DISPLAY)
    contact_id: int | None = Field(default=None, description="The client in the directory")
    client_name: str | None = None
    card: ReminderCard | None = None
    note: str | None = None
    due_at: str
    due: bool = Field(description="Its time has come (as of this message)")
    created_at: str
    created_by: str | None = Field(default=None, description="Who made it: the agent's extension, or a user")
    linkedid: str | None = Field(default=None, description="The call the reminder was made on")
    run_id: int | None = Field(default=None, description="The script run that made it")
    status: Literal["open", "done", "cancelled"]
    closed_how: Literal["call", "hand"] | None = Field(default=None, description="call: an answered call between "
                                                       "the extension and the number closed it; hand: a user did")
    closed_at: str | None = None
    closed_by: str | None = Field(default=None, description="The user who closed it, or 'call'")
    closed_linkedid: str | None = Field(default=None, description="The call that closed it")
    comment: str | None = None
    escalated_at: str | None = Field(default=None, description="When it was escalated to the admins (overdue)")
    pbx: str = _pbx_field()


_REMINDER_EXAMPLE: dict[str, Any] = {
    "id": 5, "employee": "ivanov", "employee_name": "Иванов И. (мастер)", "extension": "201", "user": "ivan",
    "number": "79161234567", "number_display": "+7 916 123-45-67", "contact_id": 12, "client_name": "Петров Пётр",
    "card": {"name": "Петров Пётр", "kind": "private", "cars": ["Škoda Octavia А123ВС777"],
             "phones": ["+7 916 123-45-67"], "note": None},
    "note": "перезвонить по диагностике", "due_at": "2026-11-24T12:00:00.000+03:00", "due": False,
    "created_at": _AT, "created_by": "101", "linkedid": "1795480456.101", "run_id": 12, "status": "open",
    "closed_how": None, "closed_at": None, "closed_by": None, "closed_linkedid": None, "comment": None,
    "escalated_at": None, "pbx": "msk"}


class ReminderNew(_Wire):
    """A script's reminder step made a reminder: to its assignee (their extension's subscribers) and the ``all``
    subscribers of its PBX."""

    model_config = _examples({"type": "reminder.new", "reminder": _REMINDER_EXAMPLE})
    type: Literal["reminder.new"] = "reminder.new"
    reminder: ReminderInfo


class ReminderDue(_Wire):
    """A reminder's time came: its assignee's panel highlights it (with a sound). Sent once, by one node."""

    model_config = _examples({"type": "reminder.due", "reminder": {**_REMINDER_EXAMPLE, "due": True}})
    type: Literal["reminder.due"] = "reminder.due"
    reminder: ReminderInfo


class ReminderEscalated(_Wire):
    """A reminder still open ``[reminders] escalate_after_minutes`` after its time: the admins' panels list it
    among the overdue reminders. Sent once, by one node, whether or not its employee ever logged in."""

    model_config = _examples({"type": "reminder.escalated", "reminder": {
        **_REMINDER_EXAMPLE, "due": True, "escalated_at": "2026-11-24T12:30:02.000+03:00"}})
    type: Literal["reminder.escalated"] = "reminder.escalated"
    reminder: ReminderInfo


class ReminderClosed(_Wire):
    """A reminder was closed: by an answered call between the extension and the number (``closed_how`` call), or
    by hand with a comment (``reminder.close``)."""

    model_config = _examples({"type": "reminder.closed", "reminder": {
        **_REMINDER_EXAMPLE, "status": "done", "closed_how": "call", "closed_at": "2026-11-24T12:04:10.000+03:00",
        "closed_by": "call", "closed_linkedid": "1795490000.7"}})
    type: Literal["reminder.closed"] = "reminder.closed"
    reminder: ReminderInfo


# -- complaints and claims (issue 15: ui_bridge/complaints.py, docs/complaints.md) -----------------------------------

ComplaintStage = Literal["registration", "review", "justification", "corrective_action", "satisfaction_check",
                         "result", "closed"]


class ComplaintCall(_Wire):
    """A call a complaint is about (the journal's key)."""

    pbx: str
    linkedid: str


class ComplaintPlanRow(_Wire):
    """A row of the action plan: when (YYYY-MM-DD), what, who, the result, the effort in hours."""

    when: str
    what: str
    who: str
    result: str = ""
    effort_hours: float | None = None


class ComplaintAttachmentInfo(_Wire):
    """A file of a complaint: ``file_name`` is the uploader's name, cleaned, shown as text only; the file itself is
    downloaded from ``url`` (by its id: the server never takes a path or a name from a client)."""

    id: int
    file_name: str
    content_type: str
    size: int
    by: str
    at: str
    url: str


class ComplaintInfo(_Wire):
    """A complaint as it stands (``docs/complaints.md``): its stage and status, who is responsible and who works on
    the stage now, its deadline, the client, the stage fields (``fields``), the action plan and the files."""

    id: int
    number: str = Field(description="What people quote (Ж-2026-0001)")
    type: str = Field(description="The type's key ([complaints] types)")
    type_title: str = Field(description="The type's title in the centre's language")
    kind: Literal["client", "supplier"]
    stage: ComplaintStage
    status: Literal["registered", "in_progress", "satisfied", "not_satisfied"]
    source: Literal["call", "panel", "api"]
    responsible: str = Field(description="The user responsible for the whole complaint")
    assignee: str = Field(description="The user working on the current stage (the responsible, or a colleague "
                          "asked for an opinion, or the one the stage was handed to)")
    stage_entered_at: str
    stage_due_at: str | None = Field(default=None, description="The current stage's deadline; null: none")
    overdue: bool = Field(description="The stage's deadline has passed (as of this message)")
    missing: list[str] = Field(default=[], description="What the current stage still needs before it can be left "
                               "(requirement names: docs/complaints.md)")
    created_at: str
    created_by: str
    updated_at: str
    revision: int = Field(description="Grows with every change: send it back with a change, which is refused "
                          "(409) when someone changed the complaint since")
    client_name: str | None = None
    client_phone: str | None = None
    client_phone_display: str | None = _display_field()
    client_email: str | None = None
    contact_id: int | None = Field(default=None, description="The client in the directory")
    car: str | None = None
    plate: str | None = None
    subject_kind: str | None = None
    subject: str | None = None
    comment: str | None = None
    justified: bool | None = None
    result: Literal["satisfied", "not_satisfied"] | None = None
    fields: dict[str, str] = Field(default={}, description="The stage fields (description, cause, department, …)")
    calls: list[ComplaintCall] = []
    register_contact_id: int | None = Field(default=None, description="The contact register's entry of the call")
    action_plan: list[ComplaintPlanRow] = []
    attachments: list[ComplaintAttachmentInfo] = []
    closed_at: str | None = None


class ComplaintTaskInfo(_Wire):
    """The work a stage asks of its assignee, with its deadline (the assignee's panel lists the open ones)."""

    id: int
    complaint_id: int
    number: str = Field(description="The complaint's number")
    stage: ComplaintStage
    assignee: str
    created_at: str
    due_at: str | None = None
    overdue: bool = Field(description="Its deadline has passed (as of this message)")
    state: Literal["open", "done", "cancelled"]
    done_at: str | None = None
    escalated_at: str | None = Field(default=None, description="When it was escalated to the managers (overdue)")


_COMPLAINT_EXAMPLE: dict[str, Any] = {
    "id": 12, "number": "Ж-2026-0012", "type": "quality", "type_title": "Качество работ", "kind": "client",
    "stage": "review", "status": "in_progress", "source": "call", "responsible": "ivan", "assignee": "ivan",
    "stage_entered_at": _AT, "stage_due_at": "2026-11-26T10:15:02.114+03:00", "overdue": False,
    "missing": ["description", "action_plan"], "created_at": _AT, "created_by": "anna", "updated_at": _AT,
    "revision": 2, "client_name": "Петров Пётр", "client_phone": "79161234567",
    "client_phone_display": "+7 916 123-45-67", "client_email": "petrov@example.ru", "contact_id": 7,
    "car": "Škoda Octavia", "plate": "А123ВС777", "subject_kind": "repair_order", "subject": "ЗН-10234",
    "comment": "стук в подвеске после ремонта", "justified": None, "result": None, "fields": {},
    "calls": [{"pbx": "msk", "linkedid": "1795480456.101"}], "register_contact_id": None, "action_plan": [],
    "attachments": [], "closed_at": None}
_TASK_EXAMPLE: dict[str, Any] = {
    "id": 31, "complaint_id": 12, "number": "Ж-2026-0012", "stage": "review", "assignee": "ivan",
    "created_at": _AT, "due_at": "2026-11-26T10:15:02.114+03:00", "overdue": False, "state": "open",
    "done_at": None, "escalated_at": None}


class ComplaintRegistered(_Wire):
    """A complaint was filed (from a call, by hand, or by the integration API): to its responsible and the managers
    (``[complaints] managers``, else the admins), by user, on every node."""

    model_config = _examples({"type": "complaint.registered", "complaint": {**_COMPLAINT_EXAMPLE,
                              "stage": "registration", "status": "registered", "revision": 1, "missing": []},
                              "by": "anna"})
    type: Literal["complaint.registered"] = "complaint.registered"
    complaint: ComplaintInfo
    by: str = Field(description="Who filed it (a user, or the integration user of the API)")


class ComplaintChanged(_Wire):
    """A complaint changed (edited, moved, handed over, answered, reassigned, its plan or files): to its responsible,
    its assignee (and those they were before the change) and the managers."""

    model_config = _examples({"type": "complaint.changed", "complaint": _COMPLAINT_EXAMPLE, "by": "ivan",
                              "actions": ["moved"]})
    type: Literal["complaint.changed"] = "complaint.changed"
    complaint: ComplaintInfo
    by: str
    actions: list[str] = Field(description="What happened (the history's actions: edited, moved, handed_over, "
                               "answered, reassigned, plan_added, plan_edited, plan_removed, attached)")


class ComplaintTask(_Wire):
    """A stage's task was given to someone (the stage entered, handed over, reassigned): to that user, whose panel
    lists it with its deadline."""

    model_config = _examples({"type": "complaint.task", "task": _TASK_EXAMPLE, "complaint": _COMPLAINT_EXAMPLE})
    type: Literal["complaint.task"] = "complaint.task"
    task: ComplaintTaskInfo
    complaint: ComplaintInfo


class ComplaintOverdue(_Wire):
    """A task passed its deadline: escalated once (by one node) to the managers, whose panels list it among the
    overdue ones (an e-mail goes too)."""

    model_config = _examples({"type": "complaint.overdue", "task": {
        **_TASK_EXAMPLE, "overdue": True, "escalated_at": "2026-11-26T10:15:03.000+03:00"},
        "complaint": {**_COMPLAINT_EXAMPLE, "overdue": True}})
    type: Literal["complaint.overdue"] = "complaint.overdue"
    task: ComplaintTaskInfo
    complaint: ComplaintInfo


class KeywordHit(_Wire):
    """Where a keyword list matched a call's transcript first."""

    flag: str = Field(description="The keyword list's name ([transcription.keywords])")
    phrase: str = Field(description="The list's word or phrase that was said (matched on its stems: any form of it)")
    speaker: Literal["agent", "customer", "unknown"]
    at_second: float = Field(description="Seconds into the call's recording: where the QA page opens it")


class CallFlagged(_Wire):
    """A call's transcript matched one or more keyword lists (``[transcription.keywords]``: complaint words,
    competitors' names): to the ``all`` subscribers of its PBX (admins and QA). Sent once per transcription; with
    ``live`` true, while the call is up, as soon as a final of its live transcript matches a list."""

    model_config = _examples({
        "type": "call.flagged", "linkedid": "1795479360.12", "flags": ["complaint"],
        "hits": [{"flag": "complaint", "phrase": "жалоба", "speaker": "customer", "at_second": 12.4}],
        "caller": "79161234500", "caller_display": "+7 916 123-45-00", "answered_by": "102", "queue": "support",
        "started_at": "2026-11-24T10:15:02.000+03:00", "pbx": "msk"})
    type: Literal["call.flagged"] = "call.flagged"
    linkedid: str
    flags: list[str] = Field(description="The names of the keyword lists the transcript matched")
    hits: list[KeywordHit]
    caller: str | None = None
    caller_display: str | None = _display_field()
    answered_by: str | None = None
    queue: str | None = None
    started_at: str | None = Field(default=None, description="When the call started (null when the journal has no "
                                   "row of it)")
    pbx: str = _pbx_field()
    live: bool = Field(default=False, description="True: matched on the live transcript while the call is still "
                       "up (``[live]``; ``at_second`` is then seconds from the tap's start, about the answer), sent "
                       "once per keyword list and call: offer ``listen_in``. False: the after-call transcript's")


class CallTranscribed(_Wire):
    """A call's transcript was stored: an open QA page showing the call (or a search) may load it again. To the
    ``all`` subscribers of its PBX."""

    model_config = _examples({"type": "call.transcribed", "linkedid": "1795479360.12", "flags": [], "pbx": "msk"})
    type: Literal["call.transcribed"] = "call.transcribed"
    linkedid: str
    flags: list[str] = Field(description="The keyword lists it matched (``call.flagged`` came just before)")
    pbx: str = _pbx_field()


# -- live audio (issue 17) ------------------------------------------------------------------------------------

#: Whose voice a lane of a tapped call carries (``cti.live.Lane``): mixed when the spy could not keep them apart.
LiveLane = Literal["agent", "customer", "mixed"]


class TranscriptWord(_Wire):
    """One recognised word of a live transcript, its times in seconds from the tap's start (about the answer)."""

    text: str
    start: float
    end: float
    conf: float = Field(description="How sure the recogniser is, 0..1")


_PARTIAL_EXAMPLE: dict[str, Any] = {
    "linkedid": "1795480456.101", "lane": "customer", "speaker": "customer", "text": "у меня машина",
    "words": [{"text": "у", "start": 3.2, "end": 3.3, "conf": 0.91},
              {"text": "меня", "start": 3.3, "end": 3.62, "conf": 0.95},
              {"text": "машина", "start": 3.62, "end": 4.1, "conf": 0.88}],
    "start": 3.2, "end": 4.1, "pbx": "msk"}


class _TranscriptUtterance(_Wire):
    """What ``call.transcript.partial`` and ``call.transcript.final`` both carry: one utterance of a tapped lane."""

    type: str  # each kind's own literal: first on the wire, as in every message
    linkedid: str
    lane: LiveLane = Field(description="Which tapped lane it was heard on: agent, customer, or mixed (both)")
    speaker: Literal["agent", "customer", "unknown"] = Field(description="Who said it (unknown on a mixed lane)")
    text: str = Field(description="The words as one text (show it as text, never as markup)")
    words: list[TranscriptWord]
    start: float = Field(description="Where the utterance starts: seconds from the tap's start")
    end: float = Field(description="Where it ends (so far, in a partial): seconds from the tap's start")
    pbx: str = _pbx_field()


class CallTranscriptPartial(_TranscriptUtterance):
    """The utterance a tapped call's lane is saying now, as recognised so far (``[live]``): the next partial or the
    final of the same lane replaces it. To the agents of the call (its audience) and the ``all`` subscribers of its
    PBX (admins, QA). Partials may be skipped when the recogniser is behind; finals never are."""

    model_config = _examples({"type": "call.transcript.partial", **_PARTIAL_EXAMPLE})
    type: Literal["call.transcript.partial"] = "call.transcript.partial"


class CallTranscriptFinal(_TranscriptUtterance):
    """An utterance of a tapped call settled: never changed again; it replaces the lane's partial. Same audience
    as ``call.transcript.partial``. The finals of a call are kept with it when it ends (QA reads the same words);
    an after-call transcription of the call, when one runs, replaces them when it finishes."""

    model_config = _examples({"type": "call.transcript.final", **_PARTIAL_EXAMPLE})
    type: Literal["call.transcript.final"] = "call.transcript.final"


class IdentifyEvidence(_Wire):
    """One thing heard that points to the offered contact."""

    kind: Literal["plate", "partial_plate", "phone", "surname"] = Field(
        description="A plate, a plate without its region, a phone number, a surname")
    said: str = Field(description="What was heard, as to show it: А 123 ВС 77, 8 916 123 45 67, Петрову")
    speaker: Literal["agent", "customer", "unknown"]
    confidence: float = Field(description="How sure the hearing was, 0..1")


class CallIdentify(_Wire):
    """«Это …?»: what was said in the first 30 s of a tapped call points to one directory contact (a plate, a
    phone number, a surname with something else). To the agents of the call only, at most once per call; nothing
    is attached until the agent sends ``identify.confirm`` (or ``identify.dismiss``)."""

    model_config = _examples({
        "type": "call.identify", "linkedid": "1795480456.101", "contact_id": 7, "name": "Иванов Пётр Сергеевич",
        "confidence": 0.93, "heard": [{"kind": "plate", "said": "А 123 ВС 777", "speaker": "customer",
                                       "confidence": 0.93}],
        "contact": {"id": 7, "name": "Иванов Пётр Сергеевич", "kind": "private", "phones": ["8 916 123-45-67"],
                    "phones_display": ["+7 916 123-45-67"], "email": None, "notes": None,
                    "vehicles": [{"make": "Toyota", "model": "Camry", "year": 2019, "plate": "А 123 ВС 777",
                                  "vin": None}], "source": "local"},
        "pbx": "msk"})
    type: Literal["call.identify"] = "call.identify"
    linkedid: str
    contact_id: int
    name: str = Field(description="The contact's name (show it as text)")
    confidence: float = Field(description="How sure the match is, 0..1")
    heard: list[IdentifyEvidence] = Field(description="Why: what was heard, strongest first")
    contact: ContactInfo | None = Field(default=None, description="The contact's card (phones, cars) when the "
                                        "directory still has it")
    pbx: str = _pbx_field()


class Reply(_Wire):
    """A request succeeded. ``data`` depends on the request (e.g. the AMI ActionID of a command)."""

    model_config = _examples({"type": "reply", "id": "7", "ok": True, "data": {"action_id": "cti-42"}})
    type: Literal["reply"] = "reply"
    id: str
    ok: Literal[True] = True
    data: dict[str, Any] = {}


ErrorCode = Literal[
    "bad_json", "bad_message", "too_large", "forbidden", "not_found", "conflict", "rate_limited",
    "pbx_unavailable", "pbx_timeout", "pbx_refused", "internal",
]


class Error(_Wire):
    """A request failed, or a message could not be read (then ``id`` is null). The connection stays open.

    A client words the error itself, by ``code`` (the panel in Russian or English); ``message`` is the server's
    English for developers and logs. A refusal that names someone carries them as a field, so that a client can
    say it in its own words without parsing ``message``."""

    model_config = _examples({"type": "error", "id": "7", "code": "forbidden",
                              "message": "agents may only control their own calls"})
    type: Literal["error"] = "error"
    id: str | None
    code: ErrorCode
    message: str
    by: str | None = Field(default=None, description="A ``conflict`` caused by another user: who (the name shown "
                           "for them): the one calling the number back (``missed.claim``), the one who acknowledged "
                           "the alert (``alert.ack``)")


ServerMessage = Annotated[
    Hello | State | CallRinging | CallCard | CallLegEnded | CallAnswered | CallTransferred | CallEnded | MissedNew
    | MissedUpdated | AgentState | PbxStatus | AlertRaised | AlertAcknowledged | AlertResolved | SupervisorFigures
    | Reply | Error
    | MissedClaimed | MissedReleased | MissedResultRecorded
    | ScriptRun
    | ReminderNew | ReminderDue | ReminderEscalated | ReminderClosed
    | CallFlagged | CallTranscribed
    | ComplaintRegistered | ComplaintChanged | ComplaintTask | ComplaintOverdue
    | CallTranscriptPartial | CallTranscriptFinal | CallIdentify,
    Field(discriminator="type"),
]


# -- client → server ------------------------------------------------------------------------------------

# Request fields are checked at the edge: each that can reach an AMI action has a pattern (AMI ends a line at
# LF and a header at NUL, see asterisk/messages.py, which refuses them again as a backstop). The patterns are
# written for three regex dialects at once: Python's (the check below, with fullmatch, so a trailing newline
# cannot slip past '$'), ECMAScript's and Rust's (the published JSON Schema's readers: browsers, Hypothesis).
# The check is ours rather than Field(pattern=...) only for the error text, which names the rule in words.

#: Characters no text field may hold: C0 and C1 controls (CR, LF, NUL, ESC, DEL, U+0085...), zero-width and
#: bidirectional formatting characters, the Unicode line and paragraph separators, word joiners, the BOM.
_CONTROLS = r"\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"
#: Free text that may span lines: the same, but TAB, LF and CR are allowed.
_CONTROLS_BUT_LINES = r"\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff"


def _matching(pattern: str, rule: str) -> Callable[[str], str]:
    """A validator: the whole value matches ``pattern``, or the error says ``rule`` (no braces in it)."""
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if compiled.fullmatch(value) is None:
            raise PydanticCustomError("string_pattern_mismatch", rule)
        return value

    return check


def _checked(pattern: str, rule: str, *, max_length: int, min_length: int = 1, about: str = "") -> Any:
    """``Annotated`` metadata for a string field: lengths, ``pattern`` in the schema, the check itself."""
    return (Field(min_length=min_length, max_length=max_length, description=about or None,
                  json_schema_extra={"pattern": pattern}), AfterValidator(_matching(pattern, rule)))


_ID = rf"^[^{_CONTROLS}]+$"
_PHONE = r"^\+?[0-9 ()\-]*[0-9][0-9 ()\-]*$"
_EXTENSION = r"^[0-9]{1,10}$"
#: Asterisk's ids are ``<epoch>.<sequence>`` (1795480456.101), with the system name in front when asterisk.conf
#: sets ``systemname`` (pbx1-1795480456.101). Only looked up, never sent: kept loose enough for both.
_LINKEDID = r"^[A-Za-z0-9][A-Za-z0-9._\-]*$"
#: A PBX's short id (``asterisk.settings.PBX_ID``).
_PBX = r"^[a-z0-9][a-z0-9_\-]{0,15}$"
#: A queue's name is its section in queues.conf.
_QUEUE = r"^[0-9A-Za-zА-Яа-яЁё_.\-]+$"
#: '|' (written \x7c so Markdown tables survive the pattern) separates the fields of Asterisk's queue_log,
#: where the reason of a pause is written: one in a reason would shift the fields that reports read.
_REASON = rf"^[^{_CONTROLS}\x7c]*$"
_COMMENT = rf"^[^{_CONTROLS_BUT_LINES}]*$"

RequestId = Annotated[str, *_checked(_ID, "must be 1 to 64 characters without control characters or line breaks",
                                     max_length=64)]
Extension = Annotated[str, *_checked(_EXTENSION, "must be an extension: 1 to 10 digits", max_length=10)]
PhoneNumber = Annotated[str, *_checked(
    _PHONE, "must be a phone number or an extension: digits, an optional leading '+', spaces, brackets and '-'",
    max_length=32)]
LinkedId = Annotated[str, *_checked(
    _LINKEDID, "must be a call's linkedid as the PBX reports it, e.g. 1795480456.101", max_length=64,
    about="The call's Linkedid, as in the call's messages.")]
PbxId = Annotated[str, *_checked(
    _PBX, "must be a PBX's short id: lower-case Latin letters, digits, '-' and '_'", max_length=16,
    about="The PBX the request is about (its id, as messages carry it as 'pbx'). Needed only by a user who "
          "sees several PBXs, when the request would be ambiguous without it; implied for a user of one PBX.")]
QueueName = Annotated[str, *_checked(_QUEUE, "must be a queue name: letters, digits, '-', '_' and '.'",
                                     max_length=80, about="A queue's name as in queues.conf.")]
PauseReason = Annotated[str, *_checked(
    _REASON, "must be text without control characters, line breaks or '|'", max_length=80, min_length=0,
    about="Shown to supervisors and written to the PBX's queue_log.")]
Comment = Annotated[str, *_checked(_COMMENT, "must be text without control characters (line breaks and tabs are "
                                   "fine)", max_length=1000, min_length=0)]


class _Request(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


def _request_examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(frozen=True, extra="forbid", json_schema_extra={"examples": list(examples)})


class Subscribe(_Request):
    """Choose what you receive: ``own`` (your extension's calls and state) or ``all`` (every call, agent and
    missed-call event of your PBXs; admins and QA only). At connect agents are on ``own``, admins and QA on ``all``.
    Answered by ``reply``, then a fresh ``state``."""

    model_config = _request_examples({"type": "subscribe", "id": "1", "scope": "all"})
    type: Literal["subscribe"]
    id: RequestId
    scope: Literal["own", "all"] = "own"


class Originate(_Request):
    """Click-to-call: ring the agent's phone, then dial ``number`` from it (AMI ``Originate``).
    Agents call from their own extension; admins may give ``extension``."""

    model_config = _request_examples({"type": "originate", "id": "2", "number": "+7 916 123-45-67"})
    type: Literal["originate"]
    id: RequestId
    number: PhoneNumber
    extension: Extension | None = None
    pbx: PbxId | None = None


class Transfer(_Request):
    """Transfer a call to ``target`` (an extension, a ring group or an external number).
    ``blind`` moves the other party at once (AMI ``Redirect``); ``attended`` lets the agent talk to the
    target first (AMI ``Atxfer`` on the agent's channel)."""

    model_config = _request_examples({"type": "transfer", "id": "3", "linkedid": "1795480456.101",
                                      "target": "104", "mode": "blind"})
    type: Literal["transfer"]
    id: RequestId
    linkedid: LinkedId
    target: PhoneNumber
    mode: Literal["blind", "attended"] = "blind"
    pbx: PbxId | None = None


class Hangup(_Request):
    """Hang up: an agent hangs up their own leg of the call; an admin not on the call ends the whole call."""

    model_config = _request_examples({"type": "hangup", "id": "4", "linkedid": "1795480456.101"})
    type: Literal["hangup"]
    id: RequestId
    linkedid: LinkedId
    pbx: PbxId | None = None


class QueuePause(_Request):
    """Pause the agent in one queue, or in all their queues when ``queue`` is omitted (AMI ``QueuePause``)."""

    model_config = _request_examples({"type": "queue.pause", "id": "5", "reason": "break"})
    type: Literal["queue.pause"]
    id: RequestId
    queue: QueueName | None = None
    reason: PauseReason | None = None
    extension: Extension | None = None
    pbx: PbxId | None = None


class QueueUnpause(_Request):
    model_config = _request_examples({"type": "queue.unpause", "id": "6"})
    type: Literal["queue.unpause"]
    id: RequestId
    queue: QueueName | None = None
    extension: Extension | None = None
    pbx: PbxId | None = None


class MissedClose(_Request):
    """Close a missed-call register entry by hand, with a comment (admins)."""

    model_config = _request_examples({"type": "missed.close", "id": "8", "missed_id": 17,
                                      "comment": "перезвонили, записан на ТО"})
    type: Literal["missed.close"]
    id: RequestId
    missed_id: Annotated[int, Field(ge=1, le=2**63 - 1)]  # an SQLite integer
    comment: Comment | None = None


_NUMBER_ABOUT = ("The number: as a register row's 'number' gives it (79161234567) or written any way a phone number "
                 "is written")


class MissedClaim(_Request):
    """Take a number of the register to call it back (admins): every ``all`` subscriber of its PBX gets
    ``missed.claimed``. A number another user holds is a ``conflict`` naming them; the claim ends when a call-back
    reaches the customer, when its holder releases it or records a result, or after ``[register] claim_minutes``
    (claiming it again extends it)."""

    model_config = _request_examples({"type": "missed.claim", "id": "11", "number": "79161234567", "pbx": "msk"})
    type: Literal["missed.claim"]
    id: RequestId
    number: Annotated[PhoneNumber, Field(description=_NUMBER_ABOUT)]
    pbx: PbxId | None = None


class MissedRelease(_Request):
    """Give a claimed number back (its holder): ``missed.released`` to every ``all`` subscriber of its PBX."""

    model_config = _request_examples({"type": "missed.release", "id": "12", "number": "79161234567", "pbx": "msk"})
    type: Literal["missed.release"]
    id: RequestId
    number: Annotated[PhoneNumber, Field(description=_NUMBER_ABOUT)]
    pbx: PbxId | None = None


class MissedResult(_Request):
    """Record what a call-back of a number came to on its open entries (admins), with a comment; it ends your
    claim on it. ``reached`` and ``wrong_number`` also close the entries (nobody owes that number a call-back)."""

    model_config = _request_examples({"type": "missed.result", "id": "13", "number": "79161234567",
                                      "result": "no_answer", "comment": "не берёт трубку", "pbx": "msk"})
    type: Literal["missed.result"]
    id: RequestId
    number: Annotated[PhoneNumber, Field(description=_NUMBER_ABOUT)]
    result: Literal["reached", "no_answer", "busy", "wrong_number", "left_message"]
    comment: Comment | None = None
    pbx: PbxId | None = None


class AlertAck(_Request):
    """Acknowledge an alert (admins of its PBX): answered by ``reply`` with the alert; every ``all`` subscriber of
    the PBX gets ``alert.acknowledged``. An alert acknowledged already is a ``conflict`` that names who did it."""

    model_config = _request_examples({"type": "alert.ack", "id": "10", "alert_id": 42})
    type: Literal["alert.ack"]
    id: RequestId
    alert_id: Annotated[int, Field(ge=1, le=2**63 - 1)]


_RUN_ABOUT = "The run's id (as script.run gives it)"
#: An answer to a step: a JSON object whose shape the step's kind says (``docs/contact-script.md``, Step kinds).
ScriptAnswerValue = Annotated[dict[str, Any], Field(description="The step's answer: {} for a prompt, "
                              "{\"option\": value} for a choice, {field: value, ...} for fields, …")]


class ScriptStart(_Request):
    """Start the contact script by hand (agents): a walk-in ``visit``, an ``internet`` enquiry, or a call-back of a
    missed call (``phone`` with the customer's ``number``). Answered by ``reply`` with ``run``; ``script.run`` follows
    to every tab of the agent.

    With ``linkedid`` (channel ``phone``): register an answered inbound call of the journal that has no contact (the
    reports' "register now"); the contact is linked to that call. An agent registers the calls they answered; an admin
    any call of their PBXs, and the run is then the answering agent's (opened on their panel; ``reply`` names them in
    ``agent``). The agent's open run of that call is returned rather than a second one; a call with a contact already
    is ``conflict``."""

    model_config = _request_examples({"type": "script.start", "id": "14", "channel": "visit"})
    type: Literal["script.start"]
    id: RequestId
    channel: Literal["phone", "visit", "internet", "mobile", "invitation"] = "visit"
    script: Annotated[str | None, Field(max_length=64, description="The script's name; none: the default")] = None
    number: Annotated[PhoneNumber | None, Field(description="The customer's number (a call-back)")] = None
    linkedid: Annotated[LinkedId | None, Field(description="An answered inbound call of the journal to register "
                                                           "(its number is the call's caller)")] = None
    pbx: PbxId | None = None


class ScriptAnswer(_Request):
    """Answer the run's current step (``step``: its id). Answered by ``reply`` with ``run`` at its next step, or with
    ``refused`` (``code``, ``message`` and, for typed fields, one message per field) and the run unchanged."""

    model_config = _request_examples({"type": "script.answer", "id": "15", "run": 12, "step": "reason",
                                      "answer": {"option": "repair_private"}})
    type: Literal["script.answer"]
    id: RequestId
    run: Annotated[int, Field(ge=1, le=2**63 - 1, description=_RUN_ABOUT)]
    step: Annotated[str, Field(min_length=1, max_length=64)]
    answer: ScriptAnswerValue = {}


class ScriptBack(_Request):
    """Go back one step (its answer is dropped): ``reply`` with ``run``, or ``refused`` (over a transfer made or a
    reminder set, or at the first step)."""

    model_config = _request_examples({"type": "script.back", "id": "16", "run": 12})
    type: Literal["script.back"]
    id: RequestId
    run: Annotated[int, Field(ge=1, le=2**63 - 1, description=_RUN_ABOUT)]


class ScriptDiscard(_Request):
    """Close an open run without a contact, with the reason (a call that ended mid-script and was not one)."""

    model_config = _request_examples({"type": "script.discard", "id": "17", "run": 12,
                                      "reason": "клиент положил трубку"})
    type: Literal["script.discard"]
    id: RequestId
    run: Annotated[int, Field(ge=1, le=2**63 - 1, description=_RUN_ABOUT)]
    reason: Annotated[Comment, Field(min_length=1)]


class ScriptRuns(_Request):
    """The agent's open runs (after a reload, in a second tab): ``reply`` with ``runs``, oldest first, and
    ``scripts``, the names and titles of the scripts a run may be started with."""

    model_config = _request_examples({"type": "script.runs", "id": "18"})
    type: Literal["script.runs"]
    id: RequestId


class ReminderClose(_Request):
    """Close a reminder by hand with a comment (its assignee, or an admin of its PBX): done, or ``cancel`` (nobody
    is to call back any more). Answered by ``reply`` with ``reminder``; ``reminder.closed`` follows."""

    model_config = _request_examples({"type": "reminder.close", "id": "19", "reminder_id": 5,
                                      "comment": "дозвонился с мобильного, записал на среду"})
    type: Literal["reminder.close"]
    id: RequestId
    reminder_id: Annotated[int, Field(ge=1, le=2**63 - 1)]
    comment: Comment | None = None
    cancel: bool = False


class IdentifyConfirm(_Request):
    """«Это …?» answered yes (the agent of the call): the call's card becomes that contact's (``call.card`` to the
    call's audience, as when a contact is attached by hand). Answered by ``reply`` with ``card``; a contact that is
    gone is ``not_found``, a call that is not yours ``forbidden``."""

    model_config = _request_examples({"type": "identify.confirm", "id": "20", "linkedid": "1795480456.101",
                                      "contact_id": 7, "pbx": "msk"})
    type: Literal["identify.confirm"]
    id: RequestId
    linkedid: LinkedId
    contact_id: Annotated[int, Field(ge=1, le=2**63 - 1)]
    pbx: PbxId | None = None


class IdentifyDismiss(_Request):
    """«Это …?» answered no (the agent of the call): nothing is attached, and no other offer comes for the call.
    Answered by ``reply``."""

    model_config = _request_examples({"type": "identify.dismiss", "id": "21", "linkedid": "1795480456.101",
                                      "pbx": "msk"})
    type: Literal["identify.dismiss"]
    id: RequestId
    linkedid: LinkedId
    pbx: PbxId | None = None


class ListenIn(_Request):
    """Listen to a call in progress (admins of its PBX): the PBX rings your own extension and, when you answer,
    lets you hear the call's agent and customer, silently (``ChanSpy``, quiet, no whisper). ``extension`` picks
    which agent of the call when several talk; by default the one talking. Answered by ``reply`` with
    ``action_id``; a call that is not up is ``not_found``, a user without an extension ``bad_message``."""

    model_config = _request_examples({"type": "listen_in", "id": "22", "linkedid": "1795480456.101", "pbx": "msk"})
    type: Literal["listen_in"]
    id: RequestId
    linkedid: LinkedId
    extension: Annotated[Extension | None, Field(description="The agent of the call to listen to")] = None
    pbx: PbxId | None = None


class Ping(_Request):
    """Answered by a ``reply`` at once: an application-level liveness check."""

    model_config = _request_examples({"type": "ping", "id": "9"})
    type: Literal["ping"]
    id: RequestId


ClientMessage = Annotated[
    Subscribe | Originate | Transfer | Hangup | QueuePause | QueueUnpause | MissedClose | AlertAck | Ping
    | MissedClaim | MissedRelease | MissedResult
    | ScriptStart | ScriptAnswer | ScriptBack | ScriptDiscard | ScriptRuns
    | ReminderClose
    | IdentifyConfirm | IdentifyDismiss | ListenIn,
    Field(discriminator="type"),
]

CLIENT_ADAPTER: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
SERVER_ADAPTER: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)

SERVER_MESSAGES: tuple[type[BaseModel], ...] = (
    Hello, State, CallRinging, CallCard, CallLegEnded, CallAnswered, CallTransferred, CallEnded, MissedNew,
    MissedUpdated, AgentState, PbxStatus, AlertRaised, AlertAcknowledged, AlertResolved, SupervisorFigures, Reply,
    Error,
    MissedClaimed, MissedReleased, MissedResultRecorded,
    ScriptRun,
    ReminderNew, ReminderDue, ReminderEscalated, ReminderClosed,
    CallFlagged, CallTranscribed,
    ComplaintRegistered, ComplaintChanged, ComplaintTask, ComplaintOverdue,
    CallTranscriptPartial, CallTranscriptFinal, CallIdentify,
)
CLIENT_MESSAGES: tuple[type[BaseModel], ...] = (
    Subscribe, Originate, Transfer, Hangup, QueuePause, QueueUnpause, MissedClose, AlertAck, Ping,
    MissedClaim, MissedRelease, MissedResult,
    ScriptStart, ScriptAnswer, ScriptBack, ScriptDiscard, ScriptRuns,
    ReminderClose,
    IdentifyConfirm, IdentifyDismiss, ListenIn,
)


def json_schema() -> dict[str, Any]:
    """The whole protocol as one JSON Schema document (``cti schema``)."""
    server = SERVER_ADAPTER.json_schema(ref_template="#/$defs/{model}")
    client = CLIENT_ADAPTER.json_schema(ref_template="#/$defs/{model}")
    defs = {**server.pop("$defs", {}), **client.pop("$defs", {})}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://cti-companion.example/protocol/v1.json",
        "title": f"CTI Companion WebSocket protocol, version {PROTOCOL_VERSION}",
        "description": (__doc__ or "").strip(),
        "oneOf": [
            {"title": "Server to client", **server},
            {"title": "Client to server", **client},
        ],
        "$defs": defs,
    }
