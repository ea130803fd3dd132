"""Every route of the JSON API declares who may call it, and the gate holds each one to it over real HTTP.

The routes are read from the running panel's own route table, so a route added later is checked without this
file naming it: it must be an ``ApiRoute`` with a policy per method (a plain ``Route`` under ``/api`` fails
here), its policy must be the access the docs give (``docs/protocol.md``, ``docs/panel.md``: the table below),
and then, over real loopback HTTP against the whole system, for every route and method:

- without a login: 401 ``unauthorized`` (routes that need one);
- a role the policy does not admit: 403 ``forbidden`` with the policy's message;
- a role it admits: never refused by the gate;
- a write from a foreign page (``Origin: http://evil.example``) riding an admitted user's cookie: 403, and
  nothing changed.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import websockets
from starlette.routing import Route, WebSocketRoute

from cti.complaints import ComplaintFilter
from store.repository import LOGIN_ROLES, PANEL_ROLES, ROLES, User
from tests.panel_env import PanelEnv, panel_env
from tests.ui_bridge.wsclient import session_cookie
from ui_bridge.auth import hash_password, new_token, token_hash
from ui_bridge.routes.gate import LOG_IN_FIRST, ApiRoute, Endpoint

TRACE = "13-blind-transfer-redirect"  # never started: nothing but the requests below happens
FOREIGN = "http://evil.example"
#: One user per role (tests/panel_env.py; the integration user is made with its API token in :func:`callers`).
USER_OF_ROLE = {"agent": "anna", "admin": "admin", "qa": "qa", "integration": "alfa-auto", "employee": "elena"}
#: Every panel role: what a route naming no role admits (an integration token is admitted only where it is named).
EVERYONE = frozenset(PANEL_ROLES)

#: Who may call what, as the docs say: (path, method) → the roles admitted (None: anyone, no login), and
#: whether it changes something (then a foreign Origin is refused). A new route is added here with its docs.
ACCESS: dict[tuple[str, str], tuple[frozenset[str] | None, bool]] = {
    ("/api/login", "POST"): (None, True),
    ("/api/logout", "POST"): (None, True),
    ("/api/me", "GET"): (frozenset(LOGIN_ROLES), False),  # an employee's panel asks who logged in
    ("/api/health", "GET"): (frozenset({"admin"}), False),
    # The CRM push (docs/crm.md#watching-the-push): admins.
    ("/api/crm", "GET"): (frozenset({"admin"}), False),
    ("/api/crm/requests/{item_id}/retry", "POST"): (frozenset({"admin"}), True),
    # 1C's API (docs/crm.md#1c): its integration token, and admins; a recording to a signed link: anyone holding one.
    ("/api/crm/1c/events", "GET"): (frozenset({"integration", "admin"}), False),
    ("/api/crm/1c/calls", "POST"): (frozenset({"integration", "admin"}), True),
    ("/crm/recording/{token}", "GET"): (None, False),
    ("/api/calls", "GET"): (EVERYONE, False),
    ("/api/missed", "GET"): (frozenset({"admin", "qa"}), False),
    ("/api/missed/{entry_id}", "GET"): (frozenset({"admin", "qa"}), False),
    ("/api/missed/groups", "GET"): (frozenset({"admin", "qa"}), False),
    ("/api/supervisor", "GET"): (frozenset({"admin", "qa"}), False),
    ("/api/alerts", "GET"): (frozenset({"admin", "qa"}), False),
    ("/api/reminders", "GET"): (frozenset({"agent", "employee", "admin"}), False),
    ("/api/contacts", "GET"): (EVERYONE, False),
    ("/api/contacts", "POST"): (frozenset({"agent", "admin"}), True),
    ("/api/calls/{linkedid}/contact", "POST"): (frozenset({"agent", "admin"}), True),
    ("/api/contacts/register", "GET"): (frozenset({"agent", "admin", "qa"}), False),
    ("/api/contacts/register/{contact_id}", "GET"): (frozenset({"agent", "admin", "qa"}), False),
    ("/api/contacts/register/{contact_id}/stages", "POST"): (frozenset({"admin", "integration"}), True),
    ("/api/reports/{name}", "GET"): (frozenset({"admin", "qa"}), False),
    # The QA page's API (docs/transcription.md#the-qa-page): QA and admins, the audio too.
    ("/api/qa/checklist", "GET"): (frozenset({"admin", "qa"}), False),
    ("/api/qa/report", "GET"): (frozenset({"admin", "qa"}), False),
    ("/api/transcripts/search", "GET"): (frozenset({"admin", "qa"}), False),
    ("/api/calls/{pbx}/{linkedid}/transcript", "GET"): (frozenset({"admin", "qa"}), False),
    ("/api/calls/{pbx}/{linkedid}/audio/{index}", "GET"): (frozenset({"admin", "qa"}), False),
    ("/api/calls/{pbx}/{linkedid}/comments", "GET"): (frozenset({"admin", "qa"}), False),
    ("/api/calls/{pbx}/{linkedid}/comments", "POST"): (frozenset({"admin", "qa"}), True),
    ("/api/calls/{pbx}/{linkedid}/scores", "GET"): (frozenset({"admin", "qa"}), False),
    ("/api/calls/{pbx}/{linkedid}/scores", "POST"): (frozenset({"admin", "qa"}), True),
    # Complaints (docs/complaints.md#api): read by the panel's users, worked on by agents, employees and admins, filed
    # by them and by the integration API; the card read by the integration that filed it.
    ("/api/complaints", "GET"): (frozenset({"agent", "employee", "admin", "qa"}), False),
    ("/api/complaints", "POST"): (frozenset({"agent", "employee", "admin", "integration"}), True),
    ("/api/complaints/options", "GET"): (frozenset({"agent", "employee", "admin", "qa"}), False),
    ("/api/complaints/from-call", "GET"): (frozenset({"agent", "employee", "admin"}), False),
    ("/api/complaints/tasks", "GET"): (frozenset({"agent", "employee", "admin"}), False),
    ("/api/complaints/overdue", "GET"): (frozenset({"agent", "employee", "admin"}), False),
    ("/api/complaints/report", "GET"): (frozenset({"agent", "employee", "admin", "qa"}), False),
    ("/api/complaints/attachments/{attachment_id}", "GET"): (frozenset({"agent", "employee", "admin", "qa"}), False),
    ("/api/complaints/{complaint_id}", "GET"): (frozenset({"agent", "employee", "admin", "qa", "integration"}), False),
    **{(f"/api/complaints/{{complaint_id}}/{action}", "POST"): (frozenset({"agent", "employee", "admin"}), True)
       for action in ("edit", "move", "hand-over", "answer", "reassign", "plan", "attachments")},
    ("/api/complaints/{complaint_id}/plan/{row}", "POST"): (frozenset({"agent", "employee", "admin"}), True),
    ("/api/complaints/{complaint_id}/plan/{row}", "DELETE"): (frozenset({"agent", "employee", "admin"}), True),
}
#: The routes that are not the JSON API: pages and files (tests/ui_bridge/test_http.py), the WebSocket, and the
#: probes and metrics, which need no login (their access: tests/ui_bridge/test_ops.py).
OTHER_ROUTES = {"/", "/wallboard", "/qa", "/login", "/static/{name:path}", "/ws", "/healthz", "/readyz", "/metrics",
                # Bitrix24 calls these with no session: its application_token is checked (routes/crm_bitrix24.py)
                "/crm/bitrix24/install", "/crm/bitrix24/event"}

#: What a path's parameters are filled with.
PARAMS = {"{entry_id}": "1", "{linkedid}": "1700000000.1", "{contact_id}": "1", "{pbx}": "main", "{index}": "0",
          "{complaint_id}": "1", "{attachment_id}": "1", "{row}": "0", "{item_id}": "1",
          "{token}": "not-a-link"}
#: A write's body that would change something if the gate let it through (sent from the foreign page).
REAL_BODIES: dict[str, dict[str, Any]] = {
    "/api/login": {"name": "anna", "password": "anna-password-1"},
    "/api/contacts": {"name": "Подделка Чужой Страницы", "phones": ["79160009999"]},
    "/api/calls/{linkedid}/contact": {"contact_id": 1},
    "/api/contacts/register/{contact_id}/stages": {"stage": "visit"},
    "/api/calls/{pbx}/{linkedid}/comments": {"at_second": 1.0, "text": "from a foreign page"},
    "/api/calls/{pbx}/{linkedid}/scores": {"answers": {"greeting": 1}},
    "/api/complaints": {"type": "quality", "client_name": "Подделка Чужой Страницы", "comment": "x"},
    "/api/crm/1c/calls": {"extension": "101", "number": "89161234567"},
}


def api_endpoints(env: PanelEnv) -> list[tuple[str, str, Endpoint]]:
    panel = env.running.daemon.panel
    assert panel is not None
    return [(route.path, method, endpoint) for route in panel.app.routes if isinstance(route, ApiRoute)
            for method, endpoint in route.endpoints.items()]


async def recording_link_token(env: PanelEnv) -> str:
    """A recording link's token the panel signed (for a call the journal does not hold: a 404 to anyone)."""
    panel = env.running.daemon.panel
    assert panel is not None
    await panel.links.load(env.store)
    return panel.links.token(PARAMS["{pbx}"], PARAMS["{linkedid}"], 0)


