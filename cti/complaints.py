"""Complaints and claims (issue 15): the values a complaint is made of, as the store keeps and the panel shows them.

A complaint (or a thanks, or a question) moves through a staged review — registration → review → justified? →
corrective action → satisfaction check → result → closed — each stage with its required fields, its deadline and
its assignee; its status (registered → in progress → satisfied / not satisfied) follows the stages by itself. The
rules of that process (which stage comes next, what a stage needs before it can be left, the deadlines, the status)
are pure functions in ``cti/complaint_rules.py``; this module holds only the values, so the store, the panel and the
e-mail outbox share one definition.

Times are epoch seconds. People are panel users, by their user name (``cti users``); the client is a directory
contact when one is known, else the name and number as registered.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

#: The review's stages in their order. ``justification`` is the "justified?" decision (yes / no; the responsible may
#: ask a colleague or the manager for an opinion first); a complaint found not justified skips ``corrective_action``.
Stage = Literal["registration", "review", "justification", "corrective_action", "satisfaction_check", "result",
                "closed"]
STAGES: tuple[Stage, ...] = ("registration", "review", "justification", "corrective_action", "satisfaction_check",
                             "result", "closed")

#: Follows the stages (``cti.complaint_rules.status_of``): registered until the review starts, in progress until the
#: result, then what the client said.
Status = Literal["registered", "in_progress", "satisfied", "not_satisfied"]

#: From the client to us, or ours to a supplier or partner.
Kind = Literal["client", "supplier"]

#: Where a complaint came from: the call in progress (the pop or the script's «Жалоба» route), the panel by hand, the
#: JSON API (a dealer portal, 1C).
Source = Literal["call", "panel", "api"]

TaskState = Literal["open", "done", "cancelled"]


@dataclass(frozen=True, slots=True)
class CallRef:
    """A call the complaint is about (the journal's key)."""

    pbx: str
    linkedid: str


@dataclass(frozen=True, slots=True)
class ActionRow:
    """One row of the action plan: when, what, who, the result, the effort in hours."""

    when: str  # an ISO date (YYYY-MM-DD) as the responsible typed it
    what: str
    who: str
    result: str = ""
    effort_hours: float | None = None


@dataclass(frozen=True, slots=True)
class Attachment:
    """A file uploaded to a complaint. ``stored_as`` is the server's own name for it in the attachments folder (never
    a name or path from the client); ``file_name`` is the client's name, cleaned, shown only as text."""

    id: int
    complaint_id: int
    file_name: str
    content_type: str
    size: int
    stored_as: str
    by: str
    at: float


@dataclass(frozen=True, slots=True)
class Complaint:
    """A complaint as it stands. ``fields`` holds the stage fields that are free text or choices from config
    (``description``, ``cause``, ``department``, ``employee_at_fault``, ``workshop``, ``corrective_action``,
    ``decision``, ``satisfaction_note``, …: the names ``cti.complaint_rules`` requires per stage); ``revision`` grows
    with every change, so two people editing at once do not overwrite each other unseen."""

    id: int
    #: What people quote: ``Ж-2026-0001`` style, unique, given by the store at registration.
    number: str
    type: str
    kind: Kind
    stage: Stage
    status: Status
    source: Source
    #: The person responsible for the whole complaint.
    responsible: str
    #: Who works on the current stage (the responsible, or a colleague it was handed to).
    assignee: str
    stage_entered_at: float
    stage_due_at: float | None
    created_at: float
    created_by: str
    updated_at: float
    revision: int
    client_name: str | None = None
    client_phone: str | None = None
    client_email: str | None = None
    contact_id: int | None = None
    car: str | None = None
    plate: str | None = None
    subject_kind: str | None = None  # repair order, part, service (config list)
    subject: str | None = None
    comment: str | None = None
    justified: bool | None = None
    result: Literal["satisfied", "not_satisfied"] | None = None
    fields: dict[str, str] = field(default_factory=dict)
    calls: tuple[CallRef, ...] = ()
    register_contact_id: int | None = None
    action_plan: tuple[ActionRow, ...] = ()
    attachments: tuple[Attachment, ...] = ()
    closed_at: float | None = None
    #: The idempotency key of the API request that filed it (a retried request finds it instead of filing again).
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class NewComplaint:
    """What registration needs (the panel's form, the call's one click, the API's body)."""

    type: str
    kind: Kind
    source: Source
    responsible: str
    created_by: str
    client_name: str | None = None
    client_phone: str | None = None
    client_email: str | None = None
    contact_id: int | None = None
    car: str | None = None
    plate: str | None = None
    subject_kind: str | None = None
    subject: str | None = None
    comment: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    calls: tuple[CallRef, ...] = ()
    register_contact_id: int | None = None
    idempotency_key: str | None = None


@dataclass(frozen=True, slots=True)
class Task:
    """The work a stage asks of its assignee, with its deadline; escalated to the managers once overdue."""

    id: int
    complaint_id: int
    stage: Stage
    assignee: str
    created_at: float
    due_at: float | None
    state: TaskState = "open"
    done_at: float | None = None
    escalated_at: float | None = None


@dataclass(frozen=True, slots=True)
class HistoryItem:
    """One change of a complaint: who, when, what (``action``: registered, edited, moved, reassigned, question,
    answer, attached, escalated, mailed, …) and its details (old and new values, the reason of a reassignment, the
    text of a question)."""

    id: int
    complaint_id: int
    at: float
    by: str
    action: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ComplaintFilter:
    """The list's filters (the panel's list, ``GET /api/complaints``, the CSV)."""

    statuses: tuple[Status, ...] = ()
    stages: tuple[Stage, ...] = ()
    types: tuple[str, ...] = ()
    responsible: str | None = None
    assignee: str | None = None
    overdue_at: float | None = None  # only those whose stage deadline is before this time (and not closed)
    since: float | None = None
    until: float | None = None
    text: str | None = None
    limit: int = 200
    offset: int = 0


@dataclass(frozen=True, slots=True)
class OutgoingMail:
    """An e-mail in the durable outbox: written in the same transaction as the change it tells of, sent later by the
    mailer with retries (``companion/mailer.py``), so a down SMTP server or a restart loses none and sends none
    twice."""

    id: int
    to: tuple[str, ...]
    subject: str
    body: str
    created_at: float
    #: What it is about (``complaint:12``), for the history and the admin's view of the outbox.
    about: str | None = None
    attempts: int = 0
    next_try_at: float = 0.0
    sent_at: float | None = None
    failed_at: float | None = None
    last_error: str | None = None


@dataclass(frozen=True, slots=True)
class NewMail:
    """An e-mail to queue (rendered from its template already)."""

    to: tuple[str, ...]
    subject: str
    body: str
    about: str | None = None


@dataclass(frozen=True, slots=True)
class OpenTask:
    """The task a change opens: the new stage's, for its assignee, due then (the store closes the complaint's other
    open tasks in the same transaction)."""

    stage: Stage
    assignee: str
    due_at: float | None


@dataclass(frozen=True, slots=True)
class ComplaintChange:
    """Everything one change of a complaint writes, in one transaction: the complaint's new state (its ``revision``
    the one it was read at: the store refuses the change when someone changed it since), the history items, the task
    it opens (None: tasks stay as they are), the e-mails it queues. Built by ``cti.complaint_rules`` from a request."""

    complaint: Complaint
    by: str
    at: float
    history: tuple[tuple[str, dict[str, Any]], ...] = ()
    open_task: OpenTask | None = None
    mails: tuple[NewMail, ...] = ()
