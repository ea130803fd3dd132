"""Complaints over HTTP: the list (and its CSV), the card, registration (the panel, a call, the integration API),
every change of the review, the action plan, tasks, the overdue list, the report (and its CSV), and the files.

The desk (``ui_bridge/complaints.py``) does the work; this module reads requests at the edge (pydantic bodies,
checked query parameters, the ``Idempotency-Key`` header) and writes the answers. Who may call which route is the
route table's (``ui_bridge/http.py``); which complaint a user may read or change is the desk's and the rules'.

Errors are ``{"error": {"code", "message", "message_en", "message_ru", ...}}``: ``message`` in the language the
request's ``Accept-Language`` prefers (Russian or English; else ``[http] language``), both beside it, and what
else says what went wrong: ``fields`` (what a stage still needs, each with its titles) for a move refused with 422
``missing_fields``, ``field`` for a value refused with 422 ``invalid_value``, ``complaint`` (as it is now) for a
409 ``changed``. ``docs/complaints.md#api`` lists every route with examples.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict
from datetime import tzinfo
from typing import Annotated, Any, Literal, TextIO

from pydantic import BaseModel, ConfigDict, Field, StringConstraints
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from cti.complaint_mail import Language
from cti.complaint_rules import STAGE_TITLES, ComplaintReport, editable_fields, missing_fields
from cti.complaints import STAGES, ActionRow, Complaint, ComplaintFilter, HistoryItem, Stage, Status
from cti.safe_text import csv_cells
from store.repository import ComplaintNotFound, User

from ..api_models import SQLITE_MAX_INT, BadRequest, period, read_model, whole_number
from ..attachments import UploadRefused, content_disposition
from ..complaint_settings import ATTACHMENT_TYPES
from ..complaints import ComplaintDesk, Context, DeskError, Registration
from ..csv_download import csv_response, download_format

#: The 403s of the route table.
COMPLAINTS_ARE_FOR = "complaints are read by agents, employees, admins and QA"
COMPLAINTS_ARE_WORKED_BY = "complaints are worked on by agents, employees and admins"
COMPLAINTS_ARE_FILED_BY = "complaints are filed by agents, employees, admins and the integration API"
THE_CARD_IS_FOR = "a complaint's card is read by agents, employees, admins, QA and the integration that filed it"
#: The 403 of a write from a foreign page.
FOREIGN_COMPLAINT = "this origin may not change complaints"
#: Where a complaint's files are uploaded: the edge lets these bodies be as large as a file may be.
UPLOAD_PATH = re.compile(r"/api/complaints/[^/]+/attachments")

STATUSES: tuple[Status, ...] = ("registered", "in_progress", "satisfied", "not_satisfied")
_KEY = re.compile(r"[A-Za-z0-9._:\-]{1,100}")
_NAME = 64
_LINE = 200
_TEXT = 4000

Line = Annotated[str, StringConstraints(max_length=_LINE)]
Text = Annotated[str, StringConstraints(max_length=_TEXT)]
UserName = Annotated[str, StringConstraints(max_length=_NAME)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class RegisterBody(_Body):
    """``POST /api/complaints``: the type and whatever is known; ``pbx`` + ``linkedid``: from that call (the client
    and the car filled in from it, what the body gives over it)."""

    type: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    kind: Literal["client", "supplier"] = "client"
    responsible: UserName = ""
    client_name: Line | None = None
    client_phone: Annotated[str, StringConstraints(max_length=40)] | None = None
    client_email: Line | None = None
    contact_id: Annotated[int, Field(ge=1, le=SQLITE_MAX_INT)] | None = None
    car: Line | None = None
    plate: Annotated[str, StringConstraints(max_length=20)] | None = None
    subject_kind: Annotated[str, StringConstraints(max_length=40)] | None = None
    subject: Line | None = None
    comment: Text | None = None
    fields: Annotated[dict[Annotated[str, StringConstraints(max_length=40)], Text], Field(max_length=30)] = {}
    pbx: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    linkedid: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[0-9A-Za-z.\-_]+$")
                        ] | None = None


class _Change(_Body):
    #: The revision the client read (a complaint changed since: 409 with it as it is now); None: not checked.
    revision: Annotated[int, Field(ge=1, le=SQLITE_MAX_INT)] | None = None


Value = str | bool | float | None


class EditBody(_Change):
    changes: Annotated[dict[Annotated[str, StringConstraints(max_length=40)], Value], Field(min_length=1,
                                                                                            max_length=40)]


class MoveBody(_Change):
    to: Literal["next", "back"] = "next"
    reason: Text | None = None
    assignee: UserName | None = None


class HandOverBody(_Change):
    to: UserName
    question: Text


class AnswerBody(_Change):
    text: Text


class ReassignBody(_Change):
    to: UserName
    reason: Text
    task_only: bool = False


class PlanRow(_Body):
    when: Annotated[str, StringConstraints(max_length=20)]
    what: Text
    who: Line
    result: Text = ""
    effort_hours: float | None = None

    def row(self) -> ActionRow:
        return ActionRow(when=self.when, what=self.what, who=self.who, result=self.result,
                         effort_hours=self.effort_hours)


class PlanBody(_Change):
    row: PlanRow


def language_of(request: Request, default: str) -> Language:
    """The language the request prefers: the first of ``Accept-Language`` that is Russian or English, else the
    panel's default (``[http] language``; ``auto``: Russian)."""
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip().lower()
        if tag.startswith("ru"):
            return "ru"
        if tag.startswith("en"):
            return "en"
    return "en" if default == "en" else "ru"


