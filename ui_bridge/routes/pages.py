"""The panel's pages and files: ``/`` (the panel), ``/wallboard``, ``/qa``, ``/login`` and ``/static/...``.

Not API routes: an anonymous visitor of ``/`` is sent to the login form (303), and the panel's files answer
401 as plain text; without a login only what the login page itself loads is served.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.staticfiles import StaticFiles

from .gate import Gate

STATIC = Path(str(resources.files("ui_bridge") / "static"))
#: What the login page loads: the only files served without a login.
PUBLIC_ASSETS = frozenset({"panel.css", "login.js", "net.js", "i18n.js"})
#: Who may open the QA page (``/qa``), as its API (``ui_bridge/http.py``).
QA_PAGE_ROLES = frozenset({"qa", "admin"})
#: The pages a login may return to (``/login?next=/qa``): this site's own, so the login form cannot be made to send a
#: user elsewhere (an open redirect).
RETURN_PAGES = ("/", "/qa", "/wallboard")
#: Every page's opening tag, where the centre's default language goes (``data-lang-default``, read by i18n.js).
HTML_TAG = '<html lang="ru">'


class Pages:
    def __init__(self, gate: Gate, language: str = "auto") -> None:
        self.gate = gate
        self.static = StaticFiles(directory=STATIC)
        # Each page read once, with ``[http] language`` (the panel's language for a browser whose user has not
        # chosen one) on its <html>; "auto": none, the browser's preference decides.
        tag = HTML_TAG if language == "auto" else f'<html lang="{language}" data-lang-default="{language}">'
        self.pages = {name: (STATIC / name).read_text(encoding="utf-8").replace(HTML_TAG, tag, 1)
                      for name in ("index.html", "wallboard.html", "login.html", "qa.html")}

    def page(self, name: str) -> Response:
        return HTMLResponse(self.pages[name], headers={"Cache-Control": "no-store"})

    async def index(self, request: Request) -> Response:
        if await self.gate.user_of(request) is None:
            return RedirectResponse("/login", status_code=303)
        return self.page("index.html")

    @staticmethod
    def to_login(page: str) -> Response:
        """To the login form, which comes back to ``page`` once logged in (``login.js`` reads ``next``)."""
        return RedirectResponse("/login" if page == "/" else f"/login?next={page}", status_code=303)

    async def wallboard(self, request: Request) -> Response:
        """The wallboard (``/wallboard``): the supervisor's figures in large type, no controls, for a TV. Its page
        needs a login like the panel's; its figures come from ``GET /api/supervisor`` and the socket, which admit
        admins and QA (a TV logs in as a QA user: it can then read, never act on a call)."""
        if await self.gate.user_of(request) is None:
            return self.to_login("/wallboard")
        return self.page("wallboard.html")

    async def qa(self, request: Request) -> Response:
        """The QA page (``/qa``): replay, transcript, comments, scoring, search. QA users and admins only: an agent
        or an employee gets a 403 here as from every route of its API (``routes/qa.py``)."""
        user = await self.gate.user_of(request)
        if user is None:
            return self.to_login("/qa")
        if user.role not in QA_PAGE_ROLES:
            return PlainTextResponse("the QA page is for QA and admins", status_code=403)
        return self.page("qa.html")

    async def login_page(self, request: Request) -> Response:
        return self.page("login.html")

    async def asset(self, request: Request) -> Response:
        """The panel's files; without a login only what the login page itself loads."""
        name = request.path_params["name"]
        if name not in PUBLIC_ASSETS and await self.gate.user_of(request) is None:
            return PlainTextResponse("log in first", status_code=401)
        return await self.static.get_response(name, request.scope)
