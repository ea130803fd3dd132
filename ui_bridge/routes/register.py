"""The register a team shares over HTTP: ``GET /api/missed/groups``, the open entries grouped by caller.

One row per caller and PBX (a withheld caller's entries each alone), newest first, with the count, the first and
last time, the reasons, the entries themselves, who is calling the number back now (``claim``) and what earlier
call-backs came to (``results``): the grouping is the store's (``store/register_claims.py``). Pages by cursor like
the other listings (``next`` → ``?after=``); ``?pbx=a,b`` narrows to those of the user's PBXs. Admins and QA (the
route table, ``ui_bridge/http.py``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from store.repository import Store, User

from ..api_models import BadRequest, whole_number
from ..cursors import after_group, group_token
from ..outgoing import Messages
from ..pbx_access import PbxRefused, listing_filter
from ..register import group_json
from .gate import api_error


class SharedRegisterRoutes:
    def __init__(self, store: Callable[[], Store], messages: Messages, followed: Sequence[str]) -> None:
        self.store = store
        self.messages = messages
        self.followed = list(followed)

    async def groups(self, request: Request, user: User) -> Response:
        q = request.query_params
        try:
            limit = whole_number(q, "limit", 100, 1, 500)
            after = after_group(q.get("after"))
            pbxs = listing_filter(user, self.followed, q.get("pbx"))
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        except PbxRefused as exc:
            return api_error(exc.status, exc.api_code, exc.message)
        groups = await self.store().list_missed_groups(pbxs=pbxs, limit=limit + 1, after=after)
        page = groups[:limit]
        more = group_token(page[-1].key) if len(groups) > limit else None
        return JSONResponse({"groups": [group_json(self.messages, g) for g in page], "next": more})