def url_of(path: str) -> str:
    for name, value in PARAMS.items():
        path = path.replace(name, value)
    return path


@asynccontextmanager
async def callers(env: PanelEnv) -> AsyncIterator[tuple[httpx.AsyncClient, dict[str, str]]]:
    """One HTTP client without a cookie jar, and a session cookie per panel role (each sent by hand); for the
    integration role, which never logs in, its API token (``Bearer …``)."""
    cookies = {role: await session_cookie(env, name) for role, name in USER_OF_ROLE.items() if role in LOGIN_ROLES}
    await env.store.add_user(User(name=USER_OF_ROLE["integration"], role="integration"))
    token = new_token()
    await env.store.add_token(USER_OF_ROLE["integration"], token_hash(token), "DMS")
    cookies["integration"] = f"Bearer {token}"
    async with httpx.AsyncClient(base_url=env.url) as http:
        yield http, cookies


async def send(http: httpx.AsyncClient, method: str, path: str, *, cookie: str | None = None,
               origin: str | None = None, body: dict[str, Any] | None = None) -> httpx.Response:
    http.cookies.clear()  # only the cookie given, never one a response set
    headers = {"Content-Type": "application/json"}
    if cookie is not None and cookie.startswith("Bearer "):
        headers["Authorization"] = cookie
    elif cookie is not None:
        headers["Cookie"] = f"cti_session={cookie}"
    if origin is not None:
        headers["Origin"] = origin
    content = json.dumps(body if body is not None else {}).encode() if method == "POST" else None
    return await http.request(method, url_of(path), headers=headers, content=content)


