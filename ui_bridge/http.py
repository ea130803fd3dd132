"""The panel's whole HTTP surface in one routes list: pages, the JSON API and the WebSocket endpoint.

Authentication: a login sets an HttpOnly, SameSite=Strict session cookie; thin clients that are not
browsers send ``Authorization: Bearer <token>`` (``cti users token``). Nothing but the login page and its
static files answers without one. Requests that change something and every WebSocket handshake must come
from the panel's own origin or one listed in ``[http] allowed_origins`` (a page elsewhere cannot use an
agent's cookie to place calls). API errors are ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from cti import control
from cti.context import CallView
from cti.effects import AgentStateChanged
from store.repository import CallKey, ContactNotFound, MissedKey, MissedNotFound, Store, User
from ui_bridge.settings import HttpSettings

from . import messages as m
from .addresses import client_address
from .api_models import (
    SQLITE_MAX_INT,
    AttachBody,
    BadRequest,
    Health,
    LoginBody,
    NewContact,
    range_and_page,
    read_model,
    whole_number,
)
from .auth import LoginThrottle, Throttled, dummy_hash, verify_password
from .cards import CardService
from .commands import Commands, RequestFailed
from .cursors import after_call, after_missed, call_token, missed_token
from .hub import CLOSE_POLICY, Client, Hub, Scope, Transport
from .jsonin import BadJson, parse_json
from .limits import EdgeMiddleware
from .notifier import Notifier
from .outgoing import contact_info, user_info
from .sessions import Sessions, SocketSweep

log = logging.getLogger(__name__)

STATIC = Path(str(resources.files("ui_bridge") / "static"))
COOKIE = "cti_session"
#: What the login page loads: the only files served without a login.
PUBLIC_ASSETS = frozenset({"panel.css", "login.js", "net.js"})
MAX_REQUESTS_IN_FLIGHT = 16


def api_error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


class StarletteTransport(Transport):
    def __init__(self, websocket: WebSocket) -> None:
        self.websocket = websocket

    async def send(self, frame: str) -> None:
        await self.websocket.send_text(frame)

    async def close(self, code: int, reason: str) -> None:
        await self.websocket.close(code, reason)

    def abort(self) -> None:
        abort = self.websocket.scope.get("extensions", {}).get("cti.abort", {}).get("abort")
        if abort is not None:
            abort()


class Panel:
    """The HTTP/WebSocket edge: authenticates, serves, and hands requests to ``Commands``."""

    def __init__(self, settings: HttpSettings, hub: Hub, notifier: Notifier, commands: Commands,
                 store: Callable[[], Store | None], agent_states: Callable[[], list[AgentStateChanged]],
                 tls: bool = False, cards: CardService | None = None,
                 calls: CallView | None = None, health: Callable[[], Health] | None = None) -> None:
        self.settings = settings
        self.hub = hub
        self.notifier = notifier
        self.commands = commands
        self._store = store  # the daemon opens the store after the panel is built
        self._agent_states = agent_states
        self.tls = tls
        self.cards = cards
        self.live_calls = calls  # the calls in progress, as frozen snapshots
        self._health = health  # the daemon's counts (the pipeline's subscribers, the store's backlog)
        # Sessions live in the store (they survive a restart; the CLI revokes them); the sweep closes the
        # sockets of revoked or expired ones (the daemon runs ``sweep.run`` in its TaskGroup).
        self.sessions = Sessions(store, settings.session_hours * 3600)
        self.sweep = SocketSweep(hub, store)
        # In memory, per daemon: see ui_bridge/auth.py.
        self.limiter = LoginThrottle(settings.login_max_failures, settings.login_window_seconds)
        self.app = Starlette(routes=[
            Route("/", self.index),
            Route("/login", self.login_page),
            Route("/api/login", self.login, methods=["POST"]),
            Route("/api/logout", self.logout, methods=["POST"]),
            Route("/api/me", self.me),
            Route("/api/health", self.health),
            Route("/api/calls", self.calls),
            Route("/api/missed", self.missed),
            Route("/api/missed/{entry_id}", self.missed_entry),  # not {:int}: 5,000 digits made Starlette fail
            Route("/api/contacts", self.contacts, methods=["GET", "POST"]),
            Route("/api/calls/{linkedid}/contact", self.attach_contact, methods=["POST"]),
            WebSocketRoute("/ws", self.websocket),
            Route("/static/{name:path}", self.asset),
        ], middleware=[Middleware(EdgeMiddleware, settings=settings)])  # hosts, body limits, headers: limits.py
        self.static = StaticFiles(directory=STATIC)

    # -- who is asking ---------------------------------------------------------------------------------

    def store(self) -> Store:
        store = self._store()
        if store is None:
            raise RuntimeError("the store is not open")
        return store

    async def user_of(self, conn: HTTPConnection) -> User | None:
        """The user of the request's session cookie or bearer token, as the store has it now (every request
        checks: a revocation from the CLI holds from the next one). A request is a use of its session."""
        credential = await self.sessions.credential(conn.cookies.get(COOKIE), conn.headers.get("authorization"))
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

    # -- pages -------------------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        if await self.user_of(request) is None:
            return RedirectResponse("/login", status_code=303)
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})

    async def asset(self, request: Request) -> Response:
        """The panel's files; without a login only what the login page itself loads."""
        name = request.path_params["name"]
        if name not in PUBLIC_ASSETS and await self.user_of(request) is None:
            return PlainTextResponse("log in first", status_code=401)
        return await self.static.get_response(name, request.scope)

    async def login_page(self, request: Request) -> Response:
        return FileResponse(STATIC / "login.html", headers={"Cache-Control": "no-store"})

    # -- API ----------------------------------------------------------------------------------------------

    async def login(self, request: Request) -> Response:
        if not self.origin_allowed(request):
            return api_error(403, "forbidden", "this origin may not log in here")
        try:
            body = await read_model(request, LoginBody, hint='send JSON {"name": "...", "password": "..."}: ')
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        name, password = body.name, body.password
        address = self.client_address(request)
        try:
            # Counted and reserved here, before the first await: parallel guesses cannot outrun the count.
            attempt = self.limiter.begin(name, address)
        except Throttled as exc:
            wait = max(1, math.ceil(exc.retry_after))
            log.debug("panel: login for %r from %s throttled for %d s", name, address, wait)
            return api_error(429, "rate_limited", f"too many failed logins; try again in {wait} s",
                             {"Retry-After": str(wait)})
        with attempt:  # given back if the check fails for another reason (store error, cancelled)
            user = await self.store().get_user(name)
            stored = user.password_hash if user is not None else dummy_hash()
            ok = await asyncio.to_thread(verify_password, password, stored)
            if user is None or not ok:
                attempt.failed()
                log.warning("panel: failed login for %r from %s", name, address)
                return api_error(401, "bad_credentials", "wrong name or password")
            attempt.succeeded()
        token = await self.sessions.start(user, address)
        log.info("panel: %s (%s) logged in from %s", user.name, user.role, address)
        response = JSONResponse({"user": _user_info(user).model_dump()})
        response.set_cookie(COOKIE, token, max_age=int(self.sessions.lifetime), httponly=True,
                            samesite="strict", secure=self.tls, path="/")
        return response

    async def logout(self, request: Request) -> Response:
        if not self.origin_allowed(request):
            return api_error(403, "forbidden", "this origin may not log out here")
        token = request.cookies.get(COOKIE)
        ended = await self.sessions.end(token)
        if ended is not None:
            self.hub.drop_credential(ended)
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def me(self, request: Request) -> Response:
        user = await self.user_of(request)
        if user is None:
            return api_error(401, "unauthorized", "log in first")
        return JSONResponse({"user": _user_info(user).model_dump()})

    async def health(self, request: Request) -> Response:
        """The daemon's health for admins: the AMI link, each pipeline subscriber's counts, the store's backlog."""
        user = await self.user_of(request)
        if user is None:
            return api_error(401, "unauthorized", "log in first")
        if user.role != "admin":
            return api_error(403, "forbidden", "the daemon's health is for admins")
        if self._health is None:
            return api_error(404, "not_found", "this panel runs without a daemon to report on")
        return JSONResponse(self._health().model_dump(), headers={"Cache-Control": "no-store"})

    async def calls(self, request: Request) -> Response:
        user = await self.user_of(request)
        if user is None:
            return api_error(401, "unauthorized", "log in first")
        q = request.query_params
        try:
            since, until, limit, offset = range_and_page(q, default_limit=100)
            after = after_call(_after(q.get("after"), offset))
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        agent = q.get("agent") or None
        if user.role == "agent":
            agent = user.extension  # agents see their own calls only
        # One row more than the page: whether there is a next page, without a last empty one to fetch.
        rows = await self.store().list_calls(
            since=since, until=until, number=q.get("number") or None, agent=agent,
            direction=q.get("direction") or None, outcome=q.get("outcome") or None,
            limit=limit + 1, offset=offset, newest_first=True, after=after,
        )
        page = rows[:limit]
        more = call_token(CallKey.of(page[-1])) if len(rows) > limit else None
        return JSONResponse({"calls": [r.to_json(self.notifier.tz) for r in page], "next": more})

    async def _refused_from_register(self, request: Request) -> Response | None:
        """The missed-call register is read by admins and QA; None when this request may."""
        user = await self.user_of(request)
        if user is None:
            return api_error(401, "unauthorized", "log in first")
        if user.role == "agent":
            return api_error(403, "forbidden", "the missed-call register is for admins and QA")
        return None

    async def missed(self, request: Request) -> Response:
        refused = await self._refused_from_register(request)
        if refused is not None:
            return refused
        q = request.query_params
        try:
            since, until, limit, offset = range_and_page(q, default_limit=200)
            after = after_missed(_after(q.get("after"), offset))
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        status = q.get("status") or None
        if status not in (None, "open", "closed"):
            return api_error(400, "bad_request", "status is open or closed")
        entries = await self.store().list_missed(status=status, since=since, until=until,
                                                 number=q.get("number") or None, limit=limit + 1, offset=offset,
                                                 after=after)
        page = entries[:limit]
        more = missed_token(MissedKey.of(page[-1])) if len(entries) > limit else None
        return JSONResponse({"missed": [e.to_json(self.notifier.tz) for e in page], "next": more})

    async def missed_entry(self, request: Request) -> Response:
        refused = await self._refused_from_register(request)
        if refused is not None:
            return refused
        text = request.path_params["entry_id"]
        if not (text.isascii() and text.isdigit() and len(text) <= 19 and int(text) <= SQLITE_MAX_INT):
            return api_error(404, "not_found", f"no missed-call entry {text[:30]!r}")  # ids are SQLite's 64 bits
        entry_id = int(text)
        try:
            entry = await self.store().get_missed(entry_id)
            history = await self.store().missed_history(entry_id)
        except MissedNotFound as exc:
            return api_error(404, "not_found", str(exc))
        tz = self.notifier.tz
        return JSONResponse({"entry": entry.to_json(tz), "history": [
            {"at": self.notifier.time(h.at), "action": h.action, "by": h.by, "linkedid": h.linkedid,
             "comment": h.comment} for h in history]})

    # -- the client directory ----------------------------------------------------------------------------------

    async def contacts(self, request: Request) -> Response:
        """GET ?q=: search by number, surname, plate or its digits. POST: create a contact (agents, admins)."""
        user = await self.user_of(request)
        if user is None:
            return api_error(401, "unauthorized", "log in first")
        if request.method == "GET":
            try:
                limit = whole_number(request.query_params, "limit", 20, 1, 200)
            except BadRequest as exc:
                return api_error(400, "bad_request", str(exc))
            found = await self.store().find_contacts(request.query_params.get("q", ""), limit=limit)
            return JSONResponse({"contacts": [contact_info(c).model_dump() for c in found]})
        if user.role == "qa":
            return api_error(403, "forbidden", "QA users do not edit the directory")
        if not self.origin_allowed(request):
            return api_error(403, "forbidden", "this origin may not change the directory")
        try:
            draft = await read_model(request, NewContact)
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        contact = await self.store().add_contact(draft.contact())
        return JSONResponse({"contact": contact_info(contact).model_dump()}, status_code=201)

    async def attach_contact(self, request: Request) -> Response:
        """Attach a contact to a call; a call in progress gets a fresh card (``call.card``) at once."""
        user = await self.user_of(request)
        if user is None:
            return api_error(401, "unauthorized", "log in first")
        if user.role == "qa":
            return api_error(403, "forbidden", "QA users do not edit the directory")
        if not self.origin_allowed(request):
            return api_error(403, "forbidden", "this origin may not change the directory")
        try:
            contact_id = (await read_model(request, AttachBody, hint='send JSON {"contact_id": N}: ')).contact_id
        except BadRequest as exc:
            return api_error(400, "bad_request", str(exc))
        linkedid = request.path_params["linkedid"]
        call = self.live_calls.get(linkedid) if self.live_calls is not None else None
        if call is None and not await self._in_journal(linkedid):
            return api_error(404, "not_found", f"no call {linkedid[:80]!r}: neither in progress nor in the journal")
        participants = call.audience if call is not None else frozenset()
        if user.role == "agent" and (call is None or not control.may_see(call, _actor(user))):
            return api_error(403, "forbidden", "agents attach contacts to calls their phone is on")
        try:
            await self.store().attach_call(linkedid, contact_id, by=user.name)
        except ContactNotFound as exc:
            return api_error(404, "not_found", str(exc))
        card = None
        if call is not None and self.cards is not None:
            card = self.cards.wire(await self.cards.card_for(call.caller, linkedid=call.linkedid))
            self.notifier.remember_card(call.linkedid, card)  # not if the call ended during the lookup
            self.hub.publish(self.notifier.messages.call_card(call.linkedid, card), participants)
        return JSONResponse({"linkedid": linkedid, "contact_id": contact_id,
                             "card": card.model_dump() if card is not None else None})

    async def _in_journal(self, linkedid: str) -> bool:
        """A call that ended a moment ago may still be staged, not yet written: flushed and looked up again."""
        store = self.store()
        if await store.get_call(linkedid) is not None:
            return True
        await store.flush()
        return await store.get_call(linkedid) is not None

    # -- WebSocket ------------------------------------------------------------------------------------------

    async def websocket(self, websocket: WebSocket) -> None:
        if not self.origin_allowed(websocket):
            await websocket.send_denial_response(PlainTextResponse("origin not allowed", status_code=403))
            return
        credential = await self.sessions.credential(websocket.cookies.get(COOKIE),
                                                    websocket.headers.get("authorization"))
        if credential is None:
            await websocket.send_denial_response(PlainTextResponse("log in first", status_code=401))
            return
        hub, user = self.hub, credential.user
        limit = self.settings.max_sockets_per_session
        if hub.sockets_of(credential.key) >= limit:  # checked and taken below in one step: no await between
            await websocket.send_denial_response(PlainTextResponse(
                f"this login already has {limit} live connections: close one (another tab?) and retry",
                status_code=429))
            return
        address = self.client_address(websocket)
        if websocket.client is not None and address == websocket.client.host:
            address = f"{address}:{websocket.client.port}"
        client = hub.new_client(user, StarletteTransport(websocket), address, credential=credential.key)
        try:
            await websocket.accept()
            hub.send_to(client, self.notifier.messages.hello(user, time.time()))
            self._subscribe(client, "own" if user.role == "agent" else "all")
            client.relay = asyncio.create_task(self._relay(client))
            while not client.dropped:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    break
                text = message.get("text")
                if text is None:
                    data = message.get("bytes") or b""
                    text = data.decode("utf-8", "replace")
                self._received(client, text)
        except WebSocketDisconnect:
            pass
        finally:
            hub.remove(client)
            if client.relay is not None:
                client.relay.cancel()
            for task in list(client.requests):
                task.cancel()

    async def _relay(self, client: Client) -> None:
        try:
            await self.hub.relay(client)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the connection failed under us: the reader loop sees the disconnect
            log.debug("websocket %s: send failed: %r", client.address, exc)
            self.hub.remove(client)

    def _subscribe(self, client: Client, scope: Scope) -> None:
        """Queue the state of the new scope and switch to it in one step, so no event falls in between."""
        extension = None if scope == "all" else client.extension
        calls = self.notifier.calls_of(extension) if (scope == "all" or extension is not None) else []
        agents = [a for a in self._agent_states() if scope == "all" or a.extension == extension]
        self.hub.send_to(client, self.notifier.messages.state(scope, extension, calls, agents))
        self.hub.add(client, scope)

    def _received(self, client: Client, text: str) -> None:
        """One client message: a request carried out, or an error reply. Whatever it holds, the socket stays."""
        try:
            self._read_request(client, text)
        except Exception:  # a bug, not the client's doing: say so in the log, keep the agent's connection
            log.exception("websocket %s: a message could not be handled", client.address)
            self._error(client, None, "internal", "the server failed to read this message (see its log)")

    def _read_request(self, client: Client, text: str) -> None:
        if len(text.encode("utf-8")) > self.settings.max_message_bytes:
            self._error(client, None, "too_large", f"messages are limited to {self.settings.max_message_bytes} bytes")
            return
        try:
            raw = parse_json(text)  # bounded nesting, no lone surrogates: jsonin.py
        except BadJson as exc:
            self._error(client, None, "bad_json", str(exc))
            return
        request_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        try:
            request = m.CLIENT_ADAPTER.validate_python(raw)
        except ValidationError as exc:
            self._error(client, request_id, "bad_message", _explain(exc, raw))
            return
        if isinstance(request, m.Subscribe) and request.scope == "all" and client.user.role == "agent":
            self._error(client, request.id, "forbidden", "agents may only subscribe to their own extension")
            return
        if len(client.requests) >= MAX_REQUESTS_IN_FLIGHT:
            self._error(client, request.id, "conflict", "too many requests waiting; wait for their replies")
            return
        task = asyncio.create_task(self._carry_out(client, request))
        client.requests.add(task)
        task.add_done_callback(client.requests.discard)

    async def _carry_out(self, client: Client, request: Any) -> None:
        try:
            # The session or token is read again from the store for every request, ``subscribe`` included: one
            # removed or changed a moment ago (the CLI, another tab's logout) carries out nothing, and the socket
            # closes at once. A demoted admin cannot take every call's state in the second before the sweep.
            if client.credential is not None:
                allowed = await self.sessions.still_grants(client.credential, client.user,
                                                           touch=not isinstance(request, m.Ping))
                if not allowed or client.dropped:
                    self.hub.drop(client, CLOSE_POLICY, "logged out or access revoked")
                    return
            if isinstance(request, m.Subscribe):  # the reply, then the new scope's state: nothing in between
                self.hub.send_to(client, self.notifier.messages.reply(request.id, {"scope": request.scope}))
                self._subscribe(client, request.scope)
                return
            data = await self.commands.run(client.user, request)
        except RequestFailed as exc:
            self._error(client, request.id, exc.code, exc.message)
        except Exception:
            log.exception("websocket: %s failed", request.type)
            self._error(client, request.id, "internal", "the server failed to carry out the request (see its log)")
        else:
            self.hub.send_to(client, self.notifier.messages.reply(request.id, data))

    def _error(self, client: Client, request_id: str | None, code: m.ErrorCode, message: str) -> None:
        self.hub.send_to(client, self.notifier.messages.error(request_id, code, message))

    async def close(self) -> None:
        await self.hub.close_all()