class ComplaintRoutes:
    def __init__(self, desk: ComplaintDesk, language: str = "auto") -> None:
        self.desk = desk
        self.language = language

    # -- answers ---------------------------------------------------------------------------------------------------

    def _lang(self, request: Request) -> Language:
        return language_of(request, self.language)

    def _error(self, request: Request, exc: DeskError | UploadRefused | BadRequest) -> JSONResponse:
        if isinstance(exc, BadRequest):
            exc = DeskError(400, "bad_request", str(exc))
        extra = exc.extra if isinstance(exc, DeskError) else {}
        message = exc.message_ru if self._lang(request) == "ru" else exc.message_en
        return JSONResponse({"error": {"code": exc.code, "message": message, "message_en": exc.message_en,
                                       "message_ru": exc.message_ru, **extra}}, status_code=exc.status)

    def _complaint(self, c: Complaint, ctx: Context, status: int = 200, **more: Any) -> JSONResponse:
        return JSONResponse({"complaint": self.desk.info(c, ctx).model_dump(mode="json"), **more},
                            status_code=status)

    # -- reads -----------------------------------------------------------------------------------------------------

    async def listing(self, request: Request, user: User) -> Response:
        try:
            flt = _filter(request, self.desk.clock(), self.desk.messages.tz)
            fmt, encoding = download_format(request.query_params)
            found, total, ctx = await self.desk.listing(user, flt)
        except (DeskError, BadRequest) as exc:
            return self._error(request, exc)
        if fmt == "csv":
            rows = self._csv_rows(found, ctx)
            return csv_response(lambda out: _write_rows(rows, out), "complaints.csv", encoding)
        return JSONResponse({"complaints": [self.desk.info(c, ctx).model_dump(mode="json") for c in found],
                             "total": total})

    async def card(self, request: Request, user: User) -> Response:
        try:
            c, ctx = await self.desk.read(user, _id(request, "complaint_id"))
        except (DeskError, BadRequest) as exc:
            return self._error(request, exc)
        history = await self.desk.history(c)
        store_tasks = await self.desk.opened_store().complaint_tasks(complaint_id=c.id, open_only=False)
        missing = missing_fields(c) if c.stage != "closed" else ()
        return self._complaint(
            c, ctx, history=[_history_item(h, self.desk) for h in history],
            tasks=[self.desk.task_info(t, c.number).model_dump(mode="json") for t in store_tasks],
            may=self.desk.may(user, c, ctx) if user.role != "integration" else {},
            missing=[{"name": r.name, "title": r.title, "title_en": r.title_en, "fields": list(r.fields)}
                     for r in missing],
            editable=[f.name for f in editable_fields(c.stage)])

    async def options(self, request: Request, user: User) -> Response:
        try:
            ctx = await self.desk.context()
        except DeskError as exc:
            return self._error(request, exc)
        return JSONResponse(self.desk.options(ctx, self._lang(request)))

    async def from_call(self, request: Request, user: User) -> Response:
        """What registering from a call would fill in (the panel's form shows it before the one click)."""
        q = request.query_params
        linkedid = q.get("linkedid") or ""
        try:
            if not re.fullmatch(r"[0-9A-Za-z.\-_]{1,100}", linkedid):
                raise BadRequest("linkedid: the call's linkedid is required (digits, letters, '.', '-', '_')")
            prefill = await self.desk.from_call(user, q.get("pbx") or None, linkedid)
        except (DeskError, BadRequest) as exc:
            return self._error(request, exc)
        return JSONResponse({"call": asdict(prefill.call),
                             **{k: v for k, v in asdict(prefill).items() if k != "call"}})

    async def tasks(self, request: Request, user: User) -> Response:
        try:
            found = await self.desk.tasks_of(user)
            ctx = await self.desk.context()
        except DeskError as exc:
            return self._error(request, exc)
        return JSONResponse({"tasks": [self._task(t, c, ctx) for t, c in found],
                             "now": self.desk.messages.time(self.desk.clock())})

    async def overdue(self, request: Request, user: User) -> Response:
        try:
            found, ctx = await self.desk.overdue(user)
        except DeskError as exc:
            return self._error(request, exc)
        return JSONResponse({"tasks": [self._task(t, c, ctx) for t, c in found],
                             "now": self.desk.messages.time(self.desk.clock())})

    def _task(self, task: Any, c: Complaint, ctx: Context) -> dict[str, Any]:
        return {**self.desk.task_info(task, c.number).model_dump(mode="json"),
                "complaint": self.desk.info(c, ctx).model_dump(mode="json")}

    async def report(self, request: Request, user: User) -> Response:
        try:
            flt = _filter(request, self.desk.clock(), self.desk.messages.tz)
            fmt, encoding = download_format(request.query_params)
            figures, ctx = await self.desk.report(user, flt)
        except (DeskError, BadRequest) as exc:
            return self._error(request, exc)
        body = report_json(figures, ctx, self._lang(request))
        if fmt == "csv":
            return csv_response(lambda out: write_report_csv(body, out), "complaints-report.csv", encoding)
        return JSONResponse(body)

    # -- registration ----------------------------------------------------------------------------------------------

    async def register(self, request: Request, user: User) -> Response:
        key = request.headers.get("idempotency-key")
        try:
            if key is not None and not _KEY.fullmatch(key):
                raise BadRequest("Idempotency-Key: 1 to 100 letters, digits and . _ : -")
            if user.role == "integration" and key is None:
                raise BadRequest("Idempotency-Key: the integration API needs one (the same key again finds the "
                                 "complaint the first request filed)")
            body = await read_model(request, RegisterBody, hint='send JSON {"type": "quality", "client_name": ..., '
                                    '"comment": ...}: ')
            req = Registration(
                type=body.type, kind=body.kind, responsible=body.responsible, client_name=body.client_name,
                client_phone=body.client_phone, client_email=body.client_email, contact_id=body.contact_id,
                car=body.car, plate=body.plate, subject_kind=body.subject_kind, subject=body.subject,
                comment=body.comment, fields=body.fields, pbx=body.pbx, linkedid=body.linkedid)
            c, fresh = await self.desk.register(user, req, key=key)
            ctx = await self.desk.context()
        except (DeskError, BadRequest) as exc:
            return self._error(request, exc)
        return self._complaint(c, ctx, 201 if fresh else 200, created=fresh)

    # -- changes ---------------------------------------------------------------------------------------------------

    async def edit(self, request: Request, user: User) -> Response:
        async def run(cid: int) -> Complaint:
            body = await read_model(request, EditBody, hint='send JSON {"revision": N, "changes": {"field": '
                                    'value}}: ')
            return await self.desk.edit(user, cid, body.revision, body.changes)
        return await self._changed(request, user, run)

    async def move(self, request: Request, user: User) -> Response:
        async def run(cid: int) -> Complaint:
            body = await read_model(request, MoveBody, hint='send JSON {"revision": N, "to": "next"|"back", '
                                    '"reason": ..., "assignee": ...}: ')
            return await self.desk.move(user, cid, body.revision, back=body.to == "back", reason=body.reason,
                                        assignee=body.assignee)
        return await self._changed(request, user, run)

    async def hand_over(self, request: Request, user: User) -> Response:
        async def run(cid: int) -> Complaint:
            body = await read_model(request, HandOverBody, hint='send JSON {"revision": N, "to": "user", '
                                    '"question": ...}: ')
            return await self.desk.hand_over(user, cid, body.revision, to=body.to, question=body.question)
        return await self._changed(request, user, run)

    async def answer(self, request: Request, user: User) -> Response:
        async def run(cid: int) -> Complaint:
            body = await read_model(request, AnswerBody, hint='send JSON {"revision": N, "text": ...}: ')
            return await self.desk.answer(user, cid, body.revision, text=body.text)
        return await self._changed(request, user, run)

    async def reassign(self, request: Request, user: User) -> Response:
        async def run(cid: int) -> Complaint:
            body = await read_model(request, ReassignBody, hint='send JSON {"revision": N, "to": "user", '
                                    '"reason": ..., "task_only": false}: ')
            return await self.desk.reassign(user, cid, body.revision, to=body.to, reason=body.reason,
                                            task_only=body.task_only)
        return await self._changed(request, user, run)

    async def plan_add(self, request: Request, user: User) -> Response:
        async def run(cid: int) -> Complaint:
            body = await read_model(request, PlanBody, hint='send JSON {"revision": N, "row": {"when": '
                                    '"2026-11-25", "what": ..., "who": ..., "result": ..., "effort_hours": 2}}: ')
            return await self.desk.plan(user, cid, body.revision, row=None, values=body.row.row())
        return await self._changed(request, user, run, 201)

    async def plan_edit(self, request: Request, user: User) -> Response:
        async def run(cid: int) -> Complaint:
            row = _row(request)
            body = await read_model(request, PlanBody, hint='send JSON {"revision": N, "row": {...}}: ')
            return await self.desk.plan(user, cid, body.revision, row=row, values=body.row.row())
        return await self._changed(request, user, run)

    async def plan_remove(self, request: Request, user: User) -> Response:
        async def run(cid: int) -> Complaint:
            revision = whole_number(request.query_params, "revision", 0, 0, SQLITE_MAX_INT) or None
            return await self.desk.plan(user, cid, revision, row=_row(request), values=None)
        return await self._changed(request, user, run)

    async def _changed(self, request: Request, user: User, run: Callable[[int], Any], status: int = 200) -> Response:
        try:
            c = await run(_id(request, "complaint_id"))
            ctx = await self.desk.context()
        except (DeskError, BadRequest) as exc:
            return self._error(request, exc)
        return self._complaint(c, ctx, status)

    # -- files -----------------------------------------------------------------------------------------------------

    async def upload(self, request: Request, user: User) -> Response:
        settings = self.desk.settings
        try:
            c = await self.desk.check_may_attach(user, _id(request, "complaint_id"))
            received = await self.desk.files.receive(
                request.headers.get("content-type", ""), request.stream(), max_bytes=settings.max_attachment_bytes,
                accepted={ext: ATTACHMENT_TYPES[ext] for ext in settings.attachment_types})
            info = await self.desk.attached(user, c, received)
        except (DeskError, BadRequest, UploadRefused) as exc:
            await _drain(request)
            return self._error(request, exc)
        return JSONResponse({"attachment": info.model_dump(mode="json")}, status_code=201)

    async def download(self, request: Request, user: User) -> Response:
        try:
            attachment_id = _id(request, "attachment_id")
            try:
                attachment = await self.desk.opened_store().get_attachment(attachment_id)
            except ComplaintNotFound:
                raise DeskError(404, "not_found", f"no file #{attachment_id}", f"нет файла №{attachment_id}") from None
            await self.desk.read(user, attachment.complaint_id)
            try:
                path = self.desk.files.path_of(attachment.stored_as)
            except ValueError:
                raise DeskError(404, "not_found", f"file #{attachment_id} cannot be served",
                                f"файл №{attachment_id} недоступен") from None
            if not path.is_file():
                raise DeskError(404, "gone", f"file #{attachment_id} is no longer on the server",
                                f"файла №{attachment_id} больше нет на сервере")
        except (DeskError, BadRequest) as exc:
            return self._error(request, exc)
        return FileResponse(path, media_type=attachment.content_type, headers={
            "Content-Disposition": content_disposition(attachment.file_name),  # nosniff: the edge's (limits.py)
            "Cache-Control": "private, no-store"})

    def _csv_rows(self, found: Iterable[Complaint], ctx: Context) -> Iterable[dict[str, Any]]:
        time_of = self.desk.messages.time
        now = self.desk.clock()
        for c in found:
            yield {
                "number": c.number, "created_at": time_of(c.created_at), "type": c.type,
                "type_title": ctx.rules.type_title(c.type, ctx.rules.staff_language), "kind": c.kind,
                "stage": c.stage, "status": c.status, "source": c.source, "responsible": c.responsible,
                "assignee": c.assignee,
                "stage_due_at": time_of(c.stage_due_at) if c.stage_due_at is not None else None,
                "overdue": c.stage != "closed" and c.stage_due_at is not None and c.stage_due_at < now,
                "client_name": c.client_name, "client_phone": c.client_phone, "client_email": c.client_email,
                "car": c.car, "plate": c.plate, "subject_kind": c.subject_kind, "subject": c.subject,
                "comment": c.comment, "cause": c.fields.get("cause"), "department": c.fields.get("department"),
                "employee_at_fault": c.fields.get("employee_at_fault"), "workshop": c.fields.get("workshop"),
                "justified": c.justified, "result": c.result,
                "closed_at": time_of(c.closed_at) if c.closed_at is not None else None,
                "calls": " ".join(f"{call.pbx}/{call.linkedid}" for call in c.calls)}


