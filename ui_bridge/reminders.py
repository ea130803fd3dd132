"""Call-back reminders at the panel: made by a script's reminder step, pushed when due, escalated, closed.

Why a module of its own: the script desk (``script_desk.py``) only runs scripts; what a reminder becomes after the
step is this desk's job, over the store's ``Reminders`` concern and the panel's fan-out:

- **Made** (:meth:`ReminderDesk.add`, the script desk's ``ReminderSink``): the runner's ``ReminderWanted`` is kept
  (with a summary of the client's card as it is now, and the panel user of the employee when one is known: a user
  named as the employee's id, else an agent or employee user with that extension) and ``reminder.new`` goes to its
  assignee (their extension's sockets) and the ``all`` subscribers of its PBX, on every node.
- **Due** and **escalated** (:meth:`ReminderDesk.run`, the panel's background work, like the register's claim
  expiry): every ``TICK_SECONDS`` the store marks the reminders whose time came (``reminder.due``, to the assignee)
  and those still open ``[reminders] escalate_after_minutes`` later (``reminder.escalated``, to the admins). Each
  mark is one atomic statement, so whichever node finds a reminder first pushes it, once; a reminder whose employee
  never logs in escalates all the same.
- **Closed by a call** (:meth:`ReminderDesk.on_effect`, a pipeline subscriber: the node that follows the PBX): a
  finished call that answered the number from or on the employee's extension closes it (the rule:
  ``cti/reminders.py``; the store applies it in one transaction): ``reminder.closed``.
- **Closed by hand** (``reminder.close``, with a comment; done or cancelled): by its assignee or an admin of its PBX.

Who sees what: an assignee their own reminders (``GET /api/reminders``: ``routes/reminders.py``), an admin every
open one of their PBXs and the escalated ones apart. The ``reminder.*`` messages go to the ``all`` subscribers of the
PBX as every message about it does (QA's socket included: QA reads every call anyway); QA's panel shows none, and
QA neither lists nor closes reminders (reminders are work to do, not a record to audit).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from cti.directory import Contact
from cti.effects import CallEnded, Effect
from cti.reminders import NewReminder, Reminder, is_due, number_key, reminder_call
from cti.scripts import ReminderWanted
from store.repository import (
    ContactNotFound,
    ReminderClosed,
    ReminderNotFound,
    ScriptRun,
    Store,
    StoreError,
    User,
)

from . import messages as m
from .commands import RequestFailed
from .fanout import Fanout
from .outgoing import Messages
from .settings import ReminderSettings

log = logging.getLogger(__name__)

#: How often the due and overdue reminders are looked for (each look is one indexed read when nothing is due).
TICK_SECONDS = 1.0
#: The roles that have reminders: their assignees (agents, employees) and the admins who see the overdue ones.
REMINDER_ROLES = ("agent", "employee", "admin")
#: The most reminders one list holds (an assignee has a handful; an admin's overdue list is a day's worth).
LIST_LIMIT = 500
Event = Literal["new", "due", "escalated", "closed"]
_MESSAGES: dict[Event, type[m.ReminderNew | m.ReminderDue | m.ReminderEscalated | m.ReminderClosed]] = {
    "new": m.ReminderNew, "due": m.ReminderDue, "escalated": m.ReminderEscalated, "closed": m.ReminderClosed}


def card_summary(contact: Contact, messages: Messages) -> dict[str, object]:
    """What the assignee's panel shows of the client's card (kept with the reminder: no directory read later)."""
    cars = [" ".join(p for p in (v.make, v.model, v.plate) if p) for v in contact.vehicles]
    return {"name": contact.name, "kind": contact.kind, "cars": [c for c in cars if c],
            "phones": [p for p in messages.numbers.all(contact.phones) if p], "note": contact.notes}


def reminder_info(messages: Messages, reminder: Reminder, now: float) -> m.ReminderInfo:
    """A reminder on the wire (``due``: as of ``now``)."""
    card = m.ReminderCard.model_validate(dict(reminder.card)) if reminder.card else None
    return m.ReminderInfo(
        id=reminder.id, employee=reminder.employee, employee_name=reminder.employee_name,
        extension=reminder.extension, user=reminder.user_name, number=reminder.number,
        number_display=messages.numbers(reminder.number), contact_id=reminder.contact_id,
        client_name=reminder.client_name, card=card, note=reminder.note, due_at=messages.time(reminder.due_at),
        due=is_due(reminder, now), created_at=messages.time(reminder.created_at), created_by=reminder.created_by,
        linkedid=reminder.linkedid, run_id=reminder.run_id, status=reminder.status, closed_how=reminder.closed_how,
        closed_at=messages.time(reminder.closed_at) if reminder.closed_at is not None else None,
        closed_by=reminder.closed_by, closed_linkedid=reminder.closed_linkedid, comment=reminder.comment,
        escalated_at=messages.time(reminder.escalated_at) if reminder.escalated_at is not None else None,
        pbx=reminder.pbx)


def assignee_of(user: User, reminder: Reminder) -> bool:
    """Whether ``user`` is the reminder's assignee (their extension, or their user named on it)."""
    return reminder.belongs_to(name=user.name, extension=user.extension, pbxs=user.pbxs)


