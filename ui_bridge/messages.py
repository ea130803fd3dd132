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


def _examples(*examples: dict[str, Any]) -> ConfigDict:
    return ConfigDict(frozen=True, json_schema_extra={"examples": list(examples)})


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True)


# -- parts --------------------------------------------------------------------------------------------


class PbxInfo(_Wire):
    """A PBX the user sees: its short id (what messages carry as ``pbx``) and its name for people."""

    id: str
    name: str


class UserInfo(_Wire):
    name: str
    role: Literal["agent", "admin", "qa"]
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
    email: str | None = None
    notes: str | None = None
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
                              "pbxs": [{"id": "msk", "name": "Москва, Варшавка"}]})
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
        "called": "74951234567", "queue": "support", "direction": "inbound", "at": _AT,
        "card": {"number": "79161234567", "withheld": False, "name": "Иванов Пётр Сергеевич", "status": "repeat",
                 "contacts": [{"id": 7, "name": "Иванов Пётр Сергеевич", "kind": "private",
                               "phones": ["8 916 123-45-67"], "email": "ivanov@example.ru", "notes": None,
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
    """A request failed, or a message could not be read (then ``id`` is null). The connection stays open."""

    model_config = _examples({"type": "error", "id": "7", "code": "forbidden",
                              "message": "agents may only control their own calls"})
    type: Literal["error"] = "error"
    id: str | None
    code: ErrorCode
    message: str


ServerMessage = Annotated[
    Hello | State | CallRinging | CallCard | CallLegEnded | CallAnswered | CallTransferred | CallEnded | MissedNew
    | MissedUpdated | AgentState | Reply | Error,
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


class Ping(_Request):
    """Answered by a ``reply`` at once: an application-level liveness check."""

    model_config = _request_examples({"type": "ping", "id": "9"})
    type: Literal["ping"]
    id: RequestId


ClientMessage = Annotated[
    Subscribe | Originate | Transfer | Hangup | QueuePause | QueueUnpause | MissedClose | Ping,
    Field(discriminator="type"),
]

CLIENT_ADAPTER: TypeAdapter[ClientMessage] = TypeAdapter(ClientMessage)
SERVER_ADAPTER: TypeAdapter[ServerMessage] = TypeAdapter(ServerMessage)

SERVER_MESSAGES: tuple[type[BaseModel], ...] = (
    Hello, State, CallRinging, CallCard, CallLegEnded, CallAnswered, CallTransferred, CallEnded, MissedNew,
    MissedUpdated, AgentState, Reply, Error,
)
CLIENT_MESSAGES: tuple[type[BaseModel], ...] = (
    Subscribe, Originate, Transfer, Hangup, QueuePause, QueueUnpause, MissedClose, Ping,
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
