"""Complaints, their history, stage tasks and attachments on both stores (``store.repository.Complaints``).

Why one module, as ``reminders.py`` and ``transcriptions.py``: the statements are the same on SQLite and PostgreSQL
(named parameters, which the PostgreSQL store numbers; ``ON CONFLICT``, ``RETURNING``) and so is every decision;
what differs is one clause, :attr:`ComplaintOps._FOR_UPDATE` (PostgreSQL locks the complaint's row for the
revision check; SQLite's one writer holds the whole file). The rules (which stage follows, what a stage needs, the
deadlines, who gets which mail) are ``cti/complaint_rules.py``'s: this module writes what a
:class:`~cti.complaints.ComplaintChange` says, in one transaction.

**A change is whole or nothing.** ``commit_complaint`` checks the revision the change was read at (a complaint
changed since is refused with ``ComplaintChanged``, carrying the complaint as it is now), writes the new state, its
calls and action plan, its history items, closes the complaint's open tasks and opens the new one, and queues its
mails (``store/outbox.py``), all in one transaction. A task left because the complaint moved on is ``done``; one
left because its stage was handed to someone else (the same stage again) is ``cancelled``; a closed complaint keeps
no open task.

**Numbers and retries.** A complaint's number (``Ж-2026-0001``) counts per year in ``complaint_numbers``, bumped in
the registering transaction: the row's lock serialises two nodes registering at once, and a registration rolled
back gives its number back. The year is the site's when the store was told its zone (``report_zone``,
``keep_report_days``), else UTC's. A request's idempotency key is unique: a retry, even one racing the first
request on another node, finds the complaint the first one filed (PostgreSQL's unique index makes the second
insert wait for the first one's commit, then do nothing; the second transaction is rolled back, number included).

**Escalated once.** ``escalate_task`` is one ``UPDATE ... WHERE escalated_at IS NULL RETURNING``: whichever node's
ticker comes first escalates, the other gets None.

**The text filter** matches ``search``, a column written with the row: the number, client, phone, e-mail, car,
plate, subject, comment and stage fields, case-folded, with the plate's key (Cyrillic or Latin look-alikes, no
spaces: ``cti.plates.clean_plate``) and the phone's (``cti.phones.normalize_number``), so «а123вс» finds А 123 ВС 777
and 8 (916) 123-45-67 finds +7 916 123 45 67. The query's text is bound as a ``LIKE`` pattern with ``%`` and ``_``
escaped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from cti.complaints import (
    STAGES,
    ActionRow,
    Attachment,
    CallRef,
    Complaint,
    ComplaintChange,
    ComplaintFilter,
    HistoryItem,
    Kind,
    NewComplaint,
    NewMail,
    Source,
    Stage,
    Status,
    Task,
    TaskState,
)
from cti.phones import normalize_number
from cti.plates import clean_plate
from store.outbox import insert_mail
from store.repository import ComplaintChanged, ComplaintNotFound

T = TypeVar("T")
#: A row as either driver gives it (``sqlite3.Row``, ``asyncpg.Record``): read by column name.
Row = Any
#: Runs a statement (the backend's ``_read``, or its ``_rows_in`` bound to a transaction's connection).
Run = Callable[[str, dict[str, Any]], Awaitable[Sequence[Row]]]

KINDS: tuple[Kind, ...] = ("client", "supplier")
SOURCES: tuple[Source, ...] = ("call", "panel", "api")
STATUSES: tuple[Status, ...] = ("registered", "in_progress", "satisfied", "not_satisfied")
TASK_STATES: tuple[TaskState, ...] = ("open", "done", "cancelled")
RESULTS = ("satisfied", "not_satisfied")
#: The most complaints one listing returns, whatever it asks for (the CSV pages through ``offset``).
MAX_LIST = 5000
#: Who writes the history items nobody asked for (an overdue task escalated by the ticker).
SYSTEM = "system"

_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode

#: The columns a change may set (everything but the id, the number, who filed it when, how, and its key).
_MUTABLE = ("type", "kind", "stage", "status", "responsible", "assignee", "stage_entered_at", "stage_due_at",
            "client_name", "client_phone", "client_email", "contact_id", "car", "plate", "subject_kind", "subject",
            "comment", "justified", "result", "fields", "register_contact_id", "closed_at", "search")
_REGISTERED = ("number", "type", "kind", "stage", "status", "source", "responsible", "assignee", "stage_entered_at",
               "stage_due_at", "created_at", "created_by", "updated_at", "revision", "client_name", "client_phone",
               "client_email", "contact_id", "car", "plate", "subject_kind", "subject", "comment", "fields",
               "register_contact_id", "idempotency_key", "search")
_INSERT = (f"INSERT INTO complaints ({', '.join(_REGISTERED)}) VALUES ({', '.join(':' + c for c in _REGISTERED)}) "
           "ON CONFLICT (idempotency_key) DO NOTHING RETURNING id")
_UPDATE = (f"UPDATE complaints SET {', '.join(f'{c} = :{c}' for c in _MUTABLE)}, updated_at = :at, "
           "revision = revision + 1 WHERE id = :id AND revision = :revision RETURNING id")
_INSERT_HISTORY = ("INSERT INTO complaint_history (complaint_id, at, author, action, details) "
                   "VALUES (:complaint_id, :at, :author, :action, :details) RETURNING *")
_INSERT_TASK = ("INSERT INTO complaint_tasks (complaint_id, stage, assignee, created_at, due_at) "
                "VALUES (:complaint_id, :stage, :assignee, :at, :due_at)")
#: A query the phone's key is also tried for: digits (five at least) and the ways people write a number.
_PHONE_LIKE = re.compile(r"[+(]?\d[\d\s().-]{3,}\d")
_TASK_ORDER = " ORDER BY CASE WHEN due_at IS NULL THEN 1 ELSE 0 END, due_at, id"


class _AlreadyFiled(Exception):
    """Inside ``register_complaint``'s transaction: the key was used meanwhile (rolls the transaction back)."""


