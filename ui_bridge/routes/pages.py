"""The panel's pages and files: ``/`` (the panel), ``/wallboard``, ``/login`` and ``/static/...``.

Not API routes: an anonymous visitor of ``/`` is sent to the login form (303), and the panel's files answer
401 as plain text; without a login only what the login page itself loads is served.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from starlette.requests import Request
from starlette.responses import FileResponse, PlainTextResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from .gate import Gate

STATIC = Path(str(resources.files("ui_bridge") / "static"))
#: What the login page loads: the only files served without a login.
PUBLIC_ASSETS = frozenset({"panel.css", "login.js", "net.js"})


class Pages:
    def __init__(self, gate: Gate) -> None:
        self.gate = gate
        self.static = StaticFiles(directory=STATIC)

    async def index(self, request: Request) -> Response:
        if await self.gate.user_of(request) is None:
            return RedirectResponse("/login", status_code=303)
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def wallboard(self, request: Request) -> Response:
        """The wallboard (``/wallboard``): the supervisor's figures in large type, no controls, for a TV. Its page
        needs a login like the panel's; its figures come from ``GET /api/supervisor`` and the socket, which admit
        admins and QA (a TV logs in as a QA user: it can then read, never act on a call)."""
        if await self.gate.user_of(request) is None:
            return RedirectResponse("/login", status_code=303)
        return FileResponse(STATIC / "wallboard.html", headers={"Cache-Control": "no-store"})

    async def login_page(self, request: Request) -> Response:
        return FileResponse(STATIC / "login.html", headers={"Cache-Control": "no-store"})

    async def asset(self, request: Request) -> Response:
        """The panel's files; without a login only what the login page itself loads."""
        name = request.path_params["name"]
        if name not in PUBLIC_ASSETS and await self.gate.user_of(request) is None:
            return PlainTextResponse("log in first", status_code=401)
        return await self.static.get_response(name, request.scope)
