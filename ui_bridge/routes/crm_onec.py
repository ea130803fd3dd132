"""1C's side of the HTTP API (issue 16, ``docs/crm.md`` "1C"): the pull feed of call events and click-to-call.

Both are for the ``integration`` role (a 1C base calls with ``Authorization: Bearer <token>``, ``cti users add NAME
--role integration``) and admins; the route table says so (``ui_bridge/http.py``). Both answer 404 until
``[crm.onec]`` is configured (the pull feed: with ``pull = true``).

* ``GET /api/crm/1c/events?after=CURSOR&wait=SECONDS&limit=N``: the events with a ``delivery`` above ``after``
  (0: from the first), oldest first, at most ``limit`` (1–500, default 100); none yet: the answer waits up to
  ``wait`` seconds (0–60, default 0) for one (long-poll). ``{"events": [...], "cursor": N}``: ask next with
  ``after=N``; the same cursor again gives the same events (nothing is lost if an answer is), a later one never
  repeats one. The events are :mod:`companion.crm.onec`'s (the daemon hands the feed over: :class:`OneCEvents`).
* ``POST /api/crm/1c/calls`` ``{"extension", "number", "pbx"?, "request_id"?}``: ring ``extension``'s phone, then
  dial ``number`` from it: the panel's own click-to-call (``Commands.originate_for``). The push is told first that
  the call is 1C's (``CrmCallStarts.expect``), so every event of it carries ``started_by.request_id``. 202
  ``{"request_id", "action_id", "pbx", "extension", "number"}``. An ``Idempotency-Key`` header makes a retry safe: the
  same key again answers what the first request did (200) and rings nobody twice; while the first is still being
  carried out it is a 409. Errors: 400 a bad number, extension or body; 403 a PBX the token's user does not belong
  to; 429 too many calls at once (the panel's per-user limit, ``Retry-After``); 503 the PBX not connected or not
  answering (the call may not have been placed: retry with the same key).
"""

from __future__ import annotations

import logging
import math
import re
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from cti import control
from store.repository import Store, User

from .. import messages as m
from ..api_models import BadRequest, read_model, validation_text, whole_number
from ..commands import Commands, RequestFailed
from ..crm_calls import CrmCallStarts
from ..pbx_access import PbxRefused, named_pbx
from .gate import api_error

log = logging.getLogger(__name__)

#: The 403 of the route table.
ONEC_IS_FOR = "1C's API (the events feed, click-to-call) is for an integration token and admins"
#: The 403 of a click-to-call sent from a foreign page.
FOREIGN_ONEC = "this origin may not place calls through 1C's API"
#: The longest a pull may wait, and the most events one answer holds.
MAX_WAIT = 60
MAX_LIMIT = 500
#: A cursor is an outbox id: a 64-bit integer.
MAX_CURSOR = 2**63 - 1
_KEY = re.compile(r"[A-Za-z0-9._:\-]{1,100}")
#: One line of text: no control, zero-width or bidi characters.
_LINE = r"^[^\x00-\x1f\x7f-\x9f\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff]+$"
_WAIT = re.compile(r"[0-9]{1,3}(\.[0-9]{1,3})?")
#: A click-to-call whose request never finished (the daemon stopped while the PBX was asked) holds its key this long.
STALE_SECONDS = 120.0
#: What a click-to-call's answer is kept under for its ``Idempotency-Key``.
_KEPT = "click-to-call:{user}:{key}"


class OneCEvents(Protocol):
    """The pull feed (``companion.crm.onec.OneCFeed``, set on the panel by the daemon)."""

    async def read(self, after: int, *, limit: int, wait: float) -> tuple[list[dict[str, Any]], int]:
        """Up to ``limit`` events after ``after``, oldest first, and the next cursor; waits up to ``wait`` s for
        one."""
        ...


