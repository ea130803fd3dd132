"""The supervisor's alerts over HTTP: ``GET /api/alerts``, the history (newest first, a page at a time) or the
alerts active now (what the panel shows at start and after a reconnect; then ``alert.*`` messages keep it).

``?status=active|resolved`` (default: both), ``?limit=`` (1 to 200, default 50), ``?before=`` (the ``next`` of the
previous page: an alert's id), ``?pbx=a,b`` (the user's PBXs only: ``ui_bridge/pbx_access.py``). Who may read it
is the route table's business (``ui_bridge/http.py``): admins, and QA users, who get the same messages.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from store.repository import Store, User

from ..api_models import SQLITE_MAX_INT, BadRequest, whole_number
from ..outgoing import Messages
from ..pbx_access import PbxRefused, listing_filter
from .gate import api_error

#: The 403 of ``/api/alerts``, for agents.
ALERTS_ARE_FOR = "the alerts are for admins and QA"
_ACTIVE = {None: None, "": None, "all": None, "active": True, "resolved": False}


class AlertHistory:
    def __init__(self, store: Callable[[], Store], messages: Messages, followed: Sequence[str]) -> None:
        self.store = store
        self.messages = messages
        self.followed = list(followed)

    async def list(self, request: Request, user: User) -> Response:
        q = request.query_params
        try:
            limit = whole_number(q, "limit", 50, 1, 200)
            before = whole_number(q, "before", 0, 1, SQLITE_MAX_INT) or None
            pbxs = listing_filter(user, self.followed, q.get("pbx"))
            status = q.get("status")
            if status not in _ACTIVE:
                raise BadRequest("status is active, resolved or all")
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        except PbxRefused as exc:
            return api_error(exc.status, exc.api_code, exc.message)
        alerts = await self.store().list_alerts(pbxs=pbxs, active=_ACTIVE[status], before=before, limit=limit + 1)
        page = alerts[:limit]
        more = str(page[-1].id) if len(alerts) > limit else None
        return JSONResponse({"alerts": [self.messages.alert_info(a).model_dump(mode="json") for a in page],
                             "next": more})
