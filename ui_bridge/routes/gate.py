"""Who may call which endpoint: one policy per route and method, declared in the route table, checked here once.

Why one place: the session lookup, the role check and the Origin check of a write used to open every handler,
eight copies of the same lines, and a new route could forget one. Now a route of the JSON API is an
:class:`ApiRoute` whose every method carries an :class:`Endpoint` (a handler and its :class:`Policy`); the
:class:`Gate` admits or refuses the request before the handler runs, and hands the handler the ``User`` it
looked up (as wazo-call-logd hands each handler its call already looked up). ``tests/ui_bridge/
test_route_policies.py`` walks the table and checks every policy over real HTTP, so a route without one fails.

The checks, in this order (the first that fails answers):

1. a write (``Policy.writes``) must come from the panel's own origin or one in ``[http] allowed_origins``, or
   carry no ``Origin`` at all (not a browser): 403 ``forbidden``. First, so a foreign page's request is refused
   for what it is whatever cookie it rides, before the store is asked about a session;
2. a logged-in route needs a valid session cookie or ``Authorization: Bearer`` token: 401 ``unauthorized``;
3. the user's role must be one the policy names: 403 ``forbidden`` with the policy's own message.

The WebSocket handshake goes through the same checks (``ui_bridge/routes/websocket.py``), answered as plain
text, since a handshake's refusal is not read as JSON.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

from starlette.requests import HTTPConnection, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from store.repository import PANEL_ROLES, ROLES, Role, User
from ui_bridge.settings import HttpSettings

from ..addresses import client_address
from ..sessions import Credential, Sessions

#: The session cookie ``POST /api/login`` sets.
COOKIE = "cti_session"
#: The 401 of every route that needs a login.
LOG_IN_FIRST = "log in first"
#: The 403 of a panel route for an ``integration`` user (a DMS's token calls the integration routes only).
PANEL_ONLY = "this route is for the panel's users; an integration token calls the integration API only"

UserHandler = Callable[[Request, User], Awaitable[Response]]
AnyoneHandler = Callable[[Request], Awaitable[Response]]


def api_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """An API error as every client reads it: ``{"error": {"code", "message"}}``."""
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class Refusal(Exception):
    """A request the gate turns away: its status, code and the message for the client."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message

    def response(self) -> JSONResponse:
        return api_error(self.status, self.code, self.message)


@dataclass(frozen=True, slots=True)
class Policy:
    """Who may call an endpoint.

    ``roles``: the roles admitted, or None for anyone (logged in or not: the login itself, the logout).
    ``refused``: the 403 message for a logged-in user whose role is not in ``roles``.
    ``writes``: for a request that changes something, the 403 message for a foreign ``Origin``; None for a read.
    """

    roles: frozenset[Role] | None
    refused: str = ""
    writes: str | None = None

    @property
    def needs_login(self) -> bool:
        return self.roles is not None


@dataclass(frozen=True, slots=True)
class Endpoint:
    """One method of one route: its policy, and the handler the gate calls once the policy holds."""

    policy: Policy
    call: Callable[[Request, User | None], Awaitable[Response]]


def for_users(handler: UserHandler, *roles: Role, refused: str = "", writes: str | None = None) -> Endpoint:
    """An endpoint for logged-in users of ``roles`` (every panel role when none is named: an ``integration`` token is
    admitted only where a route names that role); the handler gets the user."""
    admitted = frozenset(roles or PANEL_ROLES)
    if not roles:
        refused = refused or PANEL_ONLY
    elif admitted != frozenset(ROLES) and not refused:
        raise ValueError("a route closed to some roles says why in `refused`")

    async def call(request: Request, user: User | None) -> Response:
        assert user is not None, "the gate admits only logged-in users to this endpoint"
        return await handler(request, user)

    return Endpoint(Policy(admitted, refused, writes), call)


def for_anyone(handler: AnyoneHandler, *, writes: str | None = None) -> Endpoint:
    """An endpoint that needs no login (``writes``: the Origin is still checked)."""

    async def call(request: Request, user: User | None) -> Response:
        return await handler(request)

    return Endpoint(Policy(None, "", writes), call)


class Gate:
    """Admits or refuses a request against a policy: the one place the session, role and Origin are checked."""

    def __init__(self, settings: HttpSettings, sessions: Sessions) -> None:
        self.settings = settings
        self.sessions = sessions

    async def credential(self, conn: HTTPConnection) -> Credential | None:
        """The session cookie's or bearer token's credential, as the store has it now (every request checks:
        a revocation from the CLI holds from the next one). A request is a use of its session."""
        return await self.sessions.credential(conn.cookies.get(COOKIE), conn.headers.get("authorization"))

    async def user_of(self, conn: HTTPConnection) -> User | None:
        credential = await self.credential(conn)
        return credential.user if credential is not None else None

    def client_address(self, conn: HTTPConnection) -> str:
        """The real client (``[http] trusted_proxies``): what the login limiter and the log key on."""
        return client_address(conn, self.settings.trusted_proxies)

    def origin_allowed(self, conn: HTTPConnection) -> bool:
        """No Origin (not a browser) or the panel's own, or a configured one."""
        origin = conn.headers.get("origin")
        if origin is None:
            return True
        host = conn.headers.get("host", "")
        own = {f"http://{host}", f"https://{host}"}
        return origin in own or origin in self.settings.allowed_origins

    async def admit(self, conn: HTTPConnection, policy: Policy) -> Credential | None:
        """The request's credential if ``policy`` admits it (None for a route open to anyone); Refusal if not."""
        if policy.writes is not None and not self.origin_allowed(conn):
            raise Refusal(403, "forbidden", policy.writes)
        if policy.roles is None:
            return None
        credential = await self.credential(conn)
        if credential is None:
            raise Refusal(401, "unauthorized", LOG_IN_FIRST)
        if credential.user.role not in policy.roles:
            raise Refusal(403, "forbidden", policy.refused)
        return credential

    def route(self, path: str, **methods: Endpoint) -> ApiRoute:
        """A route of the JSON API: ``gate.route("/api/x", GET=for_users(...), POST=...)``."""
        return ApiRoute(path, self, methods)


class ApiRoute(Route):
    """A Starlette route whose every method has a declared :class:`Endpoint`, called through the gate.

    ``endpoints`` (method → endpoint) is what the policy test reads. HEAD is served as GET, as Starlette does.
    """

    def __init__(self, path: str, gate: Gate, endpoints: Mapping[str, Endpoint]) -> None:
        if not endpoints:
            raise ValueError(f"{path}: a route needs at least one method")
        self.endpoints = {method.upper(): endpoint for method, endpoint in endpoints.items()}
        self.gate = gate
        super().__init__(path, self._dispatch, methods=list(self.endpoints))

    async def _dispatch(self, request: Request) -> Response:
        method = "GET" if request.method == "HEAD" else request.method
        endpoint = self.endpoints[method]  # Starlette answered 405 for a method the route does not have
        try:
            credential = await self.gate.admit(request, endpoint.policy)
        except Refusal as refusal:
            return refusal.response()
        return await endpoint.call(request, credential.user if credential is not None else None)
