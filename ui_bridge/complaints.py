"""The complaints desk: each request about a complaint goes user → rules → store → messages → mailer.

Why a module of its own: the rules (``cti/complaint_rules.py``) are pure and the store (``store/complaints.py``) only
writes what it is given; someone has to read the complaint and the people, ask the rules for the change, commit it,
and tell the people concerned. That is this desk, for the HTTP routes (``ui_bridge/routes/complaints.py``) and the
escalation ticker:

- **A change** (:meth:`ComplaintDesk.change`): the complaint is read, the revision the client saw checked (a
  complaint changed since is a 409 carrying it as it is now), the rules build the
  :class:`~cti.complaints.ComplaintChange` (a refusal is their error, in Russian and English: 403 not allowed,
  422 a value or a missing field named, 409 a request the complaint's state does not allow), the store commits it
  in one transaction (the new state, its history, the stage's task, the e-mails; a concurrent change is
  ``ComplaintChanged``: 409 again), then ``complaint.changed`` goes to the people concerned and ``complaint.task``
  to whoever got the stage's task, and the mailer is woken for the e-mails queued.
- **Registration** (:meth:`ComplaintDesk.register`): from the panel, from a call (the caller, the car and the
  directory's contact filled in from the call in progress or the journal, the contact register's entry linked:
  :meth:`ComplaintDesk.from_call`), or by the integration API with an idempotency key (scoped to the integration
  user: a retried request finds the first complaint, and another client's key never does).
- **Escalation** (:meth:`ComplaintDesk.tick`, :meth:`ComplaintDesk.run`): every ``TICK_SECONDS`` the open tasks past
  their deadline and not yet escalated are escalated, each through the store's ``escalate_task`` (one atomic
  statement: whichever node comes first escalates it, once) with the managers' e-mails, then
  ``complaint.overdue`` goes to the managers. The clock is injected (``clock``), so tests move time, never sleep.

Who gets the messages (by user, on every node: ``Fanout.publish_to_users``): the complaint's responsible and
assignee (and those they were before a change), the managers (``[complaints] managers``, else the admins), and the
admins; ``complaint.task`` only its assignee.

Who reads what: managers, admins and QA every complaint; an agent or an employee the complaints they are responsible
for, work on or filed; an integration user those it filed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from cti import complaint_rules as rules_
from cti.complaint_mail import Language, MailTemplates
from cti.complaint_rules import (
    Actor,
    ComplaintRuleError,
    ComplaintRules,
    InvalidRequest,
    InvalidValue,
    MissingFields,
    NotAllowed,
    Person,
    is_manager,
)
from cti.complaints import (
    ActionRow,
    CallRef,
    Complaint,
    ComplaintChange,
    ComplaintFilter,
    HistoryItem,
    NewComplaint,
    NewMail,
    Task,
)
from cti.control import Actor as ControlActor
from cti.control import may_see_audience
from cti.effects import CallContext
from cti.records import CallRecord
from store.repository import ComplaintChanged, ComplaintNotFound, Store, StoreError, User

from . import messages as m
from .attachments import AttachmentFolder, Received
from .complaint_settings import ComplaintSettings, load_templates
from .fanout import Fanout
from .mirror import MirroredCall
from .outgoing import Messages
from .pbx_access import PbxRefused, named_pbx
from .pbxs import PbxHandles

log = logging.getLogger(__name__)

#: How often overdue tasks are looked for (one indexed read when none is due).
TICK_SECONDS = 5.0
#: The roles that work on complaints (the rules decide who may do what to which one).
WORKING_ROLES = ("agent", "employee", "admin")
#: The most complaints a report reads.
REPORT_LIMIT = 5000


class DeskError(Exception):
    """A request the desk refuses: the HTTP status, an error code, the message in English and Russian, and what
    else the answer carries (the fields missing, the complaint as it is now)."""

    def __init__(self, status: int, code: str, message_en: str, message_ru: str | None = None,
                 **extra: Any) -> None:
        super().__init__(message_en)
        self.status = status
        self.code = code
        self.message_en = message_en
        self.message_ru = message_ru or message_en
        self.extra = extra

    @classmethod
    def of_rule(cls, exc: ComplaintRuleError) -> DeskError:
        """The rules' refusal as an HTTP answer: not allowed 403; a value or a missing field 422; a request the
        complaint's state does not allow 409."""
        status = 403 if isinstance(exc, NotAllowed) else 422 if isinstance(exc, InvalidValue | MissingFields) \
            else 409 if isinstance(exc, InvalidRequest) else 400
        extra = {k: v for k, v in exc.as_dict().items() if k not in ("error", "message", "message_ru")}
        return cls(status, exc.code, exc.message_en, exc.message_ru, **extra)


