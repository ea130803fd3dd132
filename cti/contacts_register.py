"""The contact register's domain: a registered contact, its stage flags, the listing's filters, and its rows.

Pure: no I/O, no clock. A contact script's run that ends at a ``register`` step (``cti/scripts/runner.py``'s
``ContactReady``) is saved by the store (``Store.save_contact``) as a :class:`RegisteredContact`: one entry per
contact, with its channel, client and client type, primary or repeat, reason, route and answers, the employee it was
passed to and the workshop, the call(s) it is about, the agent, the script's name and version, the time per step, and
the stage flags *request*, *booking* and *visit*, each with when and by whom (or what) it was set.

What is decided here, once, for the store, the HTTP API, the DMS integration and the CLI:

* what a valid entry is (:class:`RegisteredContact` refuses an unknown channel, client type or stage when frozen);
* what setting a stage again means (:func:`stage_change`): the same event twice changes nothing (a DMS retries), a
  different one for a stage already set is a conflict; a *visit* needs no *booking* (a walk-in is a visit);
* the listing's filters (:class:`ContactFilter`) and the rows of its JSON and CSV (:func:`register_row`,
  :func:`write_register_csv`: every text cell formula-neutralised, :func:`cti.safe_text.csv_cell`).

"Repeat" is the caller card's rule (:func:`cti.directory.is_repeat`): an earlier contact of the client, or an earlier
call from or to one of its numbers, within ``[directory] repeat_days``.
"""

from __future__ import annotations

import csv
import hashlib
import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import tzinfo
from typing import Any, Literal, TextIO

from .directory import CONTACT_KINDS, Contact, ContactKind, Vehicle
from .records import iso_time
from .safe_text import csv_cell
from .scripts.model import CHANNELS, STAGES, Channel, Employee, JsonObject, Stage
from .scripts.runner import ClientDraft, ContactDraft, StepTime

#: Who set a stage that the script's own route set (a ``register`` step's or an option's ``stages``).
BY_SCRIPT = "script"
#: The longest DMS event id, user name or workshop kept.
MAX_EXTERNAL_ID = 100
MAX_BY = 100


@dataclass(frozen=True, slots=True)
class StageMark:
    """A stage flag: when it was set, by whom or what (a user's name, ``script``), and the DMS's id of the event."""

    stage: Stage
    at: float
    by: str
    external_id: str | None = None

    def __post_init__(self) -> None:
        if self.stage not in STAGES:
            raise ValueError(f"unknown stage {self.stage!r} (known: {', '.join(STAGES)})")
        if not math.isfinite(self.at):
            raise ValueError("a stage's time is a finite epoch")
        if not self.by or len(self.by) > MAX_BY:
            raise ValueError(f"a stage says who set it (1-{MAX_BY} characters)")
        if self.external_id is not None and not 0 < len(self.external_id) <= MAX_EXTERNAL_ID:
            raise ValueError(f"an external id is 1-{MAX_EXTERNAL_ID} characters")


@dataclass(frozen=True, slots=True)
class LinkedCall:
    """A call the contact is about, on its PBX; ``recording`` is the journal row's (None until the call is saved)."""

    pbx: str
    linkedid: str
    recording: str | None = None


@dataclass(frozen=True, slots=True)
class RegisteredContact:
    """One entry of the contact register, as the store keeps it (``id`` is the register's own number)."""

    id: int
    at: float  # when the contact began (the run's start)
    finished_at: float
    channel: Channel
    script: str
    version: str
    saved_at: float
    label: str | None = None
    pbx: str | None = None
    agent: str | None = None  # the agent's extension on ``pbx``
    client_id: int | None = None  # the directory's contact
    vehicle_id: int | None = None
    client_name: str | None = None  # as they were when the contact was registered
    client_phone: str | None = None
    client_kind: ContactKind | None = None
    client_new: bool = False  # created in the directory by this contact
    repeat: bool = False
    reason: str | None = None
    route: tuple[str, ...] = ()
    answers: Mapping[str, JsonObject] = field(default_factory=dict)
    times: tuple[StepTime, ...] = ()
    employee: Employee | None = None  # the employee the call was passed to (the last transfer)
    transfer_answered: bool | None = None
    workshop: str | None = None
    earlier_call: str | None = None
    earlier_contact: int | None = None
    note: str | None = None
    calls: tuple[LinkedCall, ...] = ()
    stages: tuple[StageMark, ...] = ()

    def __post_init__(self) -> None:
        if self.channel not in CHANNELS:
            raise ValueError(f"unknown channel {self.channel!r} (known: {', '.join(CHANNELS)})")
        if self.client_kind is not None and self.client_kind not in CONTACT_KINDS:
            raise ValueError(f"unknown client type {self.client_kind!r} (known: {', '.join(CONTACT_KINDS)})")
        if not (math.isfinite(self.at) and math.isfinite(self.finished_at)) or self.finished_at < self.at:
            raise ValueError("a contact finishes at or after it began")
        if not self.script or not self.version:
            raise ValueError("a contact records the script's name and version")
        seen = [m.stage for m in self.stages]
        if len(set(seen)) != len(seen) or seen != [s for s in STAGES if s in seen]:
            raise ValueError("each stage at most once, in the order request, booking, visit")
        if self.client_new and self.client_id is None and self.client_name is None:
            raise ValueError("a new client has a directory card or at least a name")

    @property
    def primary(self) -> bool:
        return not self.repeat

    def stage(self, stage: Stage) -> StageMark | None:
        """The flag of ``stage``, or None when it is not set."""
        return next((m for m in self.stages if m.stage == stage), None)

    def seconds_at(self, step: str) -> float:
        """The time spent at a step, all its visits together."""
        return sum(t.seconds for t in self.times if t.step == step)

    @property
    def seconds(self) -> float:
        """The time spent on the whole route."""
        return sum(t.seconds for t in self.times)


