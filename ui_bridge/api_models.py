"""What the JSON API accepts: request bodies as pydantic models, query parameters as checked values.

Everything a client sends is checked here, at the edge, against what the rest of the daemon can take:
numbers within SQLite's 64-bit integers (a bigger one was an OverflowError and a 500), ranges that end after
they start, and directory entries that are what they claim to be (a plate that is a plate, a VIN of 17
characters, a phone number with digits). A refusal is a :class:`BadRequest` whose text names the field.
What a VIN and a model year may be comes from :mod:`cti.directory`, which the CSV import uses too.
"""

from __future__ import annotations

import re
from datetime import datetime, tzinfo
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError, field_validator
from starlette.datastructures import QueryParams
from starlette.requests import Request

from cti.directory import FIRST_YEAR, LAST_YEAR, Contact, Vehicle, valid_vin
from cti.phones import normalize_number
from cti.plates import plate_key

from .jsonin import BadJson, parse_json

#: SQLite's integers are signed 64-bit: ids and offsets beyond this cannot exist.
SQLITE_MAX_INT = 2**63 - 1
#: What a phone number may be written with: digits and the usual separators.
_PHONE = re.compile(r"\+?[\s(]*[0-9][0-9\s().\-]*")
_WHOLE = re.compile(r"-?[0-9]{1,25}")

M = TypeVar("M", bound=BaseModel)


class BadRequest(ValueError):
    """A request the API refuses (400); ``str()`` is the message for the client."""


async def read_model(request: Request, model: type[M], hint: str = "") -> M:
    """The request's JSON body as ``model``. The body's size is bounded before this runs (limits.py)."""
    try:
        return model.model_validate(parse_json(await request.body()))
    except BadJson as exc:
        raise BadRequest(f"{hint}{exc}") from None
    except ValidationError as exc:
        raise BadRequest(hint + validation_text(exc)) from None


def validation_text(exc: ValidationError) -> str:
    """The first few problems, each with the field it is about (``vehicles.0.vin: ...``)."""
    parts = []
    for error in exc.errors()[:3]:
        where = ".".join(str(p) for p in error["loc"]) or "(body)"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class LoginBody(BaseModel):
    """``POST /api/login``. Not stripped: a password is taken as typed, spaces and all."""

    model_config = ConfigDict(extra="forbid")
    name: Annotated[str, Field(strict=True, min_length=1, max_length=64)]
    password: Annotated[str, Field(strict=True, max_length=1024)]


class AttachBody(_Body):
    """``POST /api/calls/{linkedid}/contact``: a contact's id, a JSON integer (not ``true``, ``1e23`` or ``"7"``)."""

    contact_id: Annotated[int, Field(strict=True, ge=1, le=SQLITE_MAX_INT)]


Text = Annotated[str, StringConstraints(max_length=200)]