@dataclass(frozen=True, slots=True)
class Prefill:
    """What a call tells a complaint: the client, their car, the directory's contact, the contact register's entry."""

    call: CallRef
    client_name: str | None = None
    client_phone: str | None = None
    client_email: str | None = None
    contact_id: int | None = None
    car: str | None = None
    plate: str | None = None
    register_contact_id: int | None = None


@dataclass(frozen=True, slots=True)
class Registration:
    """A registration request, as the routes read it (None: not given)."""

    type: str
    kind: str = "client"
    responsible: str = ""
    client_name: str | None = None
    client_phone: str | None = None
    client_email: str | None = None
    contact_id: int | None = None
    car: str | None = None
    plate: str | None = None
    subject_kind: str | None = None
    subject: str | None = None
    comment: str | None = None
    fields: Mapping[str, str] = field(default_factory=dict)
    pbx: str | None = None
    linkedid: str | None = None


@dataclass(frozen=True, slots=True)
class Context:
    """The rules' configuration and the people, as the store has them now (read once per request)."""

    rules: ComplaintRules
    people: dict[str, Person]
    #: Every user name with the admin role (an admin is always a manager).
    admins: tuple[str, ...]

    @property
    def managers(self) -> set[str]:
        return {*self.rules.managers, *self.admins}


#: A change the rules build from the complaint as read, the user, the time and the context.
Make = Callable[[Complaint, Actor, float, Context], ComplaintChange]


def actor_of(user: User) -> Actor:
    return Actor(name=user.name, role=user.role)


def _same(a: str | None, b: str | None) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