# -- setting a stage -----------------------------------------------------------------------------------------------

StageChange = Literal["set", "same", "conflict"]


def stage_change(contact: RegisteredContact, stage: Stage, external_id: str | None) -> StageChange:
    """What setting ``stage`` on ``contact`` does: ``set`` it (not set yet), nothing (``same``: set already by the same
    event, i.e. the same ``external_id``, or both without one), or ``conflict`` (set already by another event: the
    caller is told who set it and when, and nothing changes).

    Any stage may be set in any order: a visit without a booking is a walk-in, a booking without a request a DMS that
    books straight away."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}")
    mark = contact.stage(stage)
    if mark is None:
        return "set"
    return "same" if mark.external_id == external_id else "conflict"


# -- the listing's filters -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContactFilter:
    """What a listing of the register narrows to (every field None: everything). ``since`` inclusive, ``until``
    exclusive, on the contact's time; ``stage``: the contacts with that flag set; ``agent``: an agent's extension;
    ``employee``: an employee's id; ``pbxs``: the contacts of those PBXs (a contact without one is in no PBX)."""

    since: float | None = None
    until: float | None = None
    stage: Stage | None = None
    reason: str | None = None
    channel: Channel | None = None
    client_kind: ContactKind | None = None
    agent: str | None = None
    employee: str | None = None
    pbxs: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.stage is not None and self.stage not in STAGES:
            raise ValueError(f"stage: one of {', '.join(STAGES)}")
        if self.channel is not None and self.channel not in CHANNELS:
            raise ValueError(f"channel: one of {', '.join(CHANNELS)}")
        if self.client_kind is not None and self.client_kind not in CONTACT_KINDS:
            raise ValueError(f"client type: one of {', '.join(CONTACT_KINDS)}")
        if isinstance(self.pbxs, str):
            raise TypeError("pbxs is a collection of PBX ids, not one id")
        if self.since is not None and self.until is not None and self.since > self.until:
            raise ValueError("since is after until: nothing can be in between")


@dataclass(frozen=True, slots=True)
class ContactKey:
    """A contact's place in the register's order (``at``, then ``id``): where the next keyset page starts."""

    at: float
    id: int

    @classmethod
    def of(cls, contact: RegisteredContact) -> ContactKey:
        return cls(contact.at, contact.id)


# -- from a finished run --------------------------------------------------------------------------------------------


def run_key(draft: ContactDraft, run_id: int | str | None = None) -> str:
    """What makes saving a run idempotent: the run's id when the edge has one, else the draft's identity (the same
    run gives the same script, version, channel, call, agent and start, to the microsecond)."""
    if run_id is not None:
        return f"run:{run_id}"
    identity = json.dumps([draft.script, draft.version, draft.channel, draft.pbx, draft.linkedid, draft.agent,
                           round(draft.started_at, 6)], ensure_ascii=False)
    return "draft:" + hashlib.sha256(identity.encode("utf-8")).hexdigest()[:32]


def new_client_card(client: ClientDraft) -> Contact:
    """The directory's contact for a new client the agent entered, with their car if one was typed.

    The directory needs a name: a client whose name was not asked is filed under their phone number (or their plate),
    which is what the agent would search them by."""
    name = client.name or client.phone or client.plate or "?"
    car = (Vehicle(make=client.make, model=client.model, plate=client.plate),) if (
        client.make or client.model or client.plate) else ()
    return Contact(name=name, kind=client.kind, phones=(client.phone,) if client.phone else (), vehicles=car)


def script_stages(draft: ContactDraft) -> tuple[StageMark, ...]:
    """The stage flags the run's route set, each at the run's end, set by the script."""
    return tuple(StageMark(s, draft.finished_at, BY_SCRIPT) for s in STAGES if s in draft.stages)


