"""The durable CRM outbox on both stores (``store.repository.CrmOutbox``): one module, as ``outbox.py`` for mail.

Why an outbox: a CRM is an output that may be down; the push (``companion/crm/push.py``) writes each request with
its call's planner state in one transaction before anything is sent, and the sender (``companion/crm/sender.py``)
sends them later, in order per call, retried with back-off, given up after a while. Nothing is lost across a
restart; an item in flight when the daemon died is sent again (each connector makes that repeat harmless).

The statements are the same on SQLite and PostgreSQL (named parameters, numbered by the PostgreSQL store;
``ON CONFLICT``, ``RETURNING``). What differs is the lock of the statement that picks the next requests
(:attr:`CrmOutboxOps._CRM_LOCK_NEXT`: PostgreSQL's ``FOR UPDATE SKIP LOCKED``, so two nodes taking at once get different
requests) and of the read of a call's answers before they are merged (:attr:`CrmOutboxOps._CRM_FOR_UPDATE`); the
PostgreSQL subclass is ``store/postgres/crm_outbox.py``.

**In order per call, calls in parallel.** A call's requests carry ``seq`` 1, 2, ... (the call's ``crm_calls.last_seq``
bumped by the upsert that also writes the planner state: one statement, so two callers queueing for one call at
once get different places; ``(call, crm, seq)`` is unique besides). Exactly one row per call with pending requests
has ``head = 1``: its pending request of the lowest ``seq``. ``take_crm`` hands out heads only, so never two
requests of one call, and a request whose predecessor is leased or backing off is not even read: the due requests
are one range of the index ``(crm, next_try_at, id) WHERE head = 1``, however long the queue behind them. The head
moves on (:data:`_PROMOTE`) in the transaction that takes a request out of the pending set (sent, given up) or
appends to it, after that transaction has locked the call's ``crm_calls`` row: two nodes changing one call's
requests at once take turns, and the second sees the first's rows.

**Hostile input.** A CRM is one of ``cti.crm.CRM_NAMES``; a call key and a value's name are 1..200 characters with
no NUL; payloads, states, answers and values are JSON objects (``ValueError`` otherwise, before any transaction),
written with sorted keys, so the same object is always the same text (``put_crm_value``'s ``expect`` compares the
text). An error kept is cut to :data:`MAX_ERROR` characters, without NULs or unpaired surrogates.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast

from cti.crm import CRM_NAMES, CrmItem, CrmName, CrmRequest, CrmStatus
from store.repository import CrmItemNotFound

T = TypeVar("T")
#: A row as either driver gives it (``sqlite3.Row``, ``asyncpg.Record``): read by column name.
Row = Any

#: The longest error kept with a failed try (a CRM's answer, a traceback's last line).
MAX_ERROR = 2000
#: The longest call key and value name accepted.
MAX_KEY = 200
#: The longest request kind accepted (a CRM's method name).
MAX_KIND = 100

_PENDING = "sent_at IS NULL AND failed_at IS NULL"
_STATES = {"pending": _PENDING, "sent": "sent_at IS NOT NULL", "failed": "failed_at IS NOT NULL"}

_UPSERT_CALL = (
    "INSERT INTO crm_calls (crm, call, state, answers, last_seq, updated_at) "
    "VALUES (:crm, :call, :state, '{}', :n, :at) "
    "ON CONFLICT (crm, call) DO UPDATE SET state = COALESCE(excluded.state, crm_calls.state), "
    "last_seq = crm_calls.last_seq + excluded.last_seq, updated_at = excluded.updated_at RETURNING last_seq")
_INSERT = ("INSERT INTO crm_outbox (crm, call, seq, kind, payload, created_at, next_try_at) "
           "VALUES (:crm, :call, :seq, :kind, :payload, :at, :at) RETURNING *")
#: The call's pending request of the lowest ``seq`` becomes its head (nothing when it is already, or none is left).
_PROMOTE = (
    "UPDATE crm_outbox SET head = 1 WHERE head = 0 AND id = (SELECT id FROM crm_outbox "
    f"WHERE call = :call AND crm = :crm AND {_PENDING} ORDER BY seq LIMIT 1)")
#: Locks the call's row (the head's turn-taking: the module's docstring).
_TOUCH_CALL = "UPDATE crm_calls SET updated_at = :at WHERE crm = :crm AND call = :call"
_DUE = "SELECT id FROM crm_outbox WHERE crm = :crm AND head = 1 AND next_try_at <= :now"

_canonical = json.JSONEncoder(ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False).encode
_ascii = json.JSONEncoder(ensure_ascii=True, sort_keys=True, separators=(",", ":"), allow_nan=False).encode


def encode_object(value: Any, what: str) -> str:
    """``value`` (a JSON object) as the text the tables keep: keys sorted, so equal objects are equal text; a string
    with an unpaired surrogate (which UTF-8 cannot carry) is kept escaped. ``ValueError`` for anything else."""
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a JSON object, not {type(value).__name__}")
    try:
        text = _canonical(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not JSON: {exc}") from None
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = _ascii(value)
    return text


def decode_object(text: str | None) -> dict[str, Any]:
    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {}


def check_crm(crm: str) -> CrmName:
    if crm not in CRM_NAMES:
        raise ValueError(f"unknown CRM {crm!r} (one of {', '.join(CRM_NAMES)})")
    return crm


def check_key(value: str, what: str, longest: int = MAX_KEY) -> str:
    if not isinstance(value, str) or not value or len(value) > longest or "\x00" in value:
        raise ValueError(f"{what} must be 1 to {longest} characters with no NUL")
    return value


def clean_error(error: str) -> str:
    """What is kept of an error: at most :data:`MAX_ERROR` characters, NULs and unpaired surrogates replaced."""
    cut = str(error)[:MAX_ERROR].replace("\x00", "\N{REPLACEMENT CHARACTER}")
    return cut.encode("utf-8", "replace").decode("utf-8")


def crm_item_from_row(row: Row) -> CrmItem:
    """A ``crm_outbox`` row (either driver's)."""

    def opt(name: str) -> float | None:
        value = row[name]
        return float(value) if value is not None else None

    return CrmItem(
        id=int(row["id"]), crm=cast(CrmName, row["crm"]), call=row["call"], seq=int(row["seq"]), kind=row["kind"],
        payload=decode_object(row["payload"]), created_at=float(row["created_at"]), attempts=int(row["attempts"]),
        next_try_at=float(row["next_try_at"]), sent_at=opt("sent_at"), failed_at=opt("failed_at"),
        last_error=row["last_error"], answer=decode_object(row["answer"]), retried_at=opt("retried_at"))


class CrmOutboxOps:
    """``queue_crm`` ... ``put_crm_value``: the ``store.repository.CrmOutbox`` concern. A backend's subclass gives
    :attr:`_CRM_LOCK_NEXT` and :attr:`_CRM_FOR_UPDATE` (see the module's docstring)."""

    #: What follows the statement that picks the next requests (PostgreSQL: ``FOR UPDATE SKIP LOCKED``).
    _CRM_LOCK_NEXT = ""
    #: What follows the read of a call's answers about to be merged (PostgreSQL: ``FOR UPDATE``).
    _CRM_FOR_UPDATE = ""

    if TYPE_CHECKING:  # given by the backend's base and its RegisterOps (elsewhere in the store's MRO)
        async def _manual(self, work: Callable[[Any], Awaitable[T]]) -> T: ...
        async def _rows_in(self, conn: Any, sql: str, params: dict[str, Any]) -> Sequence[Row]: ...
        async def _read(self, sql: str, params: dict[str, Any]) -> Sequence[Row]: ...

    # -- the push's half ------------------------------------------------------------------------------------------

    async def queue_crm(self, crm: CrmName, call: str, state: dict[str, Any] | None,
                        requests: Sequence[CrmRequest], *, at: float) -> list[CrmItem]:
        base = {"crm": check_crm(crm), "call": check_key(call, "a call key"), "at": float(at)}
        state_text = encode_object(state, "a planner state") if state is not None else None
        rows = [{**base, "kind": check_key(r.kind, "a request's kind", MAX_KIND),
                 "payload": encode_object(r.payload, f"the payload of {r.kind}")} for r in requests]

        async def work(conn: Any) -> list[CrmItem]:
            [called] = await self._rows_in(conn, _UPSERT_CALL, {**base, "state": state_text, "n": len(rows)})
            first = int(called["last_seq"]) - len(rows) + 1
            made = [crm_item_from_row((await self._rows_in(conn, _INSERT, {**row, "seq": first + i}))[0])
                    for i, row in enumerate(rows)]
            if made:
                await self._rows_in(conn, _PROMOTE, base)
            return made

        return await self._manual(work)

    async def crm_call_state(self, crm: CrmName, call: str) -> dict[str, Any] | None:
        rows = await self._read("SELECT state FROM crm_calls WHERE crm = :crm AND call = :call",
                                {"crm": check_crm(crm), "call": check_key(call, "a call key")})
        return decode_object(rows[0]["state"]) if rows and rows[0]["state"] is not None else None

    async def crm_call_answers(self, crm: CrmName, call: str) -> dict[str, Any]:
        rows = await self._read("SELECT answers FROM crm_calls WHERE crm = :crm AND call = :call",
                                {"crm": check_crm(crm), "call": check_key(call, "a call key")})
        return decode_object(rows[0]["answers"]) if rows else {}

    # -- the sender's half ----------------------------------------------------------------------------------------

    async def take_crm(self, crm: CrmName, *, now: float, lease_seconds: float, limit: int = 1) -> list[CrmItem]:
        if lease_seconds <= 0 or limit < 1:
            raise ValueError("lease_seconds must be > 0 and limit >= 1")
        params: dict[str, Any] = {"crm": check_crm(crm), "now": float(now), "limit": int(limit),
                                  "until": float(now) + float(lease_seconds)}
        # A read first: an idle outbox (most of the time) never takes the write lock.
        if not await self._read(_DUE + " LIMIT 1", params):
            return []
        sql = ("UPDATE crm_outbox SET next_try_at = :until, attempts = attempts + 1 WHERE id IN ("
               f"{_DUE} ORDER BY next_try_at, id LIMIT :limit{self._CRM_LOCK_NEXT}) RETURNING *")

        async def work(conn: Any) -> list[CrmItem]:
            return sorted((crm_item_from_row(r) for r in await self._rows_in(conn, sql, params)), key=_by_id)

        return await self._manual(work)

    async def crm_sent(self, item_id: int, answer: dict[str, Any], *, at: float) -> None:
        answer_text = encode_object(answer, "an answer")
        params: dict[str, Any] = {"id": int(item_id), "at": float(at), "answer": answer_text}

        async def work(conn: Any) -> None:
            done = await self._rows_in(
                conn, "UPDATE crm_outbox SET sent_at = :at, failed_at = NULL, head = 0, answer = :answer "
                "WHERE id = :id AND sent_at IS NULL RETURNING crm, call", params)
            if not done:
                await self._item_in(conn, item_id)  # sent already (kept as it was), or no such request
                return
            call = {"crm": done[0]["crm"], "call": done[0]["call"], "at": float(at)}
            if answer:
                kept = await self._rows_in(conn, "SELECT answers FROM crm_calls WHERE crm = :crm AND call = :call"
                                           + self._CRM_FOR_UPDATE, call)
                merged = {**(decode_object(kept[0]["answers"]) if kept else {}), **answer}
                await self._rows_in(conn, "UPDATE crm_calls SET answers = :answers, updated_at = :at "
                                    "WHERE crm = :crm AND call = :call",
                                    {**call, "answers": encode_object(merged, "the answers")})
            else:
                await self._rows_in(conn, _TOUCH_CALL, call)
            await self._rows_in(conn, _PROMOTE, call)

        await self._manual(work)

    async def crm_failed(self, item_id: int, error: str, *, at: float, next_try_at: float | None) -> CrmItem:
        params: dict[str, Any] = {"id": int(item_id), "error": clean_error(error), "at": float(at)}
        if next_try_at is None:
            sql = ("UPDATE crm_outbox SET failed_at = :at, head = 0, last_error = :error, error_at = :at "
                   f"WHERE id = :id AND {_PENDING} RETURNING *")
        else:
            params["next"] = float(next_try_at)
            sql = ("UPDATE crm_outbox SET next_try_at = :next, last_error = :error, error_at = :at "
                   f"WHERE id = :id AND {_PENDING} RETURNING *")

        async def work(conn: Any) -> CrmItem:
            rows = await self._rows_in(conn, sql, params)
            if not rows:
                return await self._item_in(conn, item_id)  # sent or given up meanwhile: as it is
            item = crm_item_from_row(rows[0])
            if next_try_at is None:  # out of the pending set: the next request of its call goes next
                call = {"crm": item.crm, "call": item.call, "at": float(at)}
                await self._rows_in(conn, _TOUCH_CALL, call)
                await self._rows_in(conn, _PROMOTE, call)
            return item

        return await self._manual(work)

    async def crm_retry(self, item_id: int, *, at: float) -> CrmItem:
        params = {"id": int(item_id), "at": float(at)}

        async def work(conn: Any) -> CrmItem:
            rows = await self._rows_in(
                conn, "UPDATE crm_outbox SET failed_at = NULL, next_try_at = :at, retried_at = :at, attempts = 0 "
                "WHERE id = :id AND failed_at IS NOT NULL AND sent_at IS NULL RETURNING *", params)
            if not rows:
                return await self._item_in(conn, item_id)  # pending or sent: as it is
            item = crm_item_from_row(rows[0])
            # Pending again: it goes before its call's later requests, so the head moves back to it (a later one
            # already leased is reported as it comes; none is handed out until this one is done).
            call = {"crm": item.crm, "call": item.call, "at": float(at)}
            await self._rows_in(conn, _TOUCH_CALL, call)
            await self._rows_in(conn, "UPDATE crm_outbox SET head = 0 WHERE call = :call AND crm = :crm AND head = 1",
                                call)
            await self._rows_in(conn, _PROMOTE, call)
            return item

        return await self._manual(work)

    # -- what people see --------------------------------------------------------------------------------------

    async def crm_status(self) -> list[CrmStatus]:
        pending: dict[str, tuple[int, float | None]] = {
            r["crm"]: (int(r["n"]), float(r["oldest"])) for r in await self._read(
                f"SELECT crm, count(*) AS n, min(created_at) AS oldest FROM crm_outbox WHERE {_PENDING} GROUP BY crm",
                {})}
        counts: dict[str, dict[str, int]] = {}
        for state in ("failed", "sent"):
            counts[state] = {r["crm"]: int(r["n"]) for r in await self._read(
                f"SELECT crm, count(*) AS n FROM crm_outbox WHERE {_STATES[state]} GROUP BY crm", {})}
        out: list[CrmStatus] = []
        for crm in CRM_NAMES:
            if crm not in pending and crm not in counts["failed"] and crm not in counts["sent"]:
                continue
            # The most recent failed try's error among the requests not sent (backing off, or given up).
            errors = await self._read("SELECT last_error FROM crm_outbox WHERE crm = :crm AND sent_at IS NULL "
                                      "AND error_at IS NOT NULL ORDER BY error_at DESC LIMIT 1", {"crm": crm})
            waiting, oldest = pending.get(crm, (0, None))
            out.append(CrmStatus(crm=crm, pending=waiting, failed=counts["failed"].get(crm, 0),
                                 sent=counts["sent"].get(crm, 0), oldest_pending_at=oldest,
                                 last_error=errors[0]["last_error"] if errors else None))
        return out

    async def list_crm_items(self, *, crm: CrmName | None = None, call: str | None = None,
                             state: Literal["pending", "sent", "failed"] | None = None,
                             limit: int = 200) -> list[CrmItem]:
        where: list[str] = []
        params: dict[str, Any] = {"limit": max(0, int(limit))}
        if crm is not None:
            params["crm"] = check_crm(crm)
            where.append("crm = :crm")
        if call is not None:
            params["call"] = check_key(call, "a call key")
            where.append("call = :call")
        if state is not None:
            if state not in _STATES:
                raise ValueError(f"unknown state {state!r} (pending, sent or failed)")
            where.append(_STATES[state])
        order = "crm, seq" if call is not None else "id DESC"  # a call's sequence in order; else newest first
        sql = ("SELECT * FROM crm_outbox" + (" WHERE " + " AND ".join(where) if where else "")
               + f" ORDER BY {order} LIMIT :limit")
        return [crm_item_from_row(r) for r in await self._read(sql, params)]

    async def crm_items_after(self, crm: CrmName, after_id: int, *, limit: int = 100) -> list[CrmItem]:
        rows = await self._read("SELECT * FROM crm_outbox WHERE crm = :crm AND id > :after ORDER BY id LIMIT :limit",
                                {"crm": check_crm(crm), "after": int(after_id), "limit": max(0, int(limit))})
        return [crm_item_from_row(r) for r in rows]

    # -- a connector's values ---------------------------------------------------------------------------------

    async def crm_value(self, crm: CrmName, name: str) -> dict[str, Any] | None:
        rows = await self._read("SELECT value FROM crm_values WHERE crm = :crm AND name = :name",
                                {"crm": check_crm(crm), "name": check_key(name, "a value's name")})
        return decode_object(rows[0]["value"]) if rows else None

    async def put_crm_value(self, crm: CrmName, name: str, value: dict[str, Any], *,
                            expect: dict[str, Any] | None = None, only_new: bool = False) -> bool:
        if expect is not None and only_new:
            raise ValueError("expect and only_new exclude each other")
        params: dict[str, Any] = {"crm": check_crm(crm), "name": check_key(name, "a value's name"),
                                  "value": encode_object(value, "a value")}
        if expect is not None:  # compare-and-set: the row's lock makes a second writer re-read it, and miss
            params["expect"] = encode_object(expect, "the value expected")
            sql = ("UPDATE crm_values SET value = :value WHERE crm = :crm AND name = :name AND value = :expect "
                   "RETURNING name")
        elif only_new:
            sql = ("INSERT INTO crm_values (crm, name, value) VALUES (:crm, :name, :value) "
                   "ON CONFLICT (crm, name) DO NOTHING RETURNING name")
        else:
            sql = ("INSERT INTO crm_values (crm, name, value) VALUES (:crm, :name, :value) "
                   "ON CONFLICT (crm, name) DO UPDATE SET value = excluded.value RETURNING name")

        async def work(conn: Any) -> bool:
            return bool(await self._rows_in(conn, sql, params))

        return await self._manual(work)

    async def _item_in(self, conn: Any, item_id: int) -> CrmItem:
        rows = await self._rows_in(conn, "SELECT * FROM crm_outbox WHERE id = :id", {"id": int(item_id)})
        if not rows:
            raise CrmItemNotFound(item_id)
        return crm_item_from_row(rows[0])


def _by_id(item: CrmItem) -> int:
    return item.id
