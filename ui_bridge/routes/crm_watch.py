"""The CRM push for the admin's panel (issue 16): ``GET /api/crm``, each CRM's outbox and the requests given up,
and ``POST /api/crm/requests/{item_id}/retry``, «Повторить» on one of them.

Who may call them is the route table's business (``ui_bridge/http.py``): admins. The figures are
``ui_bridge/crm_watch.py``'s, the same ``GET /api/health`` and ``cti crm status`` show. A request put back goes with
its call's later requests given up after it (``CrmWatch.retry``): a Bitrix24 ``finish`` given up for want of the
``CALL_ID`` its ``register`` never got goes again once that ``register`` has.
"""

from __future__ import annotations

import logging

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cti.crm import CrmItem
from store.repository import CrmItemNotFound, User

from ..api_models import SQLITE_MAX_INT, CrmHealth
from ..crm_watch import GIVEN_UP_SHOWN, CrmWatch, StoreNotOpen
from ..outgoing import Messages
from .gate import api_error

log = logging.getLogger(__name__)

#: The 403 of these routes, for everyone but admins.
CRM_IS_FOR = "the CRM push's state is for admins"
#: The 403 of «Повторить» from a page of another origin.
FOREIGN_CRM = "this origin may not put CRM requests back"
NO_STORE = {"Cache-Control": "no-store"}


class CrmRequestInfo(BaseModel):
    """One request of the outbox, as the admin's panel lists a given-up one."""

    id: int
    crm: str
    call: str = Field(description="the call: '<pbx>:<linkedid>', or 'crm:<crm>:<id>' for a click-to-call the CRM "
                      "started")
    seq: int = Field(description="its place in its call's sequence (1, 2, ...)")
    kind: str = Field(description="the CRM's name for the request (register, finish, newCall, event...)")
    created_at: str
    failed_at: str | None
    attempts: int
    error: str | None
    state: str = Field(description="pending, sent or failed")


class CrmView(BaseModel):
    """``GET /api/crm``: each CRM's outbox, and the newest requests given up."""

    crms: list[CrmHealth]
    given_up: list[CrmRequestInfo]
    now: str


class CrmRoutes:
    def __init__(self, watch: CrmWatch, messages: Messages) -> None:
        self.watch = watch
        self.messages = messages

    def info(self, item: CrmItem) -> CrmRequestInfo:
        return CrmRequestInfo(id=item.id, crm=item.crm, call=item.call, seq=item.seq, kind=item.kind,
                              created_at=self.messages.time(item.created_at),
                              failed_at=self.messages.time(item.failed_at) if item.failed_at is not None else None,
                              attempts=item.attempts, error=item.last_error, state=item.state)

    async def read(self, request: Request, user: User) -> Response:
        watch = self.watch
        try:
            crms = await watch.read()
            given_up = await watch.given_up(limit=GIVEN_UP_SHOWN) if crms else []
        except StoreNotOpen:
            return api_error(503, "unavailable", "the store is not open yet")
        view = CrmView(crms=crms, given_up=[self.info(item) for item in given_up],
                       now=self.messages.time(watch.now()))
        return JSONResponse(view.model_dump(mode="json"), headers=NO_STORE)

    async def retry(self, request: Request, user: User) -> Response:
        text = request.path_params["item_id"]
        if not (text.isascii() and text.isdigit() and len(text) <= 19 and 0 < int(text) <= SQLITE_MAX_INT):
            return api_error(404, "not_found", f"no CRM request {text[:30]!r}")
        try:
            items = await self.watch.retry(int(text))
        except CrmItemNotFound:
            return api_error(404, "not_found", f"no CRM request {text}")
        except StoreNotOpen:
            return api_error(503, "unavailable", "the store is not open yet")
        log.info("CRM push: %s put back %s request(s) of call %s: %s", user.name, items[0].crm, items[0].call,
                 ", ".join(f"#{item.id} {item.kind}" for item in items))
        return JSONResponse({"requests": [self.info(item).model_dump(mode="json") for item in items]},
                            headers=NO_STORE)
