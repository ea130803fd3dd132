"""Call-back reminders on both stores (``store.repository.Reminders``): one module, as ``register_claims.py``.

Why one module: the statements are the same on SQLite and PostgreSQL (named parameters, which the PostgreSQL store
numbers: ``store/postgres/params.py``; ``ON CONFLICT ... DO NOTHING``, ``RETURNING``), and so is every decision (the
closing rule is ``cti/reminders.py``'s: this module only applies it). Each backend's store mixes
:class:`ReminderOps` in; it runs its statements through the backend's ``_manual`` transactions, ``_rows_in`` and
``_read`` (their ``RegisterOps``).

**Once, on one node.** The ticker of every node asks ``due_reminders`` and ``escalate_reminders`` every few
seconds. Each is one ``UPDATE ... WHERE <time> IS NULL ... RETURNING``: on PostgreSQL a second node's statement
waits for the first one's row locks, then finds the time set and skips the row; on SQLite one writer runs at a
time. So each reminder is pushed as due once and escalated once, whichever node finds it first. A read comes
first, so a quiet table never takes the write lock.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Collection, Sequence
from typing import TYPE_CHECKING, Any, TypeVar, cast

from cti.reminders import (
    CLOSED_HOWS,
    REMINDER_STATUSES,
    ClosedHow,
    NewReminder,
    Reminder,
    ReminderCall,
    ReminderStatus,
    closes,
)
from store.listing import pbx_condition, pbx_set
from store.repository import ReminderClosed, ReminderNotFound

T = TypeVar("T")
#: A row as either driver gives it (``sqlite3.Row``, ``asyncpg.Record``): read by column name.
Row = Any

_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode
_COLUMNS = ("pbx", "employee", "employee_name", "extension", "user_name", "number", "number_key", "contact_id",
            "client_name", "card", "note", "due_at", "created_at", "created_by", "run_id", "linkedid")
_INSERT = (f"INSERT INTO reminders ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)}) "
           "ON CONFLICT (run_id, employee, due_at) WHERE run_id IS NOT NULL DO NOTHING RETURNING *")
_OF_RUN = "SELECT * FROM reminders WHERE run_id = :run_id AND employee = :employee AND due_at = :due_at"


def reminder_from_row(row: Row) -> Reminder:
    """A ``reminders`` row (either driver's) as the store's :class:`~cti.reminders.Reminder`."""
    status, how = row["status"], row["closed_how"]
    if status not in REMINDER_STATUSES or (how is not None and how not in CLOSED_HOWS):
        raise ValueError(f"reminder #{row['id']}: unknown status {status!r} or closing {how!r}")
    card = json.loads(row["card"]) if row["card"] else None

    def opt(name: str) -> float | None:
        value = row[name]
        return float(value) if value is not None else None

    return Reminder(
        id=int(row["id"]), pbx=row["pbx"], employee=row["employee"], employee_name=row["employee_name"],
        extension=row["extension"], number=row["number"], number_key=row["number_key"],
        due_at=float(row["due_at"]), created_at=float(row["created_at"]), user_name=row["user_name"],
        contact_id=int(row["contact_id"]) if row["contact_id"] is not None else None,
        client_name=row["client_name"], card=card if isinstance(card, dict) else None, note=row["note"],
        created_by=row["created_by"], run_id=int(row["run_id"]) if row["run_id"] is not None else None,
        linkedid=row["linkedid"], status=cast(ReminderStatus, status), closed_how=cast("ClosedHow | None", how),
        closed_at=opt("closed_at"), closed_by=row["closed_by"], closed_linkedid=row["closed_linkedid"],
        comment=row["comment"], notified_at=opt("notified_at"), escalated_at=opt("escalated_at"))


def _ids(ids: Sequence[int], params: dict[str, Any]) -> str:
    names = []
    for i, reminder_id in enumerate(ids):
        params[f"id{i}"] = reminder_id
        names.append(f":id{i}")
    return f"id IN ({', '.join(names)})" if names else "1 = 0"


def _by_due(rows: Sequence[Row]) -> list[Reminder]:
    return sorted((reminder_from_row(r) for r in rows), key=lambda r: (r.due_at, r.id))


class ReminderOps:
    """``add_reminder`` ... ``escalate_reminders``: the ``store.repository.Reminders`` concern."""

    if TYPE_CHECKING:  # given by the backend's base and its RegisterOps (elsewhere in the store's MRO)
        async def _manual(self, work: Callable[[Any], Awaitable[T]]) -> T: ...
        async def _rows_in(self, conn: Any, sql: str, params: dict[str, Any]) -> Sequence[Row]: ...
        async def _read(self, sql: str, params: dict[str, Any]) -> Sequence[Row]: ...

    async def add_reminder(self, reminder: NewReminder) -> tuple[Reminder, bool]:
        params: dict[str, Any] = {c: getattr(reminder, c) for c in _COLUMNS}
        params["card"] = _encode(dict(reminder.card)) if reminder.card is not None else None
        params["due_at"], params["created_at"] = float(reminder.due_at), float(reminder.created_at)

        async def work(conn: Any) -> tuple[Reminder, bool]:
            made = await self._rows_in(conn, _INSERT, params)
            if made:
                return reminder_from_row(made[0]), True
            kept = await self._rows_in(conn, _OF_RUN, {"run_id": reminder.run_id, "employee": reminder.employee,
                                                       "due_at": params["due_at"]})
            return reminder_from_row(kept[0]), False

        return await self._manual(work)

    async def get_reminder(self, reminder_id: int) -> Reminder:
        rows = await self._read("SELECT * FROM reminders WHERE id = :id", {"id": reminder_id})
        if not rows:
            raise ReminderNotFound(reminder_id)
        return reminder_from_row(rows[0])

    async def list_reminders(self, *, pbxs: Collection[str] | None = None, extension: str | None = None,
                             user_name: str | None = None, open_only: bool = True, escalated: bool | None = None,
                             limit: int = 200) -> list[Reminder]:
        params: dict[str, Any] = {"limit": limit}
        where: list[str] = []
        if open_only:
            where.append("status = 'open'")
        chosen = pbx_set(pbxs)
        if chosen is not None:
            where.append(pbx_condition("pbx", chosen, params))
        mine = []
        if extension is not None:
            mine.append("extension = :extension")
            params["extension"] = extension
        if user_name is not None:
            mine.append("lower(user_name) = lower(:user_name)")
            params["user_name"] = user_name
        if mine:
            where.append("(" + " OR ".join(mine) + ")")
        if escalated is not None:
            where.append("escalated_at IS NOT NULL" if escalated else "escalated_at IS NULL")
        sql = "SELECT * FROM reminders"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY due_at, id LIMIT :limit"
        return [reminder_from_row(r) for r in await self._read(sql, params)]

    async def close_reminder(self, reminder_id: int, *, by: str, comment: str | None, cancelled: bool = False,
                             at: float) -> Reminder:
        async def work(conn: Any) -> Reminder:
            rows = await self._rows_in(
                conn, "UPDATE reminders SET status = :status, closed_how = 'hand', closed_at = :at, closed_by = :by, "
                "comment = :comment WHERE id = :id AND status = 'open' RETURNING *",
                {"status": "cancelled" if cancelled else "done", "at": float(at), "by": by, "comment": comment,
                 "id": reminder_id})
            if rows:
                return reminder_from_row(rows[0])
            found = await self._rows_in(conn, "SELECT * FROM reminders WHERE id = :id", {"id": reminder_id})
            if not found:
                raise ReminderNotFound(reminder_id)
            raise ReminderClosed(reminder_from_row(found[0]))

        return await self._manual(work)

    async def close_reminders_by_call(self, call: ReminderCall) -> list[Reminder]:
        candidates = {"pbx": call.pbx, "key": call.number_key}
        sql = "SELECT * FROM reminders WHERE pbx = :pbx AND number_key = :key AND status = 'open'"
        # A read first: most calls reach a number nobody is to call back, and never take the write lock.
        if not any(closes(call, r) for r in map(reminder_from_row, await self._read(sql, candidates))):
            return []

        async def work(conn: Any) -> list[Reminder]:
            open_now = [reminder_from_row(r) for r in await self._rows_in(conn, sql, candidates)]
            ids = [r.id for r in open_now if closes(call, r)]
            params: dict[str, Any] = {"at": float(call.at), "linkedid": call.linkedid}
            rows = await self._rows_in(
                conn, "UPDATE reminders SET status = 'done', closed_how = 'call', closed_at = :at, closed_by = 'call', "
                f"closed_linkedid = :linkedid WHERE {_ids(ids, params)} AND status = 'open' RETURNING *", params)
            return _by_due(rows)

        return await self._manual(work)

    async def due_reminders(self, now: float) -> list[Reminder]:
        params = {"now": float(now)}
        if not await self._read("SELECT 1 FROM reminders WHERE status = 'open' AND due_at <= :now "
                                "AND notified_at IS NULL LIMIT 1", params):
            return []

        async def work(conn: Any) -> list[Reminder]:
            return _by_due(await self._rows_in(
                conn, "UPDATE reminders SET notified_at = :now WHERE status = 'open' AND due_at <= :now "
                "AND notified_at IS NULL RETURNING *", params))

        return await self._manual(work)

    async def escalate_reminders(self, now: float, after: float) -> list[Reminder]:
        params = {"now": float(now), "before": float(now) - float(after)}
        if not await self._read("SELECT 1 FROM reminders WHERE status = 'open' AND due_at <= :before "
                                "AND escalated_at IS NULL LIMIT 1", params):
            return []

        async def work(conn: Any) -> list[Reminder]:
            return _by_due(await self._rows_in(
                conn, "UPDATE reminders SET escalated_at = :now WHERE status = 'open' AND due_at <= :before "
                "AND escalated_at IS NULL RETURNING *", params))

        return await self._manual(work)
