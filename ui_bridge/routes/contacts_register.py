"""The contact register over HTTP: ``GET /api/contacts/register`` (a page, or the whole listing as CSV),
``GET /api/contacts/register/ID``, and ``POST /api/contacts/register/ID/stages``: the DMS's (and an admin's) way to
set *booking* and *visit* when they happen.

Who may call which is the route table's (``ui_bridge/http.py``): admins and QA read the register, an agent reads
their own contacts only (their extension on their PBXs, whatever they ask), everyone only the PBXs their user
belongs to; a stage is set by an admin or by an ``integration`` user's API token (``cti users add NAME --role
integration``), which may call nothing else. The rows are ``cti.contacts_register.register_row``'s, the CSV
``write_register_csv``'s (``;``-separated, CRLF, formulas neutralised), so the panel, the CSV and ``cti contacts
register`` give the same fields from the same query code.

Hostile input is refused before the store is asked: an unknown filter value, a date that is no date, an unknown
stage, a stage time before the contact or in the future, an external id that is not one short line (400); a body
over ``[http] max_body_bytes`` (413, ``ui_bridge/limits.py``). The same event sent twice (its ``external_id``) changes
nothing and answers 200 with the contact; another event for a stage already set is 409.
"""

from __future__ import annotations

import io
import time
from collections.abc import AsyncIterator, Callable, Sequence
from datetime import tzinfo
from typing import Annotated, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, StringConstraints
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cti.contacts_register import (
    ContactFilter,
    ContactKey,
    RegisteredContact,
    register_row,
    write_register_csv,
)
from cti.directory import CONTACT_KINDS
from cti.scripts.model import CHANNELS, STAGES
from store.reason_titles import TITLES
from store.repository import RegisteredContactNotFound, StageConflict, Store, User

from ..api_models import SQLITE_MAX_INT, BadRequest, moment, period, read_model, whole_number
from ..csv_download import csv_stream, download_format
from ..cursors import after_contact, contact_token
from ..notifier import Notifier
from ..pbx_access import PbxRefused, belongs, listing_filter
from .gate import api_error

#: The 403 of the register's reads, for an integration token.
REGISTER_READS_ARE_FOR = "the contact register is read by admins, QA and agents (their own contacts)"
#: The 403 of setting a stage, for the panel's other users.
STAGES_ARE_SET_BY = "stages are set by admins and the DMS's integration user"
#: The 403 of a write from a foreign page.
FOREIGN_STAGE = "this origin may not set a contact's stage"
#: How far a stage's time may be before the contact began or after now (clocks of two systems differ a little).
CLOCK_SLACK = 300.0
#: Contacts read per page of a CSV export (the whole filtered listing streams in constant memory).
CSV_PAGE = 500
_FILTER_TEXT = 64
K = TypeVar("K", bound=str)