# -- rows ----------------------------------------------------------------------------------------------------------


def _opt(value: Any) -> float | None:
    return float(value) if value is not None else None


def _opt_int(value: Any) -> int | None:
    return int(value) if value is not None else None


def _one_of(value: Any, allowed: Sequence[str | None], what: str, owner: str) -> Any:
    if value not in allowed:
        raise ValueError(f"{owner}: unknown {what} {value!r}")
    return value


def complaint_from_row(row: Row, calls: Sequence[CallRef] = (), plan: Sequence[ActionRow] = (),
                       attachments: Sequence[Attachment] = ()) -> Complaint:
    """A ``complaints`` row (either driver's) with what the other tables hold of it."""
    owner = f"complaint #{row['id']}"
    fields = json.loads(row["fields"] or "{}")
    justified = row["justified"]
    return Complaint(
        id=int(row["id"]), number=row["number"], type=row["type"],
        kind=cast(Kind, _one_of(row["kind"], KINDS, "kind", owner)),
        stage=cast(Stage, _one_of(row["stage"], STAGES, "stage", owner)),
        status=cast(Status, _one_of(row["status"], STATUSES, "status", owner)),
        source=cast(Source, _one_of(row["source"], SOURCES, "source", owner)),
        responsible=row["responsible"], assignee=row["assignee"], stage_entered_at=float(row["stage_entered_at"]),
        stage_due_at=_opt(row["stage_due_at"]), created_at=float(row["created_at"]), created_by=row["created_by"],
        updated_at=float(row["updated_at"]), revision=int(row["revision"]), client_name=row["client_name"],
        client_phone=row["client_phone"], client_email=row["client_email"], contact_id=_opt_int(row["contact_id"]),
        car=row["car"], plate=row["plate"], subject_kind=row["subject_kind"], subject=row["subject"],
        comment=row["comment"], justified=bool(justified) if justified is not None else None,
        result=cast("Literal['satisfied', 'not_satisfied'] | None",
                    _one_of(row["result"], (*RESULTS, None), "result", owner)),
        fields={str(k): str(v) for k, v in fields.items()} if isinstance(fields, dict) else {},
        calls=tuple(calls), register_contact_id=_opt_int(row["register_contact_id"]), action_plan=tuple(plan),
        attachments=tuple(attachments), closed_at=_opt(row["closed_at"]), idempotency_key=row["idempotency_key"])