def refused(response: httpx.Response, status: int, message: str) -> bool:
    if response.status_code != status:
        return False
    return bool(response.json() == {"error": {"code": "forbidden" if status == 403 else "unauthorized",
                                              "message": message}})


async def test_every_api_route_declares_the_access_the_docs_give() -> None:
    async with panel_env([TRACE]) as env:
        panel = env.running.daemon.panel
        assert panel is not None
        undeclared = [r.path for r in panel.app.routes
                      if isinstance(r, Route) and r.path.startswith("/api") and not isinstance(r, ApiRoute)]
        assert not undeclared, f"API routes without a declared policy: {undeclared}"
        others = {r.path for r in panel.app.routes
                  if not isinstance(r, ApiRoute) and isinstance(r, Route | WebSocketRoute)}
        assert others == OTHER_ROUTES
        declared = {(path, method): (endpoint.policy.roles, endpoint.policy.writes is not None)
                    for path, method, endpoint in api_endpoints(env)}
        assert declared == ACCESS
        for path, method, endpoint in api_endpoints(env):
            policy = endpoint.policy
            if policy.roles is not None and policy.roles != EVERYONE:
                assert policy.refused, f"{method} {path}: a 403 says why"


async def test_the_gate_holds_every_api_route_to_its_policy_over_http() -> None:
    async with panel_env([TRACE]) as env, callers(env) as (http, cookies):
        PARAMS["{token}"] = await recording_link_token(env)  # its refusals are about the link, not the caller
        for path, method, endpoint in api_endpoints(env):
            policy, where = endpoint.policy, f"{method} {path}"
            admitted = sorted(policy.roles) if policy.roles is not None else []
            if policy.roles is not None:
                response = await send(http, method, path)
                assert refused(response, 401, LOG_IN_FIRST), f"{where} without a login: {response.text}"
                for role in sorted(set(ROLES) - policy.roles):
                    response = await send(http, method, path, cookie=cookies[role])
                    assert refused(response, 403, policy.refused), f"{where} as {role}: {response.text}"
            as_whom: list[str | None] = [*admitted] if policy.roles is not None else [None]
            for role in as_whom:
                cookie = cookies[role] if role is not None else None
                response = await send(http, method, path, cookie=cookie, origin=env.url)
                assert response.status_code not in (401, 403) or not any(
                    refused(response, status, message) for status, message in
                    ((401, LOG_IN_FIRST), (403, policy.refused), (403, policy.writes or ""))), \
                    f"{where} as {role or 'anyone'} from the panel's own page: {response.text}"
                if policy.writes is not None:
                    response = await send(http, method, path, cookie=cookie, origin=FOREIGN,
                                          body=REAL_BODIES.get(path))
                    assert refused(response, 403, policy.writes), f"{where} as {role} from {FOREIGN}: {response.text}"
                    assert "set-cookie" not in response.headers, where
                else:  # a read is not refused for its origin (a browser keeps a foreign page from reading it)
                    response = await send(http, method, path, cookie=cookie, origin=FOREIGN)
                    assert response.status_code not in (401, 403), f"{where} as {role} from {FOREIGN}"

        # Nothing the foreign page sent happened: no contact made, every session still valid.
        assert await env.store.find_contacts("Подделка", limit=5) == []
        assert await env.store.count_complaints(ComplaintFilter(text="Подделка")) == 0
        for role, cookie in cookies.items():
            if role not in LOGIN_ROLES:
                continue
            response = await send(http, "GET", "/api/me", cookie=cookie)
            assert response.status_code == 200 and response.json()["user"]["role"] == role


