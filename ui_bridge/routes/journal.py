"""The call journal and the missed-call register over HTTP: ``/api/calls``, ``/api/missed``, ``/api/missed/ID``.

Listings page by cursor (``next`` in the answer, ``?after=`` for the following page: ``ui_bridge/cursors.py``);
``offset`` still pages for older clients. One row more than the page is read to know whether there is a next
page, so the last page never costs a request that comes back empty. Who may read what is the route table's
business (``ui_bridge/http.py``), except that an agent's journal is always their own extension's, and that
everyone reads only the PBXs their user belongs to (``?pbx=a,b`` narrows that; ``ui_bridge/pbx_access.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from store.repository import CallKey, MissedKey, MissedNotFound, Store, User

from ..api_models import SQLITE_MAX_INT, BadRequest, range_and_page
from ..cursors import after_call, after_missed, call_token, missed_token
from ..notifier import Notifier
from ..pbx_access import PbxRefused, belongs, listing_filter
from .gate import api_error

#: The 403 of both register routes, for agents.
REGISTER_IS_FOR = "the missed-call register is for admins and QA"


class Journal:
    def __init__(self, store: Callable[[], Store], notifier: Notifier, followed: Sequence[str]) -> None:
        self.store = store
        self.notifier = notifier
        #: The ids of the PBXs the daemon follows (what ``?pbx=`` may name).
        self.followed = list(followed)

    async def calls(self, request: Request, user: User) -> Response:
        q = request.query_params
        try:
            since, until, limit, offset = range_and_page(q, default_limit=100, tz=self.notifier.messages.tz)
            after = after_call(_after(q.get("after"), offset))
            pbxs = listing_filter(user, self.followed, q.get("pbx"))
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        except PbxRefused as exc:
            return api_error(exc.status, exc.api_code, exc.message)
        agent = q.get("agent") or None
        if user.role == "agent":
            agent = user.extension  # agents see their own calls only
        rows = await self.store().list_calls(
            since=since, until=until, number=q.get("number") or None, agent=agent,
            direction=q.get("direction") or None, outcome=q.get("outcome") or None,
            limit=limit + 1, offset=offset, newest_first=True, after=after, pbxs=pbxs,
        )
        page = rows[:limit]
        more = call_token(CallKey.of(page[-1])) if len(rows) > limit else None
        return JSONResponse({"calls": [self.notifier.messages.call_json(r) for r in page], "next": more})

    async def missed(self, request: Request, user: User) -> Response:
        q = request.query_params
        try:
            since, until, limit, offset = range_and_page(q, default_limit=200, tz=self.notifier.messages.tz)
            after = after_missed(_after(q.get("after"), offset))
            pbxs = listing_filter(user, self.followed, q.get("pbx"))
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        except PbxRefused as exc:
            return api_error(exc.status, exc.api_code, exc.message)
        status = q.get("status") or None
        if status not in (None, "open", "closed"):
            return api_error(400, "bad_request", "status is open or closed")
        entries = await self.store().list_missed(status=status, since=since, until=until,
                                                 number=q.get("number") or None, limit=limit + 1, offset=offset,
                                                 after=after, pbxs=pbxs)
        page = entries[:limit]
        more = missed_token(MissedKey.of(page[-1])) if len(entries) > limit else None
        return JSONResponse({"missed": [self.notifier.messages.missed_json(e) for e in page], "next": more})

    async def missed_entry(self, request: Request, user: User) -> Response:
        text = request.path_params["entry_id"]
        if not (text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= SQLITE_MAX_INT):
            return api_error(404, "not_found", f"no missed-call entry {text[:30]!r}")  # ids are SQLite's 64 bits
        entry_id = int(text)
        try:
            entry = await self.store().get_missed(entry_id)
            if not belongs(user, entry.pbx):
                return api_error(403, "forbidden", f"missed-call entry {entry_id} is of the PBX {entry.pbx!r}, "
                                 "which you do not belong to")
            history = await self.store().missed_history(entry_id)
        except MissedNotFound as exc:
            return api_error(404, "not_found", str(exc))
        return JSONResponse({"entry": self.notifier.messages.missed_json(entry), "history": [
            {"at": self.notifier.time(h.at), "action": h.action, "by": h.by, "linkedid": h.linkedid,
             "comment": h.comment} for h in history]})


def _after(token: str | None, offset: int) -> str | None:
    """``?after=``, which pages by itself: with an ``offset`` as well, one of them would be ignored."""
    if token and offset:
        raise BadRequest("after and offset page two ways: give one of them (after: the `next` of the last answer)")
    return token