class StageBody(BaseModel):
    """``POST /api/contacts/register/ID/stages``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    stage: Literal["request", "booking", "visit"]
    at: Annotated[str, StringConstraints(min_length=1, max_length=40)] | None = None
    external_id: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\x00-\x1f\x7f]+$")
                           ] | None = None


class ContactRegisterRoutes:
    def __init__(self, store: Callable[[], Store], notifier: Notifier, followed: Sequence[str]) -> None:
        self.store = store
        self.notifier = notifier
        self.followed = list(followed)

    @property
    def tz(self) -> tzinfo | None:
        return self.notifier.messages.tz

    # -- reads ---------------------------------------------------------------------------------------------------

    async def listing(self, request: Request, user: User) -> Response:
        q = request.query_params
        try:
            where = self._filter(request, user)
            fmt, encoding = download_format(q)
            if fmt == "csv":
                return self._csv(where, encoding)
            limit = whole_number(q, "limit", 100, 1, 1000)
            after = after_contact(q.get("after"))
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        except PbxRefused as exc:
            return api_error(exc.status, exc.api_code, exc.message)
        store = self.store()
        rows = await store.list_registered_contacts(where, after=after, limit=limit + 1, newest_first=True)
        page = rows[:limit]
        more = contact_token(ContactKey.of(page[-1])) if len(rows) > limit else None
        titles = await TITLES.of_contacts(store, page)
        return JSONResponse({"contacts": [register_row(c, self.tz, t) for c, t in zip(page, titles, strict=True)],
                             "next": more})

    async def contact(self, request: Request, user: User) -> Response:
        found = await self._readable(request.path_params["contact_id"], user)
        if isinstance(found, Response):
            return found
        return JSONResponse({"contact": register_row(found, self.tz, await TITLES.of_contact(self.store(), found))})

    def _filter(self, request: Request, user: User) -> ContactFilter:
        q = request.query_params
        since, until = period(q, self.tz)
        pbxs = listing_filter(user, self.followed, q.get("pbx"))
        agent = _text(q.get("agent"), "agent")
        if user.role == "agent":
            agent = user.extension  # agents read their own contacts only
        return ContactFilter(
            since=since, until=until, stage=_one_of(q.get("stage"), "stage", STAGES),
            reason=_text(q.get("reason"), "reason"), channel=_one_of(q.get("channel"), "channel", CHANNELS),
            client_kind=_one_of(q.get("client_type"), "client_type", CONTACT_KINDS), agent=agent,
            employee=_text(q.get("employee"), "employee"), pbxs=tuple(pbxs) if pbxs is not None else None)

    def _csv(self, where: ContactFilter, encoding: str) -> Response:
        """The whole filtered listing, oldest first, a page at a time (``ui_bridge/csv_download.py``)."""
        store, tz = self.store(), self.tz

        async def pieces() -> AsyncIterator[str]:
            text = io.StringIO()
            write_register_csv([], text)
            async for chunk in _pages(store.iter_registered_contacts(where, page_size=CSV_PAGE), CSV_PAGE):
                titles = await TITLES.of_contacts(store, chunk)
                write_register_csv([register_row(c, tz, t) for c, t in zip(chunk, titles, strict=True)], text,
                                   header=False)
                yield text.getvalue()
                text.seek(0)
                text.truncate()
            if text.getvalue():
                yield text.getvalue()

        return csv_stream(pieces(), "contact-register.csv", encoding)

    async def _readable(self, text: str, user: User) -> RegisteredContact | Response:
        """The contact the path names, if ``user`` may read it; else the error response."""
        if not (text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= SQLITE_MAX_INT):
            return api_error(404, "not_found", f"no registered contact {text[:30]!r}")
        try:
            contact = await self.store().get_registered_contact(int(text))
        except RegisteredContactNotFound as exc:
            return api_error(404, "not_found", str(exc))
        if not _visible(user, contact):
            return api_error(403, "forbidden", f"registered contact {contact.id} is not one you may read")
        return contact

    # -- the stages ------------------------------------------------------------------------------------------------

    async def set_stage(self, request: Request, user: User) -> Response:
        text = request.path_params["contact_id"]
        try:
            body = await read_model(request, StageBody, hint='send JSON {"stage": "booking"|"visit", "at": '
                                                            '"2026-03-10T15:30:00+03:00", "external_id": "..."}: ')
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        if user.role == "integration":
            if body.stage == "request":
                return api_error(400, "bad_request", "stage: the DMS sets booking or visit (a request is the "
                                                     "script's)")
            if body.external_id is None:
                return api_error(400, "bad_request", "external_id: required: the DMS's id of the booking or visit "
                                                     "(the same id sent again changes nothing)")
        found = await self._readable(text, user)
        if isinstance(found, Response):
            return found
        now = time.time()
        try:
            at = self._moment(body.at, now)
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        if not found.at - CLOCK_SLACK <= at <= now + CLOCK_SLACK:
            return api_error(400, "bad_request", f"at: {body.at} is before the contact ({self.notifier.time(found.at)})"
                             if at < found.at else f"at: {body.at} is in the future")
        try:
            contact, changed = await self.store().set_contact_stage(found.id, body.stage, at=at, by=user.name,
                                                                    external_id=body.external_id)
        except RegisteredContactNotFound as exc:
            return api_error(404, "not_found", str(exc))
        except StageConflict as exc:
            return api_error(409, "conflict", str(exc))
        title = await TITLES.of_contact(self.store(), contact)
        return JSONResponse({"contact": register_row(contact, self.tz, title), "changed": changed})

    def _moment(self, text: str | None, now: float) -> float:
        """``at`` as an epoch: ISO 8601, with an offset or in the site's zone; absent: now."""
        at = moment(text, "at", self.tz, expected="an ISO 8601 time (2026-03-10T15:30:00+03:00)")
        return now if at is None else at


def _visible(user: User, contact: RegisteredContact) -> bool:
    """Whether ``user`` may read ``contact``: of one of their PBXs (a contact of no PBX: users of every PBX), and for
    an agent, their own."""
    if contact.pbx is None and user.pbxs:
        return False
    if contact.pbx is not None and not belongs(user, contact.pbx):
        return False
    return user.role != "agent" or contact.agent == user.extension


def _text(value: str | None, name: str) -> str | None:
    if not value:
        return None
    if len(value) > _FILTER_TEXT or not value.isprintable():
        raise BadRequest(f"{name}: at most {_FILTER_TEXT} printable characters")
    return value


def _one_of(value: str | None, name: str, known: Sequence[K]) -> K | None:
    if not value:
        return None
    for item in known:
        if item == value:
            return item
    raise BadRequest(f"{name} is one of {', '.join(known)}")


async def _pages(contacts: AsyncIterator[RegisteredContact], size: int) -> AsyncIterator[list[RegisteredContact]]:
    chunk: list[RegisteredContact] = []
    async for contact in contacts:
        chunk.append(contact)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk
