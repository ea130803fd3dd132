"""``GET /api/health``: the daemon's health for admins (the AMI link, each subscriber's counts, the store's backlog).

The counts come from the daemon (``companion/daemon.py``: ``Daemon.health``); a panel run without a daemon
(a test bench) has none to report and answers 404.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from store.repository import User

from ..api_models import Health
from .gate import api_error

#: The 403 for agents and QA.
FOR_ADMINS = "the daemon's health is for admins"


class HealthReport:
    def __init__(self, health: Callable[[], Health] | None) -> None:
        self._health = health

    async def read(self, request: Request, user: User) -> Response:
        if self._health is None:
            return api_error(404, "not_found", "this panel runs without a daemon to report on")
        return JSONResponse(self._health().model_dump(), headers={"Cache-Control": "no-store"})