def task_from_row(row: Row) -> Task:
    owner = f"complaint task #{row['id']}"
    return Task(id=int(row["id"]), complaint_id=int(row["complaint_id"]),
                stage=cast(Stage, _one_of(row["stage"], STAGES, "stage", owner)), assignee=row["assignee"],
                created_at=float(row["created_at"]), due_at=_opt(row["due_at"]),
                state=cast(TaskState, _one_of(row["state"], TASK_STATES, "state", owner)),
                done_at=_opt(row["done_at"]), escalated_at=_opt(row["escalated_at"]))


def history_from_row(row: Row) -> HistoryItem:
    details = json.loads(row["details"] or "{}")
    return HistoryItem(id=int(row["id"]), complaint_id=int(row["complaint_id"]), at=float(row["at"]),
                       by=row["author"], action=row["action"], details=details if isinstance(details, dict) else {})


def attachment_from_row(row: Row) -> Attachment:
    return Attachment(id=int(row["id"]), complaint_id=int(row["complaint_id"]), file_name=row["file_name"],
                      content_type=row["content_type"], size=int(row["size"]), stored_as=row["stored_as"],
                      by=row["author"], at=float(row["at"]))


def _action_from_row(row: Row) -> ActionRow:
    return ActionRow(when=row["due"], what=row["what"], who=row["who"], result=row["result"],
                     effort_hours=_opt(row["effort_hours"]))


# -- what is written -----------------------------------------------------------------------------------------------


def search_text(values: Sequence[str | None], fields: dict[str, str], plate: str | None, phone: str | None,
                region: str) -> str:
    """The ``search`` column: the texts the list's text filter matches, case-folded, one a line, with the plate's
    and the phone's keys."""
    parts = [v for v in values if v]
    parts.extend(v for v in fields.values() if v)
    if plate and clean_plate(plate):
        parts.append(clean_plate(plate))
    key = normalize_number(phone, region) if phone else None
    if key:
        parts.append(key)
    return "\n".join(p.casefold() for p in parts)