class NewVehicle(_Body):
    make: Text | None = None
    model: Text | None = None
    year: Annotated[int, Field(strict=True, ge=FIRST_YEAR, le=LAST_YEAR)] | None = None
    plate: Annotated[str, StringConstraints(max_length=20)] | None = None
    vin: Annotated[str, StringConstraints(max_length=17, to_upper=True)] | None = None

    @field_validator("make", "model", "plate")
    @classmethod
    def _blank_is_none(cls, value: str | None) -> str | None:
        return value or None

    @field_validator("plate")
    @classmethod
    def _a_plate(cls, value: str | None) -> str | None:
        if value is not None and plate_key(value) is None:
            raise ValueError("not a licence plate (letters and digits, e.g. А 123 ВС 777)")
        return value

    @field_validator("vin")
    @classmethod
    def _a_vin(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not valid_vin(value):
            raise ValueError("a VIN is 17 letters and digits, without I, O and Q")
        return value


class NewContact(_Body):
    """``POST /api/contacts``."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    kind: Literal["private", "corporate", "partner", "employee"] = "private"
    phones: list[Annotated[str, StringConstraints(max_length=40)]] = Field(default=[], max_length=10)
    email: Text | None = None
    notes: Annotated[str, StringConstraints(max_length=2000)] | None = None
    vehicles: list[NewVehicle] = Field(default=[], max_length=20)

    @field_validator("phones")
    @classmethod
    def _numbers(cls, phones: list[str]) -> list[str]:
        for phone in phones:
            if not _PHONE.fullmatch(phone) or normalize_number(phone) is None:
                raise ValueError(f"{phone[:40]!r} is not a phone number")
        return phones

    def contact(self) -> Contact:
        return Contact(name=self.name, kind=self.kind, phones=tuple(self.phones), email=self.email or None,
                       notes=self.notes or None,
                       vehicles=tuple(Vehicle(make=v.make, model=v.model, year=v.year, plate=v.plate, vin=v.vin)
                                      for v in self.vehicles))


# -- query parameters -------------------------------------------------------------------------------------------


def whole_number(q: QueryParams, name: str, default: int, low: int, high: int) -> int:
    """Query parameter ``name`` as a whole number within ``low..high``; BadRequest naming it otherwise."""
    text = q.get(name)
    if not text:
        return default
    if not _WHOLE.fullmatch(text) or not low <= int(text) <= high:
        raise BadRequest(f"{name} is a whole number from {low} to {high}")
    return int(text)


#: What :func:`moment` accepts, as its refusal says.
A_DATE_OR_TIME = "a date or an ISO 8601 time (2026-11-24 or 2026-11-24T10:00)"


def moment(text: str | None, name: str, tz: tzinfo | None = None, *, expected: str = A_DATE_OR_TIME) -> float | None:
    """``text`` (the value of ``name``) as a timestamp; None when absent. A date is its midnight; a date or time that
    names no offset is in ``tz`` (the site's zone, ``[pbx] timezone``; None: the server's own). BadRequest naming
    ``name`` and what was ``expected`` otherwise."""
    if not text:
        return None
    try:
        when = datetime.fromisoformat(text)
        if when.tzinfo is None:
            when = when.replace(tzinfo=tz)
        return when.timestamp()
    except (ValueError, OverflowError, OSError):
        raise BadRequest(f"{name}: {text[:40]!r} is not {expected}") from None


def time_param(q: QueryParams, name: str, tz: tzinfo | None = None) -> float | None:
    """Query parameter ``name``, an ISO 8601 date or time (``2026-11-24``, ``2026-11-24T10:00``), as a timestamp
    (:func:`moment`); None when absent."""
    return moment(q.get(name), name, tz)


def period(q: QueryParams, tz: tzinfo | None = None) -> tuple[float | None, float | None]:
    """``since``/``until`` of the query (:func:`time_param`), each may be absent; BadRequest for a period backwards."""
    since, until = time_param(q, "since", tz), time_param(q, "until", tz)
    if since is not None and until is not None and since > until:
        raise BadRequest(f"since ({q.get('since')}) is after until ({q.get('until')}): nothing can be in between")
    return since, until


def range_and_page(q: QueryParams, default_limit: int, max_limit: int = 1000, tz: tzinfo | None = None
                   ) -> tuple[float | None, float | None, int, int]:
    """``since``/``until`` (a date or time without an offset in ``tz``, the site's zone) and ``limit``/``offset`` of
    a listing; BadRequest if any is wrong."""
    since, until = period(q, tz)
    limit = whole_number(q, "limit", default_limit, 1, max_limit)
    offset = whole_number(q, "offset", 0, 0, SQLITE_MAX_INT)
    return since, until, limit, offset


# -- answers ------------------------------------------------------------------------------------------------------


class SubscriberHealth(BaseModel):
    """One subscriber of the daemon's event pipeline (``companion/pipeline.py``), its counts since start."""

    model_config = ConfigDict(from_attributes=True)  # read straight off the pipeline's own stats
    name: str
    queued: int = Field(description="effects waiting for it now")
    most_queued: int = Field(description="the longest its queue has been")
    delivered: int = Field(description="effects it took without raising")
    failed: int = Field(description="effects it raised on")
    stalled: int = Field(description="effects it was cancelled on after its timeout")
    shed: int = Field(description="effects dropped from its full queue")
    restarts: int = Field(description="times its task was started again after it died")


class StoreHealth(BaseModel):
    pending: int = Field(description="writes staged and not committed yet")
    max_pending: int = Field(description="above this, the daemon stops reading the PBX until they are committed")
    pauses: int = Field(description="times reading the PBX was paused for the store since start")
    failures: int = Field(0, description="times committing the backlog failed (a locked or full database) since start")


class PbxLink(BaseModel):
    """One followed PBX's AMI link, as ``GET /api/health`` lists it."""

    id: str = Field(description="the PBX's short id")
    name: str = Field(description="its name for people (the id when it has none)")
    connected: bool = Field(description="logged in to this PBX's AMI, and the connection is open")
    following: bool = Field(True, description="this node follows the PBX now (holds its lease)")
    followed_elsewhere: bool = Field(False, description="another node follows it, as last heard within the "
                                     "mirror's time-out (across panel nodes): false with ``following`` false, "
                                     "nobody follows the PBX now")


class CrmHealth(BaseModel):
    """One CRM the calls are pushed into (issue 16, ``ui_bridge/crm_watch.py``), as ``GET /api/health`` and the
    admin's panel show it."""

    crm: str = Field(description="the CRM: bitrix24, amocrm, zammad, onec or webhook")
    configured: bool = Field(True, description="its [crm.<name>] section is in the configuration (false: requests "
                             "it left in the outbox before it was removed)")
    pending: int = Field(description="requests waiting to be sent (all nodes)")
    failed: int = Field(description="requests given up (``cti crm retry`` or the panel's button queues one again)")
    sent: int = Field(description="requests the CRM accepted (all nodes, kept in the outbox)")
    lag_seconds: float = Field(description="how long the oldest waiting request has waited (0: nothing waits)")
    retried: int = Field(0, description="tries this node's sender failed and put back for later, since start")
    last_error: str | None = Field(None, description="the most recent failure's error, as the CRM or the network "
                                   "gave it")


class RecordingHealth(BaseModel):
    """The daemon's own recordings (``[recording] record``, ``companion/recorder.py``) since start: a PBX that
    refuses ``MixMonitor`` (the AMI user's rights, a full disk) shows here before anyone misses a recording."""

    model_config = ConfigDict(from_attributes=True)  # read straight off the recorder
    started: int = Field(description="MixMonitor actions the PBX accepted")
    adopted: int = Field(description="answered calls the dialplan was recording already (adopted as they are)")
    failures: int = Field(description="MixMonitor actions that failed (refused, unanswered, not sendable)")
    last_failure: str | None = Field(description="the last failure in words: the call, the PBX and why")


class LiveHealth(BaseModel):
    """The live taps (``[live]``, issue 17, ``companion/live/manager.py``) since start: a tap that cannot register, or
    spy calls that never come, show here before an agent misses the live words."""

    registered: bool = Field(description="the tap's SIP endpoint is registered with the PBX now")
    registrations: int = Field(description="registrations the PBX accepted (the first, then every refresh)")
    registration_failures: int = Field(description="failed registrations in a row now (0 when registered)")
    registration_error: str | None = Field(description="why the last registration failed, as the PBX answered")
    taps: int = Field(description="calls tapped now")
    max_taps: int = Field(description="[live] max_taps: calls tapped at once at most")
    tapped: int = Field(description="calls tapped since start")
    over_limit: int = Field(description="answered calls not tapped because max_taps calls were tapped already "
                            "(transcribed after the call)")
    failures: int = Field(description="taps that failed (a spy Originate refused, a spy call that never came): "
                          "those calls are transcribed after they end")
    last_failure: str | None = Field(description="the last failure in words: the call, the PBX and why")
    lanes_heard: int = Field(description="lanes (agent, customer or mixed) heard since start")
    dropped_seconds: float = Field(description="seconds of audio of ended lanes the live recognisers dropped, "
                                   "behind by [live] max_lag (more workers needed)")
    kept: int = Field(description="live transcripts kept with their calls")
    offers: int = Field(description="«Это …?» offers made from speech")


class Health(BaseModel):
    """``GET /api/health`` (admins): what an operator or a monitoring probe checks."""

    ami_connected: bool = Field(description="logged in to the PBX's AMI, and the connection is open (with several "
                                "PBXs: to every one of them; ``pbxs`` has each)")
    ami_error: str | None = Field(description="why the last AMI connection attempt failed or was lost, if it did")
    events_applied: int = Field(description="AMI messages applied to the call model since start")
    events_failed: int = Field(0, description="AMI messages a step of the call model raised on (each cost only itself)")
    calls_in_progress: int
    subscribers: list[SubscriberHealth]
    store: StoreHealth
    pbxs: list[PbxLink] = Field(default=[], description="each followed PBX's AMI link, in the configuration's order")
    crm: list[CrmHealth] = Field(default=[], description="each CRM the calls are pushed into ([crm]): its outbox")
    recording: RecordingHealth | None = Field(None, description="the daemon's own recordings since start; null when "
                                              "it starts none ([recording] record = \"never\")")
    live: LiveHealth | None = Field(None, description="the live taps since start; null without [live] enabled")
