"""The contact register as both stores keep it: a row <-> :class:`cti.contacts_register.RegisteredContact`, the
row a finished run makes, and the listing's query.

Shared by ``store/sqlite/contact_register.py`` and ``store/postgres/contact_register.py``: the tables are the same
(SQLite's 0010, PostgreSQL's 0005), the queries use named parameters (``:since``; the PostgreSQL store numbers them),
and only two things differ: the route is a JSON list of text on SQLite and a ``text[]`` on PostgreSQL, and how "no
limit" is written (``store.listing.Dialect``). The answers and times are JSON text on both.

The listing's order is (``at``, ``id``). Every filter has an index that starts with its column and ends with that
order (a stage: a partial index of the contacts with the flag), so a page is read in order off an index and stops at
the page's end: ``tests/store/test_contact_register_plans.py`` reads the plans.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol, cast

from cti.contacts_register import ContactFilter, ContactKey, LinkedCall, RegisteredContact, StageMark, new_client_card
from cti.directory import CONTACT_KINDS, Contact, ContactKind, is_repeat
from cti.phones import normalize_number
from cti.scripts.model import CHANNELS, STAGES, Channel, Employee, JsonObject
from cti.scripts.runner import ContactDraft, StepTime
from store.listing import Dialect, pbx_condition, pbx_set
from store.repository import DEFAULT_PAGE_SIZE, RegisteredContactNotFound
from store.shared_base import keyset

_encode = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode

#: The columns a new contact's row fills, in the INSERT's order.
COLUMNS: tuple[str, ...] = (
    "run_key", "at", "finished_at", "channel", "pbx", "agent", "client_id", "vehicle_id", "client_name",
    "client_phone", "client_kind", "client_new", "is_repeat", "reason", "route", "answers", "times", "employee",
    "employee_name", "employee_extension", "transfer_answered", "workshop", "earlier_call", "earlier_contact",
    "script", "version", "label", "note", "saved_at", "request_at", "request_by", "request_external_id",
    "booking_at", "booking_by", "booking_external_id", "visit_at", "visit_by", "visit_external_id",
)


@dataclass(frozen=True, slots=True)
class Client:
    """The client of a contact as it is registered: the directory's card (found or created) and what it says."""

    id: int | None = None
    vehicle_id: int | None = None
    name: str | None = None
    phone: str | None = None
    kind: ContactKind | None = None
    new: bool = False


def insert_sql(mark: str) -> str:
    """The INSERT of a new contact, each value's placeholder written by ``mark.format(n=...)`` (``?`` or ``${n}``)."""
    marks = ", ".join(mark.format(n=i) for i in range(1, len(COLUMNS) + 1))
    return f"INSERT INTO contact_register ({', '.join(COLUMNS)}) VALUES ({marks})"


def new_row(draft: ContactDraft, *, key: str, client: Client, repeat: bool, workshop: str | None,
            stages: Sequence[StageMark], saved_at: float, route_as_json: bool) -> tuple[Any, ...]:
    """The values of :data:`COLUMNS` for a finished run (``route_as_json``: SQLite's JSON text, else a list)."""
    employee = draft.employee
    marks = {m.stage: m for m in stages}
    route: Any = _encode(list(draft.route)) if route_as_json else list(draft.route)
    values: dict[str, Any] = {
        "run_key": key, "at": draft.started_at, "finished_at": draft.finished_at, "channel": draft.channel,
        "pbx": draft.pbx, "agent": draft.agent, "client_id": client.id, "vehicle_id": client.vehicle_id,
        "client_name": client.name, "client_phone": client.phone, "client_kind": client.kind,
        "client_new": client.new, "is_repeat": repeat, "reason": draft.reason, "route": route,
        "answers": _encode({step: dict(answer) for step, answer in draft.answers.items()}),
        "times": _encode([[t.step, t.entered_at, t.left_at] for t in draft.times]),
        "employee": employee.id if employee else None, "employee_name": employee.name if employee else None,
        "employee_extension": employee.extension if employee else None,
        "transfer_answered": draft.transfer_answered, "workshop": workshop, "earlier_call": draft.earlier_call,
        "earlier_contact": draft.earlier_contact, "script": draft.script, "version": draft.version,
        "label": draft.label, "note": draft.note, "saved_at": saved_at,
    }
    for stage in STAGES:
        mark = marks.get(stage)
        values[f"{stage}_at"] = mark.at if mark else None
        values[f"{stage}_by"] = mark.by if mark else None
        values[f"{stage}_external_id"] = mark.external_id if mark else None
    return tuple(values[c] for c in COLUMNS)


