"""Call-back reminders over HTTP: ``GET /api/reminders``, what the panel's reminders list shows at start and after a
reconnect (then ``reminder.*`` messages keep it).

``?view=mine`` (the default): the user's own open reminders, by due time (an agent's, an employee's: by their
extension or their user); ``?view=overdue`` (admins): the open reminders escalated to the admins, of their PBXs;
``?view=open`` (admins): every open reminder of their PBXs. Who may read it is the route table's business
(``ui_bridge/http.py``): agents, employees and admins; closing one is the ``reminder.close`` request.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from store.repository import StoreError, User

from ..commands import RequestFailed
from ..reminders import ReminderDesk
from .gate import api_error

#: The 403 of ``/api/reminders``, for QA (and an integration token).
REMINDERS_ARE_FOR = "the reminders are for their assignees (agents, employees) and the admins"
_VIEWS = ("mine", "overdue", "open")


class ReminderRoutes:
    def __init__(self, desk: ReminderDesk) -> None:
        self.desk = desk

    async def list(self, request: Request, user: User) -> Response:
        view = request.query_params.get("view") or "mine"
        if view not in _VIEWS:
            return api_error(400, "bad_request", "view is mine, overdue or open")
        if view != "mine" and user.role != "admin":
            return api_error(403, "forbidden", "only admins see other people's reminders")
        try:
            reminders = await self.desk.listing(user, view)
        except (StoreError, RequestFailed) as exc:
            return api_error(503, "unavailable", f"the store failed or is not open yet: {exc}")
        return JSONResponse({"reminders": [r.model_dump(mode="json") for r in reminders],
                             "now": self.desk.messages.time(self.desk.clock())})