@dataclass
class ComplaintDesk:
    """Registers complaints, commits their changes, tells the people concerned, escalates overdue tasks (module
    docstring)."""

    store: Callable[[], Store | None]
    messages: Messages
    fanout: Fanout
    settings: ComplaintSettings
    pbxs: PbxHandles
    #: Calls in progress on PBXs another node follows (``ui_bridge/mirror.py``): (pbx, linkedid) → the call.
    mirrored: Callable[[str, str], MirroredCall | None] = lambda pbx, linkedid: None
    clock: Callable[[], float] = time.time
    #: Called after a change queued e-mails: the mailer's wake-up (``companion/mailer.py``), when it runs here.
    wake_mailer: Callable[[], None] | None = None
    templates: MailTemplates = field(default_factory=MailTemplates)

    def __post_init__(self) -> None:
        self.files = AttachmentFolder(self.settings.attachments_folder)
        if self.settings.templates_folder is not None:
            self.templates = load_templates(self.settings.templates_folder)

    # -- reading -----------------------------------------------------------------------------------------------

    def opened_store(self) -> Store:
        store = self.store()
        if store is None:
            raise DeskError(503, "unavailable", "the store is not open yet; try again in a moment",
                            "хранилище ещё не открыто; повторите через минуту")
        return store

    async def context(self) -> Context:
        users = await self.opened_store().list_users()
        admins = tuple(u.name for u in users if u.role == "admin")
        people = {u.name: Person(name=u.name, email=u.email, display_name=u.display_name)
                  for u in users if u.role in WORKING_ROLES}
        return Context(self.settings.rules(admins, tz=self.messages.tz, templates=self.templates), people, admins)

    def is_manager(self, user: User, ctx: Context) -> bool:
        return user.role != "integration" and is_manager(actor_of(user), ctx.rules)

    def may_read(self, user: User, c: Complaint, ctx: Context) -> bool:
        if user.role == "integration":
            return _same(user.name, c.created_by)
        if user.role == "qa" or self.is_manager(user, ctx):
            return True
        return any(_same(user.name, who) for who in (c.responsible, c.assignee, c.created_by))

    async def read(self, user: User, complaint_id: int, ctx: Context | None = None) -> tuple[Complaint, Context]:
        """The complaint, if ``user`` may read it (404 for one that does not exist, 403 for another's)."""
        ctx = ctx or await self.context()
        try:
            c = await self.opened_store().get_complaint(complaint_id)
        except ComplaintNotFound:
            raise DeskError(404, "not_found", f"no complaint #{complaint_id}", f"нет жалобы №{complaint_id}") from None
        if not self.may_read(user, c, ctx):
            raise DeskError(403, "not_yours", f"complaint {c.number} is not one you work on",
                            f"жалоба {c.number} не из ваших")
        return c, ctx

    def info(self, c: Complaint, ctx: Context) -> m.ComplaintInfo:
        return self.messages.complaint_info(c, type_title=ctx.rules.type_title(c.type, ctx.rules.staff_language),
                                            now=self.clock())

    def task_info(self, task: Task, number: str) -> m.ComplaintTaskInfo:
        return self.messages.complaint_task(task, number, now=self.clock())

    # -- registration ------------------------------------------------------------------------------------------

    async def from_call(self, user: User, pbx: str | None, linkedid: str) -> Prefill:
        """What the call ``linkedid`` tells a complaint: its client's number and name (the caller of an inbound
        call, the number called of an outbound one), the directory's contact attached to the call or the only one
        with that number, their first car, the contact register's entry of the call. An agent registers from the
        calls their phone was on only."""
        store = self.opened_store()
        try:
            pbx = named_pbx(user, list(self.pbxs), pbx, what=f"call {linkedid[:80]}")
        except PbxRefused as exc:
            raise DeskError(exc.status, exc.api_code, exc.message) from None
        live: CallContext | None = self.pbxs[pbx].calls.get(linkedid)
        mirrored = self.mirrored(pbx, linkedid) if live is None else None
        record: CallRecord | None = None
        if live is None and mirrored is None:
            record = await store.get_call(linkedid, pbx=pbx)
            if record is None:
                await store.flush()  # a call that ended a moment ago may still be staged
                record = await store.get_call(linkedid, pbx=pbx)
        if live is not None:
            audience, direction = live.audience, live.direction
            caller, called, name = live.caller, live.called, live.caller_name
        elif mirrored is not None:
            audience, direction = mirrored.audience, mirrored.info.direction
            caller, called, name = mirrored.info.caller, mirrored.info.called, mirrored.info.caller_name
        elif record is not None:
            audience = frozenset(a for a in (record.answered_by, *record.agents_answered,
                                             *record.agents_rung_not_answered) if a)
            direction, caller, called, name = record.direction, record.caller, record.called, record.caller_name
        else:
            raise DeskError(404, "not_found", f"no call {linkedid[:80]!r}: neither in progress nor in the journal",
                            f"нет звонка {linkedid[:80]}: ни идущего, ни в журнале")
        if not may_see_audience(audience, ControlActor(name=user.name, role=user.role, extension=user.extension)):
            raise DeskError(403, "not_your_call", "agents register complaints from calls their phone was on",
                            "оператор регистрирует жалобы только по своим звонкам")
        number = called if direction == "outbound" else caller
        contact = await store.contact_of_call(linkedid, pbx=pbx)
        if contact is None and number:
            found = await store.find_contacts(number, limit=2)
            contact = found[0] if len(found) == 1 else None
        car = plate = None
        if contact is not None and contact.vehicles:
            vehicle = contact.vehicles[0]
            car = " ".join(p for p in (vehicle.make, vehicle.model) if p) or None
            plate = vehicle.plate
        return Prefill(
            call=CallRef(pbx=pbx, linkedid=linkedid),
            client_name=contact.name if contact is not None else (name or None),
            client_phone=number or None, client_email=contact.email if contact is not None else None,
            contact_id=contact.id if contact is not None else None, car=car, plate=plate,
            register_contact_id=await store.registered_contact_of_call(linkedid, pbx=pbx))

    async def register(self, user: User, req: Registration, *, key: str | None = None) -> tuple[Complaint, bool]:
        """File a complaint (module docstring); (complaint, True), or the one the same key filed and False."""
        store = self.opened_store()
        prefill: Prefill | None = None
        if req.linkedid is not None:
            if user.role == "integration":
                raise DeskError(400, "bad_request", "the integration API files complaints without a call",
                                "интеграция регистрирует жалобы без звонка")
            prefill = await self.from_call(user, req.pbx, req.linkedid)

        def given(value: str | None, name: str) -> str | None:
            if value is not None:
                return value
            return getattr(prefill, name) if prefill is not None else None

        source: Literal["call", "panel", "api"] = (
            "api" if user.role == "integration" else "call" if prefill is not None else "panel")
        new = NewComplaint(
            type=req.type, kind="supplier" if req.kind == "supplier" else "client", source=source,
            responsible=req.responsible, created_by=user.name,
            client_name=given(req.client_name, "client_name"), client_phone=given(req.client_phone, "client_phone"),
            client_email=given(req.client_email, "client_email"),
            contact_id=req.contact_id if req.contact_id is not None else (prefill.contact_id if prefill else None),
            car=given(req.car, "car"), plate=given(req.plate, "plate"), subject_kind=req.subject_kind,
            subject=req.subject, comment=req.comment, fields=dict(req.fields),
            calls=(prefill.call,) if prefill is not None else (),
            register_contact_id=prefill.register_contact_id if prefill is not None else None,
            idempotency_key=f"{user.name}:{key}" if key is not None else None)
        if req.kind not in ("client", "supplier"):
            raise DeskError.of_rule(InvalidValue("kind", "client or supplier", "client или supplier"))
        ctx = await self.context()
        now = self.clock()
        try:
            made = rules_.register(new, by=actor_of(user), at=now, rules=ctx.rules, people=ctx.people)
        except ComplaintRuleError as exc:
            raise DeskError.of_rule(exc) from None
        rendered: list[NewMail] = []

        def render(filed: Complaint) -> list[NewMail]:
            # The responsible's mail names the number the store gives inside the registration's transaction: rendered
            # there, so the complaint and its mail are written together (a crash loses neither without the other).
            rendered[:] = rules_.registered_mails(filed, by=user.name, rules=ctx.rules, people=ctx.people)
            return rendered

        complaint, fresh = await store.register_complaint(made.new, at=now, stage_due_at=made.stage_due_at,
                                                          mails=render)
        if not fresh:
            log.info("complaint %s: a retried registration by %s (the same idempotency key)", complaint.number,
                     user.name)
            return complaint, False
        log.info("complaint %s registered by %s (%s), responsible %s", complaint.number, user.name, source,
                 complaint.responsible)
        mails = rendered
        self._mailed(mails)
        info = self.info(complaint, ctx)
        self.fanout.publish_to_users(m.ComplaintRegistered(complaint=info, by=user.name),
                                     {complaint.responsible, complaint.assignee, *ctx.managers})
        for task in await store.complaint_tasks(complaint_id=complaint.id):
            self.fanout.publish_to_users(m.ComplaintTask(task=self.task_info(task, complaint.number), complaint=info),
                                         {task.assignee})
        return complaint, True

    # -- changes -----------------------------------------------------------------------------------------------

    async def change(self, user: User, complaint_id: int, revision: int | None, make: Make) -> Complaint:
        """One change (module docstring): the complaint as stored after it."""
        store = self.opened_store()
        c, ctx = await self.read(user, complaint_id)
        if revision is not None and revision != c.revision:
            raise self._conflict(c, ctx)
        now = self.clock()
        try:
            change = make(c, actor_of(user), now, ctx)
        except ComplaintRuleError as exc:
            raise DeskError.of_rule(exc) from None
        if not change.history and change.open_task is None and not change.mails:
            return c  # nothing changed: nothing written, nobody told
        try:
            stored = await store.commit_complaint(change)
        except ComplaintChanged as exc:
            raise self._conflict(exc.complaint, ctx) from None
        except ComplaintNotFound:
            raise DeskError(404, "not_found", f"no complaint #{complaint_id}", f"нет жалобы №{complaint_id}") from None
        self._mailed(change.mails)
        await self._tell(stored, ctx, by=user.name, actions=[a for a, _ in change.history],
                         before=(c.responsible, c.assignee), task=change.open_task is not None)
        return stored

    def _conflict(self, now: Complaint, ctx: Context) -> DeskError:
        return DeskError(409, "changed", f"complaint {now.number} was changed by someone else meanwhile (revision "
                         f"{now.revision}): read it again", f"жалобу {now.number} тем временем изменил другой "
                         "пользователь: откройте её заново", complaint=self.info(now, ctx).model_dump(mode="json"))

    async def _tell(self, c: Complaint, ctx: Context, *, by: str, actions: Sequence[str],
                    before: Sequence[str] = (), task: bool = False) -> None:
        info = self.info(c, ctx)
        self.fanout.publish_to_users(m.ComplaintChanged(complaint=info, by=by, actions=list(actions)),
                                     {c.responsible, c.assignee, *before, *ctx.managers})
        if task:
            for opened in await self.opened_store().complaint_tasks(complaint_id=c.id):
                self.fanout.publish_to_users(m.ComplaintTask(task=self.task_info(opened, c.number), complaint=info),
                                             {opened.assignee})

    def _mailed(self, mails: Sequence[NewMail]) -> None:
        if mails and self.wake_mailer is not None:
            self.wake_mailer()

    # The changes, each one call of the rules.

    async def edit(self, user: User, complaint_id: int, revision: int | None,
                   changes: Mapping[str, object]) -> Complaint:
        return await self.change(user, complaint_id, revision, lambda c, by, at, ctx: rules_.edit(
            c, changes, by=by, at=at, rules=ctx.rules))

    async def move(self, user: User, complaint_id: int, revision: int | None, *, back: bool, reason: str | None,
                   assignee: str | None) -> Complaint:
        def make(c: Complaint, by: Actor, at: float, ctx: Context) -> ComplaintChange:
            if back:
                return rules_.move_back(c, reason=reason or "", by=by, at=at, rules=ctx.rules, people=ctx.people,
                                        assignee=assignee)
            return rules_.move_next(c, by=by, at=at, rules=ctx.rules, people=ctx.people, assignee=assignee)

        return await self.change(user, complaint_id, revision, make)

    async def hand_over(self, user: User, complaint_id: int, revision: int | None, *, to: str,
                        question: str) -> Complaint:
        return await self.change(user, complaint_id, revision, lambda c, by, at, ctx: rules_.hand_over(
            c, to=to, question=question, by=by, at=at, rules=ctx.rules, people=ctx.people))

    async def answer(self, user: User, complaint_id: int, revision: int | None, *, text: str) -> Complaint:
        return await self.change(user, complaint_id, revision, lambda c, by, at, ctx: rules_.answer(
            c, text=text, by=by, at=at, rules=ctx.rules, people=ctx.people))

    async def reassign(self, user: User, complaint_id: int, revision: int | None, *, to: str, reason: str,
                       task_only: bool) -> Complaint:
        return await self.change(user, complaint_id, revision, lambda c, by, at, ctx: rules_.reassign(
            c, to=to, reason=reason, by=by, at=at, rules=ctx.rules, people=ctx.people, task_only=task_only))

    async def plan(self, user: User, complaint_id: int, revision: int | None, *, row: int | None,
                   values: ActionRow | None) -> Complaint:
        """An action-plan row added (``row`` None), replaced (``values``) or removed (``values`` None)."""
        def make(c: Complaint, by: Actor, at: float, ctx: Context) -> ComplaintChange:
            if row is None:
                assert values is not None
                return rules_.add_plan_row(c, values, by=by, at=at, rules=ctx.rules)
            if values is None:
                return rules_.remove_plan_row(c, row, by=by, at=at, rules=ctx.rules)
            return rules_.edit_plan_row(c, row, values, by=by, at=at, rules=ctx.rules)

        return await self.change(user, complaint_id, revision, make)

    # -- attachments -----------------------------------------------------------------------------------------------

    async def check_may_attach(self, user: User, complaint_id: int) -> Complaint:
        """Before a file is read: the complaint is the user's to work on, open, and has room for one more file."""
        c, ctx = await self.read(user, complaint_id)
        if c.stage == "closed":
            raise DeskError(409, "invalid_request", f"complaint {c.number} is closed: it takes no more files",
                            f"жалоба {c.number} закрыта: файлы к ней больше не добавляются")
        if not rules_.may_work(c, actor_of(user), ctx.rules):
            raise DeskError(403, "not_allowed", "only the responsible person, the stage's assignee or a manager adds "
                            "files to this complaint", "файлы к жалобе добавляют ответственный, исполнитель этапа "
                            "или руководитель")
        if len(c.attachments) >= self.settings.max_attachments:
            raise DeskError(409, "too_many_files", f"a complaint holds at most {self.settings.max_attachments} "
                            "files", f"к жалобе можно приложить не более {self.settings.max_attachments} файлов")
        return c

    async def attached(self, user: User, c: Complaint, received: Received) -> m.ComplaintAttachmentInfo:
        """Keep a received file's record (the file is deleted again when the store cannot keep it) and tell."""
        store = self.opened_store()
        try:
            kept = await store.add_attachment(c.id, file_name=received.file_name,
                                              content_type=received.content_type, size=received.size,
                                              stored_as=received.stored_as, by=user.name, at=self.clock())
        except BaseException:
            await asyncio.to_thread(self.files.path_of(received.stored_as).unlink, missing_ok=True)
            raise
        log.info("complaint %s: %s attached %r (%d bytes) as %s", c.number, user.name, kept.file_name, kept.size,
                 kept.stored_as)
        ctx = await self.context()
        await self._tell(await store.get_complaint(c.id), ctx, by=user.name, actions=["attached"])
        return m.ComplaintAttachmentInfo(id=kept.id, file_name=kept.file_name, content_type=kept.content_type,
                                         size=kept.size, by=kept.by, at=self.messages.time(kept.at),
                                         url=f"/api/complaints/attachments/{kept.id}")

    # -- lists -----------------------------------------------------------------------------------------------------

    async def listing(self, user: User, flt: ComplaintFilter) -> tuple[list[Complaint], int, Context]:
        """The complaints ``flt`` finds, of those ``user`` may list (a non-manager: only those they are responsible
        for, or work on when they ask for ``assignee``=themselves), and how many there are in all."""
        ctx = await self.context()
        if not (user.role == "qa" or self.is_manager(user, ctx)):
            if flt.assignee is not None and _same(flt.assignee, user.name):
                flt = _replace_filter(flt, responsible=None if flt.responsible is None or _same(
                    flt.responsible, user.name) else flt.responsible)
            if flt.responsible is not None and not _same(flt.responsible, user.name):
                raise DeskError(403, "not_allowed", "only managers list other people's complaints",
                                "чужие жалобы видит только руководитель")
            if flt.assignee is not None and not _same(flt.assignee, user.name):
                raise DeskError(403, "not_allowed", "only managers list other people's complaints",
                                "чужие жалобы видит только руководитель")
            if flt.assignee is None:
                flt = _replace_filter(flt, responsible=user.name)
        store = self.opened_store()
        return await store.list_complaints(flt), await store.count_complaints(flt), ctx

    async def tasks_of(self, user: User) -> list[tuple[Task, Complaint]]:
        """The user's open tasks, the earliest due first, each with its complaint."""
        store = self.opened_store()
        out: list[tuple[Task, Complaint]] = []
        for task in await store.complaint_tasks(assignee=user.name):
            try:
                out.append((task, await store.get_complaint(task.complaint_id)))
            except ComplaintNotFound:
                continue
        return out

    async def overdue(self, user: User) -> tuple[list[tuple[Task, Complaint]], Context]:
        """Every open task past its deadline (escalated or not), for a manager; anyone else's own overdue tasks. The
        earliest due first."""
        ctx = await self.context()
        store = self.opened_store()
        now = self.clock()
        out: list[tuple[Task, Complaint]] = []
        mine = None if self.is_manager(user, ctx) else user.name
        for task in await store.complaint_tasks(assignee=mine):
            if task.due_at is not None and task.due_at < now:
                try:
                    out.append((task, await store.get_complaint(task.complaint_id)))
                except ComplaintNotFound:
                    continue
        return out, ctx

    async def history(self, c: Complaint) -> list[HistoryItem]:
        return await self.opened_store().complaint_history(c.id)

    async def report(self, user: User, flt: ComplaintFilter) -> tuple[rules_.ComplaintReport, Context]:
        """The report over the complaints ``flt`` finds: every complaint for managers, admins and QA; anyone else's
        over the complaints they are responsible for (as their list)."""
        found, _, ctx = await self.listing(user, _replace_filter(flt, limit=REPORT_LIMIT, offset=0))
        store = self.opened_store()
        history = {c.id: await store.complaint_history(c.id) for c in found}
        return rules_.report(found, history), ctx

    # -- escalation ------------------------------------------------------------------------------------------------

    async def tick(self) -> int:
        """Escalate the open tasks past their deadline (each once, whichever node finds it first): the managers'
        e-mails queued with it, ``complaint.overdue`` to the managers; how many this node escalated."""
        store = self.store()
        if store is None:
            return 0
        now = self.clock()
        due = await store.overdue_tasks(now)
        if not due:
            return 0
        ctx = await self.context()
        escalated = 0
        for task in due:
            try:
                c = await store.get_complaint(task.complaint_id)
                mails = rules_.overdue_mails(c, task, rules=ctx.rules, people=ctx.people)
                done = await store.escalate_task(task.id, at=now, mails=mails)
            except ComplaintNotFound:
                continue
            if done is None:
                continue  # another node did, or it closed meanwhile
            escalated += 1
            log.info("complaint %s: the %s task of %s is overdue (due %s): escalated to the managers", c.number,
                     done.stage, done.assignee, self.messages.time(done.due_at))
            self._mailed(mails)
            self.fanout.publish_to_users(
                m.ComplaintOverdue(task=self.task_info(done, c.number), complaint=self.info(c, ctx)), ctx.managers)
        return escalated

    async def run(self, every: float = TICK_SECONDS) -> None:
        """:meth:`tick` every ``every`` seconds, until cancelled (the panel's background work)."""
        while True:
            try:
                await self.tick()
            except StoreError as exc:  # the database is away: the next round tries again
                log.warning("complaints: looking for overdue tasks failed: %s", exc)
            await asyncio.sleep(every)

    # -- what the panel's forms offer --------------------------------------------------------------------------

    def options(self, ctx: Context, language: Language) -> dict[str, Any]:
        """The vocabulary of the forms: types, subject kinds and their lists, the review's lists, the stages, the
        fields (which stage edits which), each stage's requirements, the people one may hand a stage to."""
        r = ctx.rules

        def choices(items: Sequence[rules_.Choice]) -> list[dict[str, str]]:
            return [{"key": i.key, "title": i.title, "title_en": i.title_en} for i in items]

        return {
            "types": choices(r.types), "subject_kinds": choices(r.subject_kinds),
            "subjects": {k: list(v) for k, v in r.subjects.items()}, "causes": list(r.causes),
            "departments": list(r.departments), "workshops": list(r.workshops),
            "stages": [{"key": s, "title": t[0], "title_en": t[1]} for s, t in rules_.STAGE_TITLES.items()],
            "fields": [{"name": f.name, "title": f.title, "title_en": f.title_en, "kind": f.kind,
                        "stages": list(f.stages), "options": f.options} for f in rules_.FIELDS.values()],
            "requirements": {s: [{"name": q.name, "title": q.title, "title_en": q.title_en, "fields": list(q.fields)}
                                 for q in reqs] for s, reqs in rules_.REQUIREMENTS.items()},
            "people": [{"name": p.name, "shown": p.shown} for p in ctx.people.values()],
            "managers": sorted(ctx.managers), "language": language,
            "max_attachment_bytes": self.settings.max_attachment_bytes,
            "attachment_types": list(self.settings.attachment_types),
        }

    def may(self, user: User, c: Complaint, ctx: Context) -> dict[str, bool]:
        """What ``user`` may do to ``c`` now (the card's buttons; the rules still decide each request)."""
        actor = actor_of(user)
        open_ = c.stage != "closed"
        working = open_ and user.role in WORKING_ROLES and rules_.may_work(c, actor, ctx.rules)
        return {"work": working, "reassign": open_ and self.is_manager(user, ctx),
                "answer": open_ and not _same(c.assignee, c.responsible) and (
                    _same(user.name, c.assignee) or self.is_manager(user, ctx))}


def _replace_filter(flt: ComplaintFilter, **changes: Any) -> ComplaintFilter:
    return replace(flt, **changes)
