"""``GET /api/health``: the daemon's health for admins (each PBX's AMI link, each subscriber's counts, the store's
backlog, each CRM's outbox: ``ui_bridge/crm_watch.py``).

The counts come from the daemon (``companion/daemon.py``: ``Daemon.health``); a panel run without a daemon
(a test bench) has none to report and answers 404.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from store.repository import User

from ..api_models import Health, PbxLink
from ..crm_watch import CrmWatch, StoreNotOpen
from ..mirror import Mirror
from ..pbxs import PbxHandles
from .gate import api_error

#: The 403 for agents and QA.
FOR_ADMINS = "the daemon's health is for admins"


class HealthReport:
    def __init__(self, health: Callable[[], Health] | None, pbxs: PbxHandles, mirror: Mirror | None = None,
                 crm: CrmWatch | None = None) -> None:
        self._health = health
        self.crm = crm
        self.pbxs = pbxs
        self.mirror = mirror  # who follows the PBXs this node does not (ui_bridge/mirror.py)

    async def read(self, request: Request, user: User) -> Response:
        if self._health is None:
            return api_error(404, "not_found", "this panel runs without a daemon to report on")
        mirror = self.mirror
        links = [PbxLink(id=h.id, name=h.label, connected=h.connected(), following=h.following(),
                         followed_elsewhere=not h.following() and mirror is not None
                         and mirror.holder_of(h.id) is not None)
                 for h in self.pbxs.values()]
        update: dict[str, object] = {"pbxs": links}
        if self.crm is not None and self.crm.configured:
            try:
                update["crm"] = await self.crm.read()
            except StoreNotOpen:
                update["crm"] = self.crm.last
        health = self._health().model_copy(update=update)
        return JSONResponse(health.model_dump(), headers={"Cache-Control": "no-store"})