def contact_from_row(row: Any, calls: Iterable[LinkedCall] = ()) -> RegisteredContact:
    """A ``contact_register`` row (a ``sqlite3.Row`` or an ``asyncpg.Record``: both read by column name) with its
    linked calls."""
    route = row["route"]
    steps = json.loads(route) if isinstance(route, str) else list(route or [])
    answers = json.loads(row["answers"] or "{}")
    times = tuple(StepTime(str(s), float(a), float(b)) for s, a, b in json.loads(row["times"] or "[]"))
    employee = (Employee(row["employee"], row["employee_name"] or row["employee"], row["employee_extension"])
                if row["employee"] is not None else None)
    stages = tuple(StageMark(s, row[f"{s}_at"], row[f"{s}_by"] or "?", row[f"{s}_external_id"])
                   for s in STAGES if row[f"{s}_at"] is not None)
    channel, kind = row["channel"], row["client_kind"]
    if channel not in CHANNELS or (kind is not None and kind not in CONTACT_KINDS):
        raise ValueError(f"registered contact #{row['id']}: unknown channel {channel!r} or client type {kind!r}")
    answered = row["transfer_answered"]
    return RegisteredContact(
        id=int(row["id"]), at=row["at"], finished_at=row["finished_at"], channel=cast(Channel, channel),
        script=row["script"], version=row["version"], saved_at=row["saved_at"], label=row["label"], pbx=row["pbx"],
        agent=row["agent"], client_id=row["client_id"], vehicle_id=row["vehicle_id"], client_name=row["client_name"],
        client_phone=row["client_phone"], client_kind=cast(ContactKind | None, kind),
        client_new=bool(row["client_new"]), repeat=bool(row["is_repeat"]), reason=row["reason"],
        route=tuple(str(s) for s in steps),
        answers={str(k): cast(JsonObject, v) for k, v in answers.items()} if isinstance(answers, dict) else {},
        times=times, employee=employee, transfer_answered=None if answered is None else bool(answered),
        workshop=row["workshop"], earlier_call=row["earlier_call"], earlier_contact=row["earlier_contact"],
        note=row["note"], calls=tuple(calls), stages=stages,
    )


def calls_by_contact(rows: Iterable[Any]) -> dict[int, list[LinkedCall]]:
    """The rows of :data:`CALLS_OF` (contact_id, pbx, linkedid, recording) grouped by contact, in their order."""
    out: dict[int, list[LinkedCall]] = {}
    for row in rows:
        out.setdefault(int(row["contact_id"]), []).append(LinkedCall(row["pbx"], row["linkedid"], row["recording"]))
    return out


#: The linked calls of some contacts with the journal's recording (append the contacts' condition on ``cc``).
CALLS_OF = ("SELECT cc.contact_id, cc.pbx, cc.linkedid, c.recording FROM contact_calls cc "
            "LEFT JOIN calls c ON c.linkedid = cc.linkedid AND c.pbx = cc.pbx WHERE ")
CALLS_ORDER = " ORDER BY cc.contact_id, cc.linkedid, cc.pbx"


def listing_query(dialect: Dialect, where: ContactFilter, *, after: ContactKey | None = None,
                  limit: int | None = None, newest_first: bool = False) -> tuple[str, dict[str, Any]]:
    """One page of the register in its order after ``after``, with named parameters.

    The conditions are written as the indexes are: an equality on the filter's column, the time range and the keyset
    bound on (``at``, ``id``), and a stage as ``<stage>_at IS NOT NULL`` (the partial index's own condition, which
    SQLite needs word for word to use it)."""
    clauses: list[str] = []
    params: dict[str, Any] = {"limit": dialect.limit(limit)}
    since, until = where.since, where.until
    if after is not None:  # the keyset bound already starts beyond the range's own start (end): seek to it alone
        if not newest_first and since is not None and after.at >= since:
            since = None
        if newest_first and until is not None and after.at < until:
            until = None
    if since is not None:
        clauses.append("at >= :since")
        params["since"] = dialect.bound(since)
    if until is not None:
        clauses.append("at < :until")
        params["until"] = dialect.bound(until)
    for column, value in (("reason", where.reason), ("channel", where.channel), ("client_kind", where.client_kind),
                          ("agent", where.agent), ("employee", where.employee)):
        if value is not None:
            clauses.append(f"{column} = :{column}")
            params[column] = value
    if where.stage is not None:
        clauses.append(f"{where.stage}_at IS NOT NULL")
    chosen = pbx_set(where.pbxs)
    if chosen is not None:
        # One PBX seeks its index (pbx, at, id); several would be read from it in several runs and sorted whole, so
        # their condition is written so that no index takes it: the page is read off the order's index, each row's
        # PBX checked (a user of two PBXs of three skips a third of the rows, never sorts them all).
        clauses.append(pbx_condition("pbx" if len(chosen) == 1 else "coalesce(pbx, '')", chosen, params))
    sign, order = ("<", "DESC") if newest_first else (">", "ASC")
    if after is not None:
        clauses.append(f"(at, id) {sign} (:after_at, :after_id)")
        params["after_at"], params["after_id"] = dialect.bound(after.at), after.id
    sql = "SELECT * FROM contact_register" + (" WHERE " + " AND ".join(clauses) if clauses else "")
    return sql + f" ORDER BY at {order}, id {order} LIMIT :limit", params


# -- what a run's contact is, read inside the saving transaction ------------------------------------------------------