class CallBody(BaseModel):
    """``POST /api/crm/1c/calls``."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    extension: m.Extension
    number: m.PhoneNumber
    pbx: m.PbxId | None = None
    #: 1C's own name of the request (its document's number), carried by every event of the call; else one is made.
    request_id: Annotated[str, Field(min_length=1, max_length=100, pattern=_LINE)] | None = None


class OneCRoutes:
    """The handlers; ``feed``/``starts`` are read at each request (the daemon sets them once the push runs)."""

    def __init__(self, store: Callable[[], Store], commands: Commands, followed: Sequence[str], *,
                 configured: bool, feed: Callable[[], OneCEvents | None],
                 starts: Callable[[], CrmCallStarts | None], clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.commands = commands
        self.followed = list(followed)
        self.configured = configured
        self.feed = feed
        self.starts = starts
        self.clock = clock

    # -- the pull feed -------------------------------------------------------------------------------------------

    async def events(self, request: Request, user: User) -> Response:
        feed = self.feed()
        if feed is None:
            return api_error(404, "not_found", "no 1C pull feed here: set [crm.onec] pull = true")
        q = request.query_params
        try:
            after = whole_number(q, "after", 0, 0, MAX_CURSOR)
            limit = whole_number(q, "limit", 100, 1, MAX_LIMIT)
            wait = _seconds(q.get("wait"))
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        events, cursor = await feed.read(after, limit=limit, wait=wait)
        return JSONResponse({"events": events, "cursor": cursor}, headers={"Cache-Control": "no-store"})

    # -- click-to-call -------------------------------------------------------------------------------------------

    async def call(self, request: Request, user: User) -> Response:
        if not self.configured:
            return api_error(404, "not_found", "1C's API is off here: no [crm.onec] section")
        key = request.headers.get("idempotency-key")
        try:
            if key is not None and not _KEY.fullmatch(key):
                raise BadRequest("Idempotency-Key: 1 to 100 letters, digits and . _ : -")
            body = await read_model(request, CallBody, hint='send JSON {"extension": "101", "number": '
                                    '"+7 916 123-45-67"}: ')
            pbx = named_pbx(user, self.followed, body.pbx, what="click-to-call")
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        except PbxRefused as exc:
            return api_error(exc.status, exc.api_code, exc.message)
        request_id = body.request_id or (key if key is not None else uuid.uuid4().hex)
        asked = {"extension": body.extension, "number": body.number, "pbx": pbx, "request_id": request_id}
        kept_as = _KEPT.format(user=user.name, key=key) if key is not None else None
        started: dict[str, Any] = {"state": "started", "asked": asked, "at": self.clock()}
        if kept_as is not None:
            earlier = await self._claim(kept_as, started)
            if earlier is not None:
                return earlier
        status, answer, headers = await self._originate(user, body, pbx, request_id)
        if kept_as is not None:
            await self.store().put_crm_value(
                "onec", kept_as, {"state": "done" if status == 202 else "failed", "asked": asked, "status": status,
                                  "answer": answer}, expect=started)
        return JSONResponse(answer, status_code=status, headers=headers)

    async def _claim(self, kept_as: str, started: dict[str, Any]) -> Response | None:
        """Take the idempotency key for this request (None: go on and place the call), or the answer a request
        with the same key already got. A key whose request never finished (the daemon stopped meanwhile) is taken
        over after :data:`STALE_SECONDS`."""
        store = self.store()
        if await store.put_crm_value("onec", kept_as, started, only_new=True):
            return None
        kept = await store.crm_value("onec", kept_as) or {}
        if kept.get("asked") != started["asked"]:
            return api_error(409, "conflict", "this Idempotency-Key was used for another call (another extension, "
                             "number, PBX or request_id)")
        if kept.get("state") == "done":
            log.info("1C click-to-call %s: a retried request (the same idempotency key), not placed again",
                     started["asked"]["request_id"])
            return JSONResponse(kept.get("answer", {}), status_code=200)
        stale = kept.get("state") == "started" and self.clock() - float(kept.get("at", 0)) > STALE_SECONDS
        if (kept.get("state") == "failed" or stale) and await store.put_crm_value("onec", kept_as, started,
                                                                                  expect=kept):
            return None  # the first try failed (the PBX down): this one places the call
        return api_error(409, "conflict", "a request with this Idempotency-Key is being carried out; ask again "
                         "in a moment")

    async def _originate(self, user: User, body: CallBody, pbx: str, request_id: str
                         ) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(202, the answer, headers) once the PBX took the ``Originate``; else the error's status, the error."""
        wait = self.commands.limiter.take(user.name)
        if wait > 0:
            return 429, _error("rate_limited", f"too many calls at once; try again in {math.ceil(wait)} s"), {
                "Retry-After": str(math.ceil(wait))}
        starts = self.starts()
        if starts is not None:
            starts.expect("onec", pbx, body.extension, body.number, {"request_id": request_id})
        try:
            sent = await self.commands.originate_for("1c", body.extension, body.number, pbx)
        except (ValidationError, control.Refused, PbxRefused, RequestFailed) as exc:
            if starts is not None and not (isinstance(exc, RequestFailed) and exc.code == "pbx_timeout"):
                starts.forget("onec", pbx, body.extension, body.number)  # refused: that call never comes
            if isinstance(exc, ValidationError):
                return 400, _error("bad_request", validation_text(exc)), {}
            if isinstance(exc, control.Refused):
                return _STATUS.get(exc.code, 400), _error(exc.code, exc.message), {}
            if isinstance(exc, PbxRefused):
                return exc.status, _error(exc.api_code, exc.message), {}
            return _STATUS.get(exc.code, 503), _error(exc.code, exc.message), {}
        log.info("1C click-to-call %s: extension %s on PBX %s", request_id, body.extension, pbx)
        return 202, {"request_id": request_id, "action_id": sent.get("action_id"), "pbx": sent.get("pbx", pbx),
                     "extension": body.extension, "number": body.number}, {}


#: The HTTP status of a click-to-call refused for this reason (the panel's error codes).
_STATUS: dict[str, int] = {"bad_message": 400, "forbidden": 403, "not_found": 404, "rate_limited": 429,
                           "pbx_refused": 422, "pbx_unavailable": 503, "pbx_timeout": 503}


def _error(code: str, message: str) -> dict[str, Any]:
    return {"error": {"code": code, "message": message}}


def _seconds(text: str | None) -> float:
    """``wait``: seconds, 0–60 (decimals allowed); 0 when absent."""
    if not text:
        return 0.0
    if not _WAIT.fullmatch(text) or float(text) > MAX_WAIT:
        raise BadRequest(f"wait is a number of seconds from 0 to {MAX_WAIT}")
    return float(text)
