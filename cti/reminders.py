"""Call-back reminders: what one is, when it is due or overdue, and which finished call closes it by itself.

Pure (no I/O, no clock): the store keeps reminders and applies the closing decision made here, the panel's ticker
(``ui_bridge/reminders.py``) asks :func:`is_due` and :func:`is_overdue` with the time it read, so SQLite and
PostgreSQL cannot drift apart on what closes a reminder, and the rule is tested with plain values.

A reminder comes from a contact script's ``reminder`` step (``cti.scripts.ReminderWanted``): an employee (a master,
the parts desk) is to call a client back at a time. It closes **by itself** when the call journal sees an
answered call between the employee's extension and the client's number, whichever side called, as the missed
register's call-back rule closes an entry (``cti/callbacks.py``, whose number keys this shares):

* an **inbound** call from the number, answered, on which the employee's phone talked (it answered, or took a
  transfer and answered it);
* an **outbound** call from the employee's extension to the number, answered by the client;
* an unanswered call, an internal call or a withheld number closes nothing; nor does the reminder's own call (the
  one the script ran on, whose transfer nobody answered), nor a call answered before the reminder was made;
* only reminders of the call's own PBX (an extension is a PBX's own);
* the reminder is closed at the moment the client was reached (the call's answer time).

Or **by hand**, with a comment (done, or cancelled: nobody owes that client the call any more).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any, Literal

from cti.callbacks import closing_time
from cti.phones import normalize_number
from cti.records import CallRecord

ReminderStatus = Literal["open", "done", "cancelled"]
REMINDER_STATUSES: tuple[ReminderStatus, ...] = ("open", "done", "cancelled")
#: How a reminder was closed: by an answered call (this module's rule) or by hand with a comment.
ClosedHow = Literal["call", "hand"]
CLOSED_HOWS: tuple[ClosedHow, ...] = ("call", "hand")
#: The longest note and comment a reminder keeps (the script's note is shorter; a comment is typed by hand).
NOTE_LIMIT = 2000


@dataclass(frozen=True, slots=True)
class NewReminder:
    """A reminder to keep: who is to call back, whom, when, and what it came from.

    ``employee`` is the script's employee id (``[scripts.employees]``), ``extension`` their phone on ``pbx`` (None: an
    employee without a phone: only the admins see it, when it escalates), ``user_name`` the panel user of that
    employee when one is known. ``card`` is a summary of the client's card as it was when the reminder was made
    (name, company, cars, note: JSON), so the assignee's panel needs no directory read.
    """

    pbx: str
    employee: str
    employee_name: str
    extension: str | None
    number: str
    number_key: str | None  # :func:`number_key` of ``number`` (None: nothing to compare: no call closes it)
    due_at: float
    created_at: float
    user_name: str | None = None
    contact_id: int | None = None
    client_name: str | None = None
    card: Mapping[str, Any] | None = None
    note: str | None = None
    created_by: str | None = None
    run_id: int | None = None
    linkedid: str | None = None


@dataclass(frozen=True, slots=True)
class Reminder:
    """A kept reminder (:class:`NewReminder`'s facts, its id, and its life since)."""

    id: int
    pbx: str
    employee: str
    employee_name: str
    extension: str | None
    number: str
    number_key: str | None
    due_at: float
    created_at: float
    user_name: str | None = None
    contact_id: int | None = None
    client_name: str | None = None
    card: Mapping[str, Any] | None = None
    note: str | None = None
    created_by: str | None = None
    run_id: int | None = None
    linkedid: str | None = None
    status: ReminderStatus = "open"
    closed_how: ClosedHow | None = None
    closed_at: float | None = None
    closed_by: str | None = None
    closed_linkedid: str | None = None
    comment: str | None = None
    notified_at: float | None = None  # pushed to the assignee as due (once)
    escalated_at: float | None = None  # pushed to the admins as overdue (once)

    def belongs_to(self, *, name: str, extension: str | None, pbxs: Iterable[str] = ()) -> bool:
        """Whether a user (their name, extension and PBXs: none, every PBX) is this reminder's assignee."""
        chosen = tuple(pbxs)
        if chosen and self.pbx not in chosen:
            return False
        if self.user_name is not None and self.user_name.lower() == name.lower():
            return True
        return extension is not None and self.extension == extension


def is_due(reminder: Reminder, now: float) -> bool:
    """An open reminder whose time has come."""
    return reminder.status == "open" and reminder.due_at <= now


def is_overdue(reminder: Reminder, now: float, escalate_after: float) -> bool:
    """An open reminder still open ``escalate_after`` seconds after its time: the admins are to know."""
    return reminder.status == "open" and reminder.due_at + escalate_after <= now


@dataclass(frozen=True, slots=True)
class ReminderCall:
    """A finished call's claim on the reminders: those of ``number_key`` for one of ``extensions`` on ``pbx``."""

    pbx: str
    linkedid: str
    number_key: str
    extensions: frozenset[str]
    at: float  # when the client was reached: the reminders it closes are closed then
    own_linkedids: frozenset[str]


def reminder_call(record: CallRecord, *, region: str = "RU") -> ReminderCall | None:
    """What ``record`` may close (None: nothing): the client's number and the extensions that talked to them."""
    if not record.answered:
        return None
    talked = {leg.agent for leg in record.legs if leg.role == "agent" and leg.agent and leg.answered_at is not None}
    talked.update(record.agents_answered)
    if record.direction == "inbound":
        key = normalize_number(record.caller, region)
        if record.answered_by:
            talked.add(record.answered_by)
    elif record.direction == "outbound":
        key = normalize_number(record.called, region)
        talked.discard(record.answered_by or "")  # an outbound call's answered_by is the client's number
        if record.caller:
            talked.add(record.caller)  # the extension that dialled
    else:
        return None
    if key is None or not talked:
        return None
    return ReminderCall(pbx=record.pbx, linkedid=record.linkedid, number_key=key, extensions=frozenset(talked),
                        at=closing_time(record), own_linkedids=frozenset({record.linkedid, *record.linkedids}))


def closes(call: ReminderCall, reminder: Reminder) -> bool:
    """Whether ``call`` closes ``reminder`` (the module docstring's rule)."""
    return (reminder.status == "open" and reminder.pbx == call.pbx and reminder.number_key is not None
            and reminder.number_key == call.number_key and reminder.extension is not None
            and reminder.extension in call.extensions and reminder.created_at <= call.at
            and (reminder.linkedid is None or reminder.linkedid not in call.own_linkedids))


def closed_by_call(call: ReminderCall, reminders: Iterable[Reminder]) -> list[Reminder]:
    """The reminders ``call`` closes among ``reminders``, in their order, as they are once closed."""
    return [replace(r, status="done", closed_how="call", closed_at=call.at, closed_by="call",
                    closed_linkedid=call.linkedid) for r in reminders if closes(call, r)]


def number_key(number: str, region: str = "RU") -> str | None:
    """The key a reminder's number is compared by (``cti.phones.normalize_number``: the missed register's)."""
    return normalize_number(number, region)