class Tx(Protocol):
    """What :func:`client_and_repeat` needs of a backend's transaction: one row of a query with named parameters,
    and the directory's own create-contact code (``store/sqlite_directory.py``, ``store/postgres/directory.py``)."""

    async def rows(self, sql: str, params: dict[str, Any]) -> list[Any]: ...

    async def add_card(self, card: Contact) -> int: ...


async def client_and_repeat(tx: Tx, draft: ContactDraft, *, caller: str | None, repeat_days: float,
                            region: str) -> tuple[Client, bool]:
    """The contact's client (a new one created in the directory with its car) and whether it is a repeat contact."""
    keys: set[str] = set()
    if draft.new_client is not None:
        card = new_client_card(draft.new_client)
        client_id = await tx.add_card(card)
        car = await _one(tx, "SELECT id FROM vehicles WHERE contact_id = :id ORDER BY id LIMIT 1", {"id": client_id})
        client = Client(client_id, int(car["id"]) if car is not None else None, card.name,
                        draft.new_client.phone, draft.new_client.kind, new=True)
        keys.update(k for k in (normalize_number(p, region) for p in card.phones) if k)
    elif draft.contact_id is not None:
        client = await _known_client(tx, draft.contact_id, draft.vehicle_id)
        if client.id is not None:
            numbers = await tx.rows("SELECT number_key FROM contact_phones WHERE contact_id = :id",
                                    {"id": client.id})
            keys.update(str(n["number_key"]) for n in numbers)
    else:
        client = Client()
    if caller:
        key = normalize_number(caller, region)
        if key:
            keys.add(key)
    earlier: list[float] = []
    start = draft.started_at - repeat_days * 86400
    window = {"at": float(draft.started_at), "start": float(start)}
    if client.id is not None and not client.new:
        found = await _one(tx, "SELECT at FROM contact_register WHERE client_id = :id AND at < :at AND at >= :start "
                             "ORDER BY at DESC LIMIT 1", {"id": client.id, **window})
        if found is not None:
            earlier.append(float(found["at"]))
    for key in sorted(keys):
        for side in ("caller_key", "called_key"):
            found = await _one(tx,
                f"SELECT started_at FROM calls WHERE {side} = :key AND started_at < :at AND started_at >= :start "
                "AND NOT (linkedid = :linkedid AND pbx = :pbx) ORDER BY started_at DESC LIMIT 1",
                {"key": key, "linkedid": draft.linkedid or "", "pbx": draft.pbx or "", **window})
            if found is not None:
                earlier.append(float(found["started_at"]))
    return client, is_repeat(earlier, draft.started_at, repeat_days)


async def _one(tx: Tx, sql: str, params: dict[str, Any]) -> Any | None:
    found = await tx.rows(sql, params)
    return found[0] if found else None


async def _known_client(tx: Tx, contact_id: int, vehicle_id: int | None) -> Client:
    """The directory's card of a client found by the agent, as it is now (deleted meanwhile: no client)."""
    row = await _one(tx, "SELECT id, name, kind, phones_json FROM contacts WHERE id = :id", {"id": contact_id})
    if row is None:
        return Client()
    phones = json.loads(row["phones_json"] or "[]")
    car = None
    if vehicle_id is not None:
        car = await _one(tx, "SELECT id FROM vehicles WHERE id = :id", {"id": vehicle_id})
    kind = row["kind"]
    return Client(int(row["id"]), int(car["id"]) if car is not None else None, row["name"],
                  str(phones[0]) if phones else None, cast(ContactKind, kind) if kind in CONTACT_KINDS else None)


class RegisterReads:
    """The register's reads, the same on both backends but for the dialect: a backend mixes this in and gives
    ``_contacts(sql, params)`` (the rows with their calls, on its reader lane)."""

    _dialect: ClassVar[Dialect]

    async def _contacts(self, sql: str, params: dict[str, Any]) -> list[RegisteredContact]:
        raise NotImplementedError

    async def get_registered_contact(self, contact_id: int) -> RegisteredContact:
        found = await self._contacts("SELECT * FROM contact_register WHERE id = :id", {"id": contact_id})
        if not found:
            raise RegisteredContactNotFound(contact_id)
        return found[0]

    async def list_registered_contacts(self, where: ContactFilter | None = None, *, after: ContactKey | None = None,
                                       limit: int | None = 100, newest_first: bool = False
                                       ) -> list[RegisteredContact]:
        sql, params = listing_query(self._dialect, where or ContactFilter(), after=after, limit=limit,
                                    newest_first=newest_first)
        return await self._contacts(sql, params)

    async def iter_registered_contacts(self, where: ContactFilter | None = None, *, limit: int | None = None,
                                       page_size: int = DEFAULT_PAGE_SIZE) -> AsyncIterator[RegisteredContact]:
        chosen = where or ContactFilter()

        def page(last: RegisteredContact | None, n: int) -> tuple[str, dict[str, Any]]:
            return listing_query(self._dialect, chosen, after=ContactKey.of(last) if last else None, limit=n)

        async def select(sql: str, params: dict[str, Any], n: int) -> list[RegisteredContact]:
            return await self._contacts(sql, params)

        async for contact in keyset(select, page, limit, page_size):
            yield contact