@pytest.mark.parametrize("role", sorted(LOGIN_ROLES))
async def test_the_websocket_handshake_is_held_to_the_same_checks(role: str) -> None:
    async with panel_env([TRACE]) as env:
        with pytest.raises(websockets.InvalidStatus) as anonymous:
            await websockets.connect(env.ws_url)
        assert anonymous.value.response.status_code == 401
        cookie = {"Cookie": f"cti_session={await session_cookie(env, USER_OF_ROLE[role])}"}
        with pytest.raises(websockets.InvalidStatus) as foreign:
            await websockets.connect(env.ws_url, origin=FOREIGN, additional_headers=cookie)  # type: ignore[arg-type]
        assert foreign.value.response.status_code == 403
        async with websockets.connect(env.ws_url, origin=env.url, additional_headers=cookie) as conn:  # type: ignore[arg-type]
            hello = json.loads(await conn.recv())
            assert hello["type"] == "hello" and hello["user"]["role"] == role


async def test_an_integration_token_opens_no_websocket_and_logs_in_nowhere() -> None:
    async with panel_env([TRACE]) as env, callers(env) as (http, cookies):
        with pytest.raises(websockets.InvalidStatus) as refused_socket:
            await websockets.connect(env.ws_url, additional_headers={"Authorization": cookies["integration"]})
        assert refused_socket.value.response.status_code == 403
        await env.store.update_user(USER_OF_ROLE["integration"], password_hash=hash_password("dms-password-1"))
        response = await http.post("/api/login", json={"name": USER_OF_ROLE["integration"],
                                                       "password": "dms-password-1"})
        assert response.status_code == 403 and "API token" in response.json()["error"]["message"]
        assert "set-cookie" not in response.headers