def _after(token: str | None, offset: int) -> str | None:
    """``?after=``, which pages by itself: with an ``offset`` as well, one of them would be ignored."""
    if token and offset:
        raise BadRequest("after and offset page two ways: give one of them (after: the `next` of the last answer)")
    return token


def _user_info(user: User) -> m.UserInfo:
    return user_info(user)


def _actor(user: User) -> control.Actor:
    return control.Actor(name=user.name, role=user.role, extension=user.extension)


def _explain(exc: ValidationError, raw: object) -> str:
    if not isinstance(raw, dict):
        return "a message is a JSON object with a 'type'"
    kind = raw.get("type")
    errors = exc.errors()
    if errors and errors[0]["type"] in ("union_tag_invalid", "union_tag_not_found"):
        names = ", ".join(sorted(str(t) for t in _client_types()))
        shown = repr(kind)[:60]
        return f"unknown message type {shown} (known: {names})" if kind is not None else f"no 'type' (one of {names})"
    parts = []
    for err in errors[:3]:
        where = ".".join(str(p) for p in err["loc"][1:]) or "(message)"
        parts.append(f"{where}: {err['msg']}")
    return f"{str(kind)[:60]}: " + "; ".join(parts)


def _client_types() -> list[str]:
    out: list[str] = []
    for model in m.CLIENT_MESSAGES:
        annotation = model.model_fields["type"].annotation
        out.extend(getattr(annotation, "__args__", ()))
    return out
