"""The durable e-mail outbox on both stores (``store.repository.Outbox``): one module, as ``reminders.py``.

Why an outbox: a mail is written in the transaction of the change it tells of (``store/complaints.py`` calls
:func:`insert_mail`), so a complaint never moves without its notification, and a down SMTP server or a restart
loses none; the mailer (``companion/mailer.py``) sends them later, off the event loop's critical path.

**One node per mail.** ``take_mail`` picks the oldest mail due and moves its ``next_try_at`` to the end of the
taker's lease in one transaction (SQLite: the one writer; PostgreSQL: ``FOR UPDATE SKIP LOCKED``, the backend's
:attr:`OutboxOps._LOCK_NEXT`, so two nodes at once take two different mails, or one takes none). A taker that dies
leaves the lease to run out, and the mail is taken again. ``mail_sent`` keeps the first delivery's time; a mail
reported sent is never taken again, one given up (``mail_failed`` with no retry time) neither.

**What is refused.** Recipients are checked (``cti.email_address.check_email``: one ``@``, no CR/LF, no spaces, no
commas) and a subject has no line breaks: what the mailer writes into a header cannot add one.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from cti.complaints import NewMail, OutgoingMail
from cti.email_address import check_email
from store.repository import MailNotFound

T = TypeVar("T")
#: A row as either driver gives it (``sqlite3.Row``, ``asyncpg.Record``): read by column name.
Row = Any
#: What ``insert_mail`` runs a statement with: the backend's ``_rows_in`` bound to a transaction's connection.
RowsIn = Callable[[Any, str, dict[str, Any]], Awaitable[Sequence[Row]]]

#: The longest error kept with a failed try (an SMTP server's answer, a traceback's last line).
MAX_ERROR = 2000

_encode = json.JSONEncoder(ensure_ascii=False).encode
_PENDING = "sent_at IS NULL AND failed_at IS NULL"
_DUE = f"SELECT * FROM mail_outbox WHERE {_PENDING} AND next_try_at <= :now"
_INSERT = ("INSERT INTO mail_outbox (recipients, subject, body, about, created_at, next_try_at) "
           "VALUES (:recipients, :subject, :body, :about, :at, :at) RETURNING *")


def mail_from_row(row: Row) -> OutgoingMail:
    """A ``mail_outbox`` row (either driver's)."""

    def opt(name: str) -> float | None:
        value = row[name]
        return float(value) if value is not None else None

    return OutgoingMail(
        id=int(row["id"]), to=tuple(str(a) for a in json.loads(row["recipients"] or "[]")), subject=row["subject"],
        body=row["body"], created_at=float(row["created_at"]), about=row["about"], attempts=int(row["attempts"]),
        next_try_at=float(row["next_try_at"]), sent_at=opt("sent_at"), failed_at=opt("failed_at"),
        last_error=row["last_error"])


def mail_params(mail: NewMail, at: float) -> dict[str, Any]:
    """The row of a mail to queue, its recipients and subject checked (``ValueError`` naming what is wrong)."""
    if not mail.to:
        raise ValueError("a mail needs at least one recipient")
    if "\r" in mail.subject or "\n" in mail.subject:
        raise ValueError("a mail's subject is one line")
    recipients = list(dict.fromkeys(check_email(a) for a in mail.to))
    return {"recipients": _encode(recipients), "subject": mail.subject, "body": mail.body, "about": mail.about,
            "at": float(at)}


async def insert_mail(rows_in: RowsIn, conn: Any, mail: NewMail, at: float) -> OutgoingMail:
    """Queue ``mail`` inside the caller's transaction (``conn``), due at once."""
    made = await rows_in(conn, _INSERT, mail_params(mail, at))
    return mail_from_row(made[0])


class OutboxOps:
    """``queue_mail`` ... ``list_mails``: the ``store.repository.Outbox`` concern. A backend's subclass gives
    :attr:`_LOCK_NEXT` (see the module's docstring)."""

    #: What follows the statement that picks the next mail (PostgreSQL: ``FOR UPDATE SKIP LOCKED``).
    _LOCK_NEXT = ""

    if TYPE_CHECKING:  # given by the backend's base and its RegisterOps (elsewhere in the store's MRO)
        async def _manual(self, work: Callable[[Any], Awaitable[T]]) -> T: ...
        async def _rows_in(self, conn: Any, sql: str, params: dict[str, Any]) -> Sequence[Row]: ...
        async def _read(self, sql: str, params: dict[str, Any]) -> Sequence[Row]: ...

    async def queue_mail(self, mail: NewMail, *, at: float) -> OutgoingMail:
        params = mail_params(mail, at)  # checked before the transaction

        async def work(conn: Any) -> OutgoingMail:
            return mail_from_row((await self._rows_in(conn, _INSERT, params))[0])

        return await self._manual(work)

    async def take_mail(self, *, now: float, lease_seconds: float) -> OutgoingMail | None:
        if lease_seconds <= 0:
            raise ValueError("lease_seconds must be > 0")
        params = {"now": float(now)}
        # A read first: an empty outbox (most of the time) never takes the write lock.
        if not await self._read(_DUE + " LIMIT 1", params):
            return None

        async def work(conn: Any) -> OutgoingMail | None:
            found = await self._rows_in(conn, _DUE + " ORDER BY created_at, id LIMIT 1" + self._LOCK_NEXT, params)
            if not found:
                return None
            rows = await self._rows_in(conn, "UPDATE mail_outbox SET next_try_at = :until WHERE id = :id RETURNING *",
                                       {"id": int(found[0]["id"]), "until": float(now) + float(lease_seconds)})
            return mail_from_row(rows[0])

        return await self._manual(work)

    async def mail_sent(self, mail_id: int, *, at: float) -> None:
        async def work(conn: Any) -> None:
            done = await self._rows_in(
                conn, "UPDATE mail_outbox SET sent_at = :at, failed_at = NULL, attempts = attempts + 1 "
                "WHERE id = :id AND sent_at IS NULL RETURNING id", {"id": mail_id, "at": float(at)})
            if not done:
                await self._mail_in(conn, mail_id)  # sent already (kept as it was), or no such mail

        await self._manual(work)

    async def mail_failed(self, mail_id: int, error: str, *, at: float, next_try_at: float | None) -> OutgoingMail:
        params: dict[str, Any] = {"id": mail_id, "error": error[:MAX_ERROR]}
        if next_try_at is None:
            params["at"] = float(at)
            sql = ("UPDATE mail_outbox SET attempts = attempts + 1, last_error = :error, failed_at = :at "
                   "WHERE id = :id AND sent_at IS NULL RETURNING *")
        else:
            params["next"] = float(next_try_at)
            sql = ("UPDATE mail_outbox SET attempts = attempts + 1, last_error = :error, next_try_at = :next "
                   "WHERE id = :id AND sent_at IS NULL RETURNING *")

        async def work(conn: Any) -> OutgoingMail:
            rows = await self._rows_in(conn, sql, params)
            if rows:
                return mail_from_row(rows[0])
            return await self._mail_in(conn, mail_id)  # another node sent it meanwhile: as it is

        return await self._manual(work)

    async def list_mails(self, *, pending_only: bool = False, limit: int = 200) -> list[OutgoingMail]:
        where = f" WHERE {_PENDING}" if pending_only else ""
        rows = await self._read(f"SELECT * FROM mail_outbox{where} ORDER BY created_at DESC, id DESC LIMIT :limit",
                                {"limit": max(0, int(limit))})
        return [mail_from_row(r) for r in rows]

    async def _mail_in(self, conn: Any, mail_id: int) -> OutgoingMail:
        rows = await self._rows_in(conn, "SELECT * FROM mail_outbox WHERE id = :id", {"id": mail_id})
        if not rows:
            raise MailNotFound(mail_id)
        return mail_from_row(rows[0])