@dataclass
class ReminderDesk:
    """Keeps the script's reminders, pushes them when due and overdue, closes them (module docstring)."""

    store: Callable[[], Store | None]
    messages: Messages
    fanout: Fanout
    #: The ids of the PBXs the daemon knows.
    followed: Sequence[str]
    settings: ReminderSettings
    region: str = "RU"
    clock: Callable[[], float] = time.time

    # -- made by a script (the script desk's ReminderSink) ------------------------------------------------------

    async def add(self, reminder: ReminderWanted, run: ScriptRun) -> None:
        """Keep a run's reminder and tell its assignee and the admins (a retried hand-over tells nobody again)."""
        store = self._store()
        employee = reminder.employee
        user = await self._user_of(store, employee.id, employee.extension, run.pbx)
        extension = employee.extension or (user.extension if user is not None else None)
        card = await self._card(store, reminder.contact_id)
        client_name = reminder.client_name
        if client_name is None and card is not None and isinstance(card.get("name"), str):
            client_name = str(card["name"])
        new = NewReminder(
            pbx=run.pbx, employee=employee.id, employee_name=employee.name, extension=extension,
            number=reminder.number, number_key=number_key(reminder.number, self.region), due_at=reminder.due_at,
            created_at=self.clock(), user_name=user.name if user is not None else None,
            contact_id=reminder.contact_id, client_name=client_name,
            card=card, note=reminder.note, created_by=run.agent, run_id=run.id, linkedid=reminder.linkedid)
        kept, fresh = await store.add_reminder(new)
        if fresh:
            log.info("reminder #%d: %s (%s) to call %s back at %s (script run #%d)", kept.id, employee.name,
                     extension or "no extension", reminder.number, reminder.due, run.id)
            self._push("new", kept)

    async def _user_of(self, store: Store, employee: str, extension: str | None, pbx: str) -> User | None:
        """The panel user of an employee: the one named as the employee's id, else the one agent or employee of
        that extension on the PBX."""
        users = await store.list_users()
        for user in users:
            if user.name.lower() == employee.lower() and user.role in ("agent", "employee"):
                return user
        if extension is None:
            return None
        found = [u for u in users if u.extension == extension and u.role in ("agent", "employee")
                 and (not u.pbxs or pbx in u.pbxs)]
        return found[0] if len(found) == 1 else None

    async def _card(self, store: Store, contact_id: int | None) -> dict[str, object] | None:
        if contact_id is None:
            return None
        try:
            return card_summary(await store.get_contact(contact_id), self.messages)
        except ContactNotFound:
            return None

    # -- requests ----------------------------------------------------------------------------------------------

    async def request(self, user: User, request: BaseModel) -> dict[str, object]:
        """``Commands.reminders``: ``reminder.close`` of ``user``; the reply's data, or ``RequestFailed``."""
        if not isinstance(request, m.ReminderClose):
            raise RequestFailed("bad_message", f"{type(request).__name__} is not a request of the reminders")
        if user.role not in REMINDER_ROLES:
            raise RequestFailed("forbidden", "reminders are closed by their assignees and the admins")
        store = self._store()
        try:
            reminder = await store.get_reminder(request.reminder_id)
            self._may_close(user, reminder)
            comment = (request.comment or "").strip() or None
            closed = await store.close_reminder(reminder.id, by=user.name, comment=comment, cancelled=request.cancel,
                                                at=self.clock())
        except ReminderNotFound as exc:
            raise RequestFailed("not_found", str(exc)) from None
        except ReminderClosed as exc:
            raise RequestFailed("conflict", str(exc), by=exc.reminder.closed_by) from None
        except StoreError as exc:
            raise RequestFailed("internal", f"the store failed: {exc}") from None
        info = self._push("closed", closed)
        return {"reminder": info.model_dump(mode="json")}

    @staticmethod
    def _may_close(user: User, reminder: Reminder) -> None:
        if user.role == "admin":
            if user.pbxs and reminder.pbx not in user.pbxs:
                raise RequestFailed("forbidden", "this reminder is another PBX's")
        elif not assignee_of(user, reminder):
            raise RequestFailed("forbidden", "this reminder is someone else's")

    async def listing(self, user: User, view: str) -> list[m.ReminderInfo]:
        """``GET /api/reminders``: an assignee's own open reminders; an admin's ``overdue`` (escalated) or ``open``
        ones of their PBXs (an admin with an extension: ``mine``)."""
        store = self._store()
        pbxs = list(user.pbxs) or None
        if user.role == "admin" and view in ("overdue", "open"):
            found = await store.list_reminders(pbxs=pbxs, escalated=True if view == "overdue" else None,
                                               limit=LIST_LIMIT)
        else:
            found = await store.list_reminders(pbxs=pbxs, extension=user.extension, user_name=user.name,
                                               limit=LIST_LIMIT)
        now = self.clock()
        return [reminder_info(self.messages, r, now) for r in found]

    # -- due, overdue ------------------------------------------------------------------------------------------

    async def tick(self) -> tuple[int, int]:
        """Push the reminders that came due and escalate the overdue ones (each once, whichever node finds it
        first); how many of each."""
        store = self.store()
        if store is None:
            return 0, 0
        now = self.clock()
        due = await store.due_reminders(now)
        for reminder in due:
            self._push("due", reminder)
        overdue = await store.escalate_reminders(now, self.settings.escalate_after_minutes * 60)
        for reminder in overdue:
            log.info("reminder #%d for %s (%s) is overdue: escalated to the admins", reminder.id,
                     reminder.employee_name, reminder.extension or "no extension")
            self._push("escalated", reminder)
        return len(due), len(overdue)

    async def run(self, every: float = TICK_SECONDS) -> None:
        """:meth:`tick` every ``every`` seconds, until cancelled (the panel's background work)."""
        while True:
            try:
                await self.tick()
            except StoreError as exc:  # the database is away: the next round tries again
                log.warning("reminders: looking for due reminders failed: %s", exc)
            await asyncio.sleep(every)

    # -- closed by a call --------------------------------------------------------------------------------------

    async def on_effect(self, effect: Effect) -> None:
        """The pipeline subscriber: a finished call may close reminders (``cti.reminders``' rule)."""
        if not isinstance(effect, CallEnded):
            return
        call = reminder_call(effect.record, region=self.region)
        store = self.store()
        if call is None or store is None:
            return
        for reminder in await store.close_reminders_by_call(call):
            log.info("reminder #%d closed: call %s reached %s", reminder.id, call.linkedid, reminder.number)
            self._push("closed", reminder)

    # -- helpers ---------------------------------------------------------------------------------------------

    def _push(self, event: Event, reminder: Reminder) -> m.ReminderInfo:
        """``reminder.<event>`` to the assignee's extension and the ``all`` subscribers of the PBX, on every node."""
        info = reminder_info(self.messages, reminder, self.clock())
        extensions = {reminder.extension} if reminder.extension else set()
        self.fanout.publish(_MESSAGES[event](reminder=info), extensions, reminder.pbx)
        return info

    def _store(self) -> Store:
        store = self.store()
        if store is None:
            raise RequestFailed("internal", "the store is not open yet; try again in a moment")
        return store