def _like(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _in(column: str, values: Sequence[Any], name: str, params: dict[str, Any]) -> str:
    names = []
    for i, value in enumerate(values):
        params[f"{name}{i}"] = value
        names.append(f":{name}{i}")
    return f"{column} IN ({', '.join(names)})"


def _check(c: Complaint | NewComplaint) -> None:
    """The closed vocabularies, before anything is written (the tables' CHECKs are the last line)."""
    owner = f"complaint #{c.id}" if isinstance(c, Complaint) else "a new complaint"
    _one_of(c.kind, KINDS, "kind", owner)
    _one_of(c.source, SOURCES, "source", owner)
    if isinstance(c, Complaint):
        _one_of(c.stage, STAGES, "stage", owner)
        _one_of(c.status, STATUSES, "status", owner)
        _one_of(c.result, (*RESULTS, None), "result", owner)
    if not c.responsible:
        raise ValueError(f"{owner}: no responsible person")


def _details(details: dict[str, Any]) -> str:
    return _encode(details)


# -- the concern ---------------------------------------------------------------------------------------------------


class ComplaintOps:
    """``register_complaint`` ... ``get_attachment``: the ``store.repository.Complaints`` concern."""

    #: What follows the statement that reads a complaint to change it (PostgreSQL: ``FOR UPDATE``).
    _FOR_UPDATE = ""

    if TYPE_CHECKING:  # given by the backend's base and its RegisterOps (elsewhere in the store's MRO)
        region: str

        async def _manual(self, work: Callable[[Any], Awaitable[T]]) -> T: ...
        async def _rows_in(self, conn: Any, sql: str, params: dict[str, Any]) -> Sequence[Row]: ...
        async def _read(self, sql: str, params: dict[str, Any]) -> Sequence[Row]: ...

    def _in_tx(self, conn: Any) -> Run:
        async def run(sql: str, params: dict[str, Any]) -> Sequence[Row]:
            return await self._rows_in(conn, sql, params)

        return run

    # -- reading whole complaints ---------------------------------------------------------------------------------

    async def _whole(self, run: Run, found: Sequence[Row]) -> list[Complaint]:
        """The complaints of ``found`` rows with their calls, action plans and attachments (three reads in all)."""
        if not found:
            return []
        params: dict[str, Any] = {}
        ids = _in("complaint_id", [int(r["id"]) for r in found], "c", params)
        calls: dict[int, list[CallRef]] = {}
        for r in await run(f"SELECT * FROM complaint_calls WHERE {ids} ORDER BY complaint_id, position", params):
            calls.setdefault(int(r["complaint_id"]), []).append(CallRef(pbx=r["pbx"], linkedid=r["linkedid"]))
        plans: dict[int, list[ActionRow]] = {}
        for r in await run(f"SELECT * FROM complaint_actions WHERE {ids} ORDER BY complaint_id, position", params):
            plans.setdefault(int(r["complaint_id"]), []).append(_action_from_row(r))
        files: dict[int, list[Attachment]] = {}
        for r in await run(f"SELECT * FROM complaint_attachments WHERE {ids} ORDER BY complaint_id, id", params):
            files.setdefault(int(r["complaint_id"]), []).append(attachment_from_row(r))
        return [complaint_from_row(r, calls.get(int(r["id"]), ()), plans.get(int(r["id"]), ()),
                                   files.get(int(r["id"]), ())) for r in found]

    async def _complaint(self, run: Run, complaint_id: int, lock: str = "") -> Complaint:
        found = await run("SELECT * FROM complaints WHERE id = :id" + lock, {"id": complaint_id})
        if not found:
            raise ComplaintNotFound(complaint_id)
        return (await self._whole(run, found))[0]

    async def get_complaint(self, complaint_id: int) -> Complaint:
        return await self._complaint(self._read, complaint_id)

    # -- writing --------------------------------------------------------------------------------------------------

    async def _number(self, conn: Any, at: float) -> str:
        """The next number of ``at``'s year (in the site's zone when the store knows it)."""
        zone = await self._rows_in(conn, "SELECT utc_offset FROM report_zone WHERE since <= :at AND until > :at",
                                   {"at": at})
        offset = int(zone[0]["utc_offset"]) if zone else 0
        year = datetime.fromtimestamp(at + offset, UTC).year
        rows = await self._rows_in(
            conn, "INSERT INTO complaint_numbers (year, last_number) VALUES (:year, 1) ON CONFLICT (year) "
            "DO UPDATE SET last_number = complaint_numbers.last_number + 1 RETURNING last_number", {"year": year})
        return f"Ж-{year}-{int(rows[0]['last_number']):04d}"

    async def _links(self, conn: Any, complaint_id: int, calls: Sequence[CallRef], plan: Sequence[ActionRow]) -> None:
        """The complaint's calls and action plan, as given (what was there before is replaced)."""
        key = {"id": complaint_id}
        await self._rows_in(conn, "DELETE FROM complaint_calls WHERE complaint_id = :id", key)
        await self._rows_in(conn, "DELETE FROM complaint_actions WHERE complaint_id = :id", key)
        for position, call in enumerate(dict.fromkeys(calls)):
            await self._rows_in(conn, "INSERT INTO complaint_calls (complaint_id, position, pbx, linkedid) "
                                "VALUES (:id, :position, :pbx, :linkedid)",
                                {**key, "position": position, "pbx": call.pbx, "linkedid": call.linkedid})
        for position, row in enumerate(plan):
            await self._rows_in(
                conn, "INSERT INTO complaint_actions (complaint_id, position, due, what, who, result, effort_hours) "
                "VALUES (:id, :position, :due, :what, :who, :result, :effort)",
                {**key, "position": position, "due": row.when, "what": row.what, "who": row.who,
                 "result": row.result, "effort": None if row.effort_hours is None else float(row.effort_hours)})

    async def _history(self, conn: Any, complaint_id: int, *, at: float, by: str, action: str,
                       details: dict[str, Any]) -> HistoryItem:
        rows = await self._rows_in(conn, _INSERT_HISTORY, {"complaint_id": complaint_id, "at": float(at), "author": by,
                                                           "action": action, "details": _details(details)})
        return history_from_row(rows[0])

    async def _mails(self, conn: Any, mails: Sequence[NewMail], at: float) -> None:
        for mail in mails:
            await insert_mail(self._rows_in, conn, mail, at)

    async def register_complaint(self, new: NewComplaint, *, at: float, stage_due_at: float | None,
                                 mails: Sequence[NewMail] | Callable[[Complaint], Sequence[NewMail]] = ()
                                 ) -> tuple[Complaint, bool]:
        _check(new)
        at = float(at)
        key = new.idempotency_key
        if key is not None:
            kept = await self._read("SELECT * FROM complaints WHERE idempotency_key = :key", {"key": key})
            if kept:
                return (await self._whole(self._read, kept))[0], False
        params: dict[str, Any] = {
            "type": new.type, "kind": new.kind, "stage": "registration", "status": "registered",
            "source": new.source, "responsible": new.responsible, "assignee": new.responsible,
            "stage_entered_at": at, "stage_due_at": _opt(stage_due_at), "created_at": at,
            "created_by": new.created_by, "updated_at": at, "revision": 1, "client_name": new.client_name,
            "client_phone": new.client_phone, "client_email": new.client_email, "contact_id": new.contact_id,
            "car": new.car, "plate": new.plate, "subject_kind": new.subject_kind, "subject": new.subject,
            "comment": new.comment, "fields": _encode({str(k): str(v) for k, v in new.fields.items()}),
            "register_contact_id": new.register_contact_id, "idempotency_key": key}

        async def work(conn: Any) -> Complaint:
            number = await self._number(conn, at)
            params["number"] = number
            params["search"] = search_text(
                (number, new.client_name, new.client_phone, new.client_email, new.car, new.plate, new.subject,
                 new.comment), new.fields, new.plate, new.client_phone, self.region)
            made = await self._rows_in(conn, _INSERT, params)
            if not made:
                raise _AlreadyFiled
            complaint_id = int(made[0]["id"])
            await self._links(conn, complaint_id, new.calls, ())
            await self._history(conn, complaint_id, at=at, by=new.created_by, action="registered",
                                details={"number": number, "type": new.type, "kind": new.kind, "source": new.source,
                                         "responsible": new.responsible})
            await self._rows_in(conn, _INSERT_TASK, {"complaint_id": complaint_id, "stage": "registration",
                                                     "assignee": new.responsible, "at": at,
                                                     "due_at": _opt(stage_due_at)})
            filed = await self._complaint(self._in_tx(conn), complaint_id)
            # The registration e-mails quote the complaint's number, which exists only now: rendered here, they are
            # written in the same transaction as the complaint (a crash loses neither without the other).
            await self._mails(conn, mails(filed) if callable(mails) else mails, at)
            return filed

        try:
            return await self._manual(work), True
        except _AlreadyFiled:  # another request with the key committed first (its transaction is the one kept)
            kept = await self._read("SELECT * FROM complaints WHERE idempotency_key = :key", {"key": key})
            return (await self._whole(self._read, kept))[0], False

    async def commit_complaint(self, change: ComplaintChange) -> Complaint:
        c = change.complaint
        _check(c)
        at = float(change.at)
        params: dict[str, Any] = {column: getattr(c, column) for column in _MUTABLE if column not in (
            "fields", "search")}
        params.update(
            id=c.id, revision=c.revision, at=at, fields=_encode({str(k): str(v) for k, v in c.fields.items()}),
            stage_entered_at=float(c.stage_entered_at), stage_due_at=_opt(c.stage_due_at), closed_at=_opt(c.closed_at),
            search=search_text((c.number, c.client_name, c.client_phone, c.client_email, c.car, c.plate, c.subject,
                                c.comment), c.fields, c.plate, c.client_phone, self.region))
        opens = change.open_task

        async def work(conn: Any) -> Complaint:
            run = self._in_tx(conn)
            now = await self._complaint(run, c.id, self._FOR_UPDATE)
            if now.revision != c.revision:
                raise ComplaintChanged(now)
            if not await self._rows_in(conn, _UPDATE, params):
                raise ComplaintChanged(await self._complaint(run, c.id))
            await self._links(conn, c.id, c.calls, c.action_plan)
            for action, details in change.history:
                await self._history(conn, c.id, at=at, by=change.by, action=action, details=details)
            if opens is not None or c.stage == "closed":
                # Left because the complaint moved on: done; its stage handed to someone else: cancelled.
                await self._rows_in(
                    conn, "UPDATE complaint_tasks SET state = CASE WHEN stage = :stage THEN 'cancelled' ELSE 'done' "
                    "END, done_at = :at WHERE complaint_id = :id AND state = 'open'",
                    {"id": c.id, "at": at, "stage": opens.stage if opens is not None else "closed"})
            if opens is not None:
                _one_of(opens.stage, STAGES, "stage", f"complaint #{c.id}'s task")
                await self._rows_in(conn, _INSERT_TASK, {"complaint_id": c.id, "stage": opens.stage,
                                                         "assignee": opens.assignee, "at": at,
                                                         "due_at": _opt(opens.due_at)})
            await self._mails(conn, change.mails, at)
            return await self._complaint(run, c.id)

        return await self._manual(work)

    async def add_complaint_note(self, complaint_id: int, *, action: str, details: dict[str, Any], by: str,
                                 at: float, mails: Sequence[NewMail] = ()) -> HistoryItem:
        text = _details(details)  # not JSON: refused before the transaction

        async def work(conn: Any) -> HistoryItem:
            if not await self._rows_in(conn, "SELECT id FROM complaints WHERE id = :id", {"id": complaint_id}):
                raise ComplaintNotFound(complaint_id)
            rows = await self._rows_in(conn, _INSERT_HISTORY, {"complaint_id": complaint_id, "at": float(at),
                                                               "author": by, "action": action, "details": text})
            await self._mails(conn, mails, float(at))
            return history_from_row(rows[0])

        return await self._manual(work)

    # -- the list ----------------------------------------------------------------------------------------------------

    def _where(self, flt: ComplaintFilter, params: dict[str, Any]) -> str:
        where: list[str] = []
        if flt.statuses:
            where.append(_in("status", flt.statuses, "status", params))
        if flt.stages:
            where.append(_in("stage", flt.stages, "stage", params))
        if flt.types:
            where.append(_in("type", flt.types, "type", params))
        if flt.responsible is not None:
            params["responsible"] = flt.responsible
            where.append("lower(responsible) = lower(:responsible)")
        if flt.assignee is not None:
            params["assignee"] = flt.assignee
            where.append("lower(assignee) = lower(:assignee)")
        if flt.overdue_at is not None:
            params["overdue_at"] = float(flt.overdue_at)
            where.append("stage <> 'closed' AND stage_due_at < :overdue_at")
        if flt.since is not None:
            params["since"] = float(flt.since)
            where.append("created_at >= :since")
        if flt.until is not None:
            params["until"] = float(flt.until)
            where.append("created_at < :until")
        text = (flt.text or "").strip()
        if text:
            forms = [text.casefold()]
            plate = clean_plate(text)
            if plate.isalnum() and any(c.isdigit() for c in plate):
                forms.append(plate.casefold())
            number = normalize_number(text, self.region) if _PHONE_LIKE.fullmatch(text) else None
            if number:
                forms.append(number)
            alternatives = []
            for i, form in enumerate(dict.fromkeys(forms)):
                params[f"text{i}"] = _like(form)
                alternatives.append(f"search LIKE :text{i} ESCAPE '\\'")
            where.append("(" + " OR ".join(alternatives) + ")")
        return " WHERE " + " AND ".join(where) if where else ""

    async def list_complaints(self, flt: ComplaintFilter) -> list[Complaint]:
        params: dict[str, Any] = {"limit": max(0, min(int(flt.limit), MAX_LIST)), "offset": max(0, int(flt.offset))}
        sql = (f"SELECT * FROM complaints{self._where(flt, params)} ORDER BY created_at DESC, id DESC "
               "LIMIT :limit OFFSET :offset")
        return await self._whole(self._read, await self._read(sql, params))

    async def count_complaints(self, flt: ComplaintFilter) -> int:
        params: dict[str, Any] = {}
        rows = await self._read(f"SELECT count(*) AS n FROM complaints{self._where(flt, params)}", params)
        return int(rows[0]["n"])

    async def complaint_history(self, complaint_id: int) -> list[HistoryItem]:
        rows = await self._read("SELECT * FROM complaint_history WHERE complaint_id = :id ORDER BY at, id",
                                {"id": complaint_id})
        return [history_from_row(r) for r in rows]

    # -- tasks -------------------------------------------------------------------------------------------------------

    async def complaint_tasks(self, *, assignee: str | None = None, complaint_id: int | None = None,
                              open_only: bool = True) -> list[Task]:
        params: dict[str, Any] = {}
        where: list[str] = []
        if open_only:
            where.append("state = 'open'")
        if assignee is not None:
            params["assignee"] = assignee
            where.append("lower(assignee) = lower(:assignee)")
        if complaint_id is not None:
            params["complaint_id"] = complaint_id
            where.append("complaint_id = :complaint_id")
        sql = "SELECT * FROM complaint_tasks" + (" WHERE " + " AND ".join(where) if where else "") + _TASK_ORDER
        return [task_from_row(r) for r in await self._read(sql, params)]

    async def overdue_tasks(self, now: float) -> list[Task]:
        rows = await self._read("SELECT * FROM complaint_tasks WHERE state = 'open' AND escalated_at IS NULL "
                                "AND due_at < :now" + _TASK_ORDER, {"now": float(now)})
        return [task_from_row(r) for r in rows]

    async def escalate_task(self, task_id: int, *, at: float, mails: Sequence[NewMail] = ()) -> Task | None:
        async def work(conn: Any) -> Task | None:
            rows = await self._rows_in(
                conn, "UPDATE complaint_tasks SET escalated_at = :at WHERE id = :id AND state = 'open' "
                "AND escalated_at IS NULL RETURNING *", {"id": task_id, "at": float(at)})
            if not rows:
                if not await self._rows_in(conn, "SELECT id FROM complaint_tasks WHERE id = :id", {"id": task_id}):
                    raise ComplaintNotFound(task_id)
                return None  # escalated already (another node), or no longer open
            task = task_from_row(rows[0])
            await self._history(conn, task.complaint_id, at=float(at), by=SYSTEM, action="escalated",
                                details={"task_id": task.id, "stage": task.stage, "assignee": task.assignee,
                                         "due_at": task.due_at})
            await self._mails(conn, mails, float(at))
            return task

        return await self._manual(work)

    # -- attachments ---------------------------------------------------------------------------------------------

    async def add_attachment(self, complaint_id: int, *, file_name: str, content_type: str, size: int,
                             stored_as: str, by: str, at: float) -> Attachment:
        if size < 0 or not stored_as or "/" in stored_as or "\\" in stored_as or stored_as.startswith("."):
            raise ValueError("an attachment has a size and is stored under a plain name of the server's")

        async def work(conn: Any) -> Attachment:
            if not await self._rows_in(conn, "SELECT id FROM complaints WHERE id = :id", {"id": complaint_id}):
                raise ComplaintNotFound(complaint_id)
            rows = await self._rows_in(
                conn, "INSERT INTO complaint_attachments (complaint_id, file_name, content_type, size, stored_as, "
                "author, at) VALUES (:complaint_id, :file_name, :content_type, :size, :stored_as, :by, :at) "
                "RETURNING *", {"complaint_id": complaint_id, "file_name": file_name, "content_type": content_type,
                                "size": int(size), "stored_as": stored_as, "by": by, "at": float(at)})
            made = attachment_from_row(rows[0])
            await self._history(conn, complaint_id, at=float(at), by=by, action="attached",
                                details={"attachment_id": made.id, "file_name": file_name, "size": int(size)})
            return made

        return await self._manual(work)

    async def get_attachment(self, attachment_id: int) -> Attachment:
        rows = await self._read("SELECT * FROM complaint_attachments WHERE id = :id", {"id": attachment_id})
        if not rows:
            raise ComplaintNotFound(attachment_id)
        return attachment_from_row(rows[0])