#: The list's CSV columns (``GET /api/complaints?format=csv``).
CSV_COLUMNS = ("number", "created_at", "type", "type_title", "kind", "stage", "status", "source", "responsible",
               "assignee", "stage_due_at", "overdue", "client_name", "client_phone", "client_email", "car", "plate",
               "subject_kind", "subject", "comment", "cause", "department", "employee_at_fault", "workshop",
               "justified", "result", "closed_at", "calls")


def _write_rows(rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    """The list as CSV (``;``, CRLF): the header, then a line per complaint."""
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    writer.writerows(csv_cells(row, CSV_COLUMNS) for row in rows)


def report_json(r: ComplaintReport, ctx: Context, language: Language) -> dict[str, Any]:
    """The report's figures as the API answers them (and the CSV writes them)."""
    def shares(value: float | None) -> float | None:
        return round(value, 4) if value is not None else None

    return {
        "total": r.total,
        "by_type": [{"key": k, "title": ctx.rules.type_title(k, language), "count": n} for k, n in r.by_type],
        "by_cause": [{"key": k, "count": n} for k, n in r.by_cause],
        "by_department": [{"key": k, "count": n} for k, n in r.by_department],
        "justified": r.justified, "decided": r.decided, "justified_share": shares(r.justified_share),
        "satisfied": r.satisfied, "closed": r.closed, "satisfied_share": shares(r.satisfied_share),
        "stages": [{"stage": stage, "title": STAGE_TITLES[stage][0 if language == "ru" else 1],
                    "median_hours": round(seconds / 3600, 2) if seconds is not None else None,
                    "samples": r.stage_samples.get(stage, 0)} for stage, seconds in r.median_seconds.items()],
    }


def write_report_csv(body: dict[str, Any], out: TextIO) -> None:
    """The report as CSV (``;``, CRLF): the totals, then each table under a line with its name and its header."""
    writer = csv.writer(out, delimiter=";", lineterminator="\r\n")
    writer.writerow(["total", "justified", "decided", "justified_share", "satisfied", "closed", "satisfied_share"])
    writer.writerow(csv_cells(body, ("total", "justified", "decided", "justified_share", "satisfied", "closed",
                                     "satisfied_share")))
    for table, columns in (("by_type", ("key", "title", "count")), ("by_cause", ("key", "count")),
                           ("by_department", ("key", "count")),
                           ("stages", ("stage", "title", "median_hours", "samples"))):
        writer.writerow([])
        writer.writerow([table])
        writer.writerow(columns)
        for row in body[table]:
            writer.writerow(csv_cells(row, columns))


def _history_item(h: HistoryItem, desk: ComplaintDesk) -> dict[str, Any]:
    return {"id": h.id, "at": desk.messages.time(h.at), "by": h.by, "action": h.action, "details": h.details}


def _id(request: Request, name: str) -> int:
    text = request.path_params[name]
    if not (text.isascii() and text.isdigit() and len(text) <= 19 and 0 < int(text) <= SQLITE_MAX_INT):
        raise DeskError(404, "not_found", f"no such id {text[:30]!r}", f"нет такого номера «{text[:30]}»")
    return int(text)


def _row(request: Request) -> int:
    text = request.path_params["row"]
    if not (text.isascii() and text.isdigit() and len(text) <= 4):
        raise BadRequest("row: the row's position in the plan, from 0")
    return int(text)


def _list_of(text: str | None, name: str, known: Sequence[str]) -> tuple[Any, ...]:
    if not text:
        return ()
    values = tuple(dict.fromkeys(v.strip() for v in text.split(",") if v.strip()))
    unknown = [v for v in values if v not in known]
    if unknown:
        raise BadRequest(f"{name}: {unknown[0][:40]!r} is not one of {', '.join(known)}")
    return values


def _filter(request: Request, now: float, tz: tzinfo | None) -> ComplaintFilter:
    """The list's filters from the query: ``status``, ``stage``, ``type`` (comma lists), ``responsible``,
    ``assignee``, ``overdue=1``, ``since``/``until`` (registered in that period), ``q`` (text), ``limit``,
    ``offset``. A date or time without an offset is the site's (``[pbx] timezone``): «1 ноября» is Moscow's midnight
    for a Moscow centre, whatever zone the server's clock runs in."""
    q = request.query_params
    since, until = period(q, tz)
    types = tuple(dict.fromkeys(t.strip() for t in (q.get("type") or "").split(",") if t.strip()))
    if any(len(t) > 40 for t in types):
        raise BadRequest("type: at most 40 characters each")
    overdue = q.get("overdue")
    if overdue not in (None, "", "0", "1", "true", "false"):
        raise BadRequest("overdue is 1 or 0")
    text = q.get("q") or None
    for name in ("responsible", "assignee"):
        value = q.get(name)
        if value is not None and (len(value) > _NAME or not value.isprintable()):
            raise BadRequest(f"{name}: at most {_NAME} printable characters")
    if text is not None and (len(text) > 100 or not text.isprintable()):
        raise BadRequest("q: at most 100 printable characters")
    stages: tuple[Stage, ...] = _list_of(q.get("stage"), "stage", STAGES)
    statuses: tuple[Status, ...] = _list_of(q.get("status"), "status", STATUSES)
    return ComplaintFilter(
        statuses=statuses, stages=stages, types=types, responsible=q.get("responsible") or None,
        assignee=q.get("assignee") or None, overdue_at=now if overdue in ("1", "true") else None, since=since,
        until=until, text=text, limit=whole_number(q, "limit", 100, 1, 1000),
        offset=whole_number(q, "offset", 0, 0, 1_000_000))


async def _drain(request: Request) -> None:
    """Read what is left of a refused upload's body (bounded by the edge), so the client gets the answer rather
    than a reset connection."""
    try:
        async for _ in request.stream():
            pass
    except Exception:  # the stream was consumed already, or the client is gone: nothing to drain
        return