# -- rows: JSON, CSV, the CLI's table -------------------------------------------------------------------------------

#: The columns of the CSV export and the CLI's table, in order (the JSON row has these and more).
CSV_COLUMNS: tuple[str, ...] = (
    "id", "at", "channel", "reason", "reason_title", "client_id", "client_name", "client_phone", "client_kind",
    "client_new",
    "repeat", "vehicle_id", "employee", "employee_name", "workshop", "transfer_answered", "agent", "pbx", "calls",
    "recordings", "request_at", "request_by", "booking_at", "booking_by", "booking_external_id", "visit_at",
    "visit_by", "visit_external_id", "script", "version", "label", "route", "seconds", "note", "earlier_call",
    "earlier_contact",
)
#: The CLI table's columns (key, header).
TABLE_COLUMNS: tuple[tuple[str, str], ...] = (
    ("id", "#"), ("at", "When"), ("channel", "Channel"), ("reason_title", "Reason"), ("client_name", "Client"),
    ("client_kind", "Type"), ("repeat", "Repeat"), ("employee_name", "Passed to"), ("agent", "Agent"),
    ("request_at", "Request"), ("booking_at", "Booking"), ("visit_at", "Visit"),
)


def register_row(contact: RegisteredContact, tz: tzinfo | None, reason_title: str | None = None) -> dict[str, Any]:
    """A contact as the API, the CLI's JSON and the CSV give it: times in ISO 8601 in ``tz``, the stage flags as
    ``<stage>_at``/``_by``/``_external_id``, and (JSON only: too nested for a cell) the answers and times per step.
    ``reason_title``: the reason as its script version titles it (``store/reason_titles.py``); default the id."""
    row: dict[str, Any] = {
        "id": contact.id, "at": iso_time(contact.at, tz), "finished_at": iso_time(contact.finished_at, tz),
        "channel": contact.channel, "reason": contact.reason,
        "reason_title": reason_title if reason_title is not None else contact.reason, "client_id": contact.client_id,
        "client_name": contact.client_name, "client_phone": contact.client_phone,
        "client_kind": contact.client_kind, "client_new": contact.client_new, "repeat": contact.repeat,
        "vehicle_id": contact.vehicle_id,
        "employee": contact.employee.id if contact.employee else None,
        "employee_name": contact.employee.name if contact.employee else None,
        "employee_extension": contact.employee.extension if contact.employee else None,
        "workshop": contact.workshop, "transfer_answered": contact.transfer_answered,
        "agent": contact.agent, "pbx": contact.pbx,
        "calls": [c.linkedid for c in contact.calls],
        "recordings": [c.recording for c in contact.calls if c.recording],
    }
    for stage in STAGES:
        mark = contact.stage(stage)
        row[f"{stage}_at"] = iso_time(mark.at, tz) if mark else None
        row[f"{stage}_by"] = mark.by if mark else None
        row[f"{stage}_external_id"] = mark.external_id if mark else None
    row.update({
        "script": contact.script, "version": contact.version, "label": contact.label, "route": list(contact.route),
        "seconds": round(contact.seconds, 1), "note": contact.note, "earlier_call": contact.earlier_call,
        "earlier_contact": contact.earlier_contact, "saved_at": iso_time(contact.saved_at, tz),
        "answers": {step: dict(answer) for step, answer in contact.answers.items()},
        "step_seconds": _step_seconds(contact),
    })
    return row


def _step_seconds(contact: RegisteredContact) -> dict[str, float]:
    out: dict[str, float] = {}
    for t in contact.times:
        out[t.step] = round(out.get(t.step, 0.0) + t.seconds, 1)
    return out


def csv_cells(row: Mapping[str, Any]) -> list[str]:
    """A :func:`register_row` as the CSV's cells, in :data:`CSV_COLUMNS`' order: lists joined (``;`` for calls and
    recordings, `` > `` for the route), flags 1/0, nothing a spreadsheet would run as a formula."""
    cells: list[str] = []
    for key in CSV_COLUMNS:
        value = row.get(key)
        if isinstance(value, list | tuple):
            value = (" > " if key == "route" else ";").join(str(v) for v in value)
        if isinstance(value, bool):
            value = "1" if value else "0"
        cells.append("" if value is None else csv_cell(str(value)))
    return cells


def write_register_csv(rows: Iterable[Mapping[str, Any]], out: TextIO, *, header: bool = True,
                       delimiter: str = ";") -> int:
    """The register as CSV, as 1C and a Russian Excel open it (``;``-separated, CRLF), a row per contact; the rows
    written. ``header=False`` continues a file written page by page."""
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    if header:
        writer.writerow(CSV_COLUMNS)
    count = 0
    for row in rows:
        writer.writerow(csv_cells(row))
        count += 1
    return count
