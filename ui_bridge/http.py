"""The panel's whole HTTP surface in one routes list: pages, the JSON API and the WebSocket endpoint.

Authentication: a login sets an HttpOnly, SameSite=Strict session cookie; thin clients that are not
browsers send ``Authorization: Bearer <token>`` (``cti users token``). Nothing but the login page and its
static files answers without one. Requests that change something and every WebSocket handshake must come
from the panel's own origin or one listed in ``[http] allowed_origins`` (a page elsewhere cannot use an
agent's cookie to place calls). API errors are ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.applications import Starlette
from starlette.datastructures import QueryParams
from starlette.requests import HTTPConnection, Request
from starlette.responses import FileResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.staticfiles import StaticFiles
from starlette.websockets import WebSocket, WebSocketDisconnect

from cti.config import HttpSettings
from cti.directory import Contact, Vehicle
from cti.effects import AgentStateChanged
from cti.model import CallBook
from store.repository import ContactNotFound, MissedNotFound, User
from store.sqlite import SqliteStore

from . import messages as m
from .auth import LoginLimiter, Sessions, dummy_hash, token_hash, verify_password
from .cards import CardService, contact_info
from .commands import Commands, RequestFailed
from .hub import Client, Hub, Scope, Transport
from .notifier import Notifier, call_agents

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
                 store: Callable[[], SqliteStore | None], agent_states: Callable[[], list[AgentStateChanged]],
                 tls: bool = False, cards: CardService | None = None,
                 book: CallBook | None = None) -> None:
        self.settings = settings
        self.hub = hub
        self.notifier = notifier
        self.commands = commands
        self._store = store  # the daemon opens the store after the panel is built
        self._agent_states = agent_states
        self.tls = tls
        self.cards = cards
        self.book = book
        self.sessions = Sessions(settings.session_hours * 3600)
        self.limiter = LoginLimiter(settings.login_max_failures, settings.login_window_seconds)
        self.app = Starlette(routes=[
            Route("/", self.index),
            Route("/login", self.login_page),
            Route("/api/login", self.login, methods=["POST"]),
            Route("/api/logout", self.logout, methods=["POST"]),
            Route("/api/me", self.me),
            Route("/api/calls", self.calls),
            Route("/api/missed", self.missed),
            Route("/api/missed/{entry_id:int}", self.missed_entry),
            Route("/api/contacts", self.contacts, methods=["GET", "POST"]),
            Route("/api/calls/{linkedid}/contact", self.attach_contact, methods=["POST"]),
            WebSocketRoute("/ws", self.websocket),
            Route("/static/{name:path}", self.asset),
        ])
        self.static = StaticFiles(directory=STATIC)

    # -- who is asking ---------------------------------------------------------------------------------

    def store(self) -> SqliteStore:
        store = self._store()
        if store is None:
            raise RuntimeError("the store is not open")
        return store

    async def user_of(self, conn: HTTPConnection) -> User | None:
        session = self.sessions.get(conn.cookies.get(COOKIE))
        if session is not None:
            return session.user
        auth = conn.headers.get("authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() == "bearer" and token.strip():
            return await self.store().user_of_token(token_hash(token.strip()))
        return None

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
            body = await request.json()
            name, password = body["name"], body["password"]
            if not isinstance(name, str) or not isinstance(password, str) or not name or len(name) > 64:
                raise TypeError
        except (ValueError, KeyError, TypeError):
            return api_error(400, "bad_request", 'send JSON {"name": "...", "password": "..."}')
        address = request.client.host if request.client else "?"
        wait = self.limiter.retry_after(name, address)
        if wait > 0:
            return api_error(429, "rate_limited", f"too many failed logins; try again in {int(wait) + 1} s",
                             {"Retry-After": str(int(wait) + 1)})
        user = await self.store().get_user(name)
        stored = user.password_hash if user is not None else dummy_hash()
        ok = await asyncio.to_thread(verify_password, password, stored)
        if user is None or not ok:
            self.limiter.failed(name, address)
            log.warning("panel: failed login for %r from %s", name, address)
            return api_error(401, "bad_credentials", "wrong name or password")
        self.limiter.succeeded(name)
        session = self.sessions.start(user)
        log.info("panel: %s (%s) logged in from %s", user.name, user.role, address)
        response = JSONResponse({"user": _user_info(user).model_dump()})
        response.set_cookie(COOKIE, session.token, max_age=int(self.sessions.lifetime), httponly=True,
                            samesite="strict", secure=self.tls, path="/")
        return response

    async def logout(self, request: Request) -> Response:
        token = request.cookies.get(COOKIE)
        self.sessions.end(token)
        if token:
            self.hub.drop_session(token)
        response = Response(status_code=204)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def me(self, request: Request) -> Response:
        user = await self.user_of(request)
        if user is None:
            return api_error(401, "unauthorized", "log in first")
        return JSONResponse({"user": _user_info(user).model_dump()})

    async def calls(self, request: Request) -> Response:
        user = await self.user_of(request)
        if user is None:
            return api_error(401, "unauthorized", "log in first")
        q = request.query_params
        try:
            since, until, limit, offset = _range_and_page(q, default_limit=100)
        except ValueError as exc:
            return api_error(400, "bad_request", str(exc))
        agent = q.get("agent") or None
        if user.role == "agent":
            agent = user.extension  # agents see their own calls only
        rows = await self.store().list_calls(
            since=since, until=until, number=q.get("number") or None, agent=agent,
            direction=q.get("direction") or None, outcome=q.get("outcome") or None,
            limit=limit, offset=offset, newest_first=True,
        )
        return JSONResponse({"calls": [r.to_json(self.notifier.tz) for r in rows]})

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
            since, until, limit, offset = _range_and_page(q, default_limit=200)
        except ValueError as exc:
            return api_error(400, "bad_request", str(exc))
        status = q.get("status") or None
        if status not in (None, "open", "closed"):
            return api_error(400, "bad_request", "status is open or closed")
        entries = await self.store().list_missed(status=status, since=since, until=until,
                                                 number=q.get("number") or None, limit=limit, offset=offset)
        return JSONResponse({"missed": [e.to_json(self.notifier.tz) for e in entries]})

    async def missed_entry(self, request: Request) -> Response:
        refused = await self._refused_from_register(request)
        if refused is not None:
            return refused
        entry_id = request.path_params["entry_id"]
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
                limit = min(max(int(request.query_params.get("limit") or 20), 1), 200)
            except ValueError:
                return api_error(400, "bad_request", "limit is a whole number")
            found = await self.store().find_contacts(request.query_params.get("q", ""), limit=limit)
            return JSONResponse({"contacts": [contact_info(c).model_dump() for c in found]})
        if user.role == "qa":
            return api_error(403, "forbidden", "QA users do not edit the directory")
        if not self.origin_allowed(request):
            return api_error(403, "forbidden", "this origin may not change the directory")
        try:
            draft = NewContact.model_validate(await request.json())
        except (ValueError, ValidationError) as exc:
            return api_error(400, "bad_request", _validation_text(exc))
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
        linkedid = request.path_params["linkedid"]
        call = self.book.calls.get(self.book.canonical(linkedid)) if self.book is not None else None
        participants = call_agents(call) if call is not None else set()
        if user.role == "agent" and user.extension not in participants:
            return api_error(403, "forbidden", "agents attach contacts to calls their phone is on")
        try:
            body = await request.json()
            contact_id = int(body["contact_id"])
        except (ValueError, KeyError, TypeError):
            return api_error(400, "bad_request", 'send JSON {"contact_id": N}')
        try:
            await self.store().attach_call(linkedid, contact_id, by=user.name)
        except ContactNotFound as exc:
            return api_error(404, "not_found", str(exc))
        card = None
        if call is not None and self.cards is not None:
            card = self.cards.wire(await self.cards.card_for(call.caller, linkedid=call.linkedid))
            self.notifier.known_cards[call.linkedid] = card
            self.hub.publish(m.CallCard(linkedid=call.linkedid, card=card), frozenset(participants))
        return JSONResponse({"linkedid": linkedid, "contact_id": contact_id,
                             "card": card.model_dump() if card is not None else None})

    # -- WebSocket ------------------------------------------------------------------------------------------

    async def websocket(self, websocket: WebSocket) -> None:
        if not self.origin_allowed(websocket):
            await websocket.send_denial_response(PlainTextResponse("origin not allowed", status_code=403))
            return
        user = await self.user_of(websocket)
        if user is None:
            await websocket.send_denial_response(PlainTextResponse("log in first", status_code=401))
            return
        await websocket.accept()
        address = f"{websocket.client.host}:{websocket.client.port}" if websocket.client else "?"
        hub = self.hub
        client = hub.new_client(user, StarletteTransport(websocket), address)
        client.session = websocket.cookies.get(COOKIE)
        hub.send_to(client, m.Hello(server_time=self.notifier.time(time.time()), user=_user_info(user)))
        self._subscribe(client, "own" if user.role == "agent" else "all")
        client.relay = asyncio.create_task(self._relay(client))
        try:
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
        agents = [self.notifier.agent_state(a) for a in self._agent_states()
                  if scope == "all" or a.extension == extension]
        self.hub.send_to(client, m.State(scope=scope, extension=extension, calls=calls, agents=agents))
        self.hub.add(client, scope)

    def _received(self, client: Client, text: str) -> None:
        if len(text.encode("utf-8")) > self.settings.max_message_bytes:
            self._error(client, None, "too_large", f"messages are limited to {self.settings.max_message_bytes} bytes")
            return
        try:
            raw = json.loads(text)
        except ValueError:
            self._error(client, None, "bad_json", "not a JSON text")
            return
        request_id = raw.get("id") if isinstance(raw, dict) and isinstance(raw.get("id"), str) else None
        try:
            request = m.CLIENT_ADAPTER.validate_python(raw)
        except ValidationError as exc:
            self._error(client, request_id, "bad_message", _explain(exc, raw))
            return
        if isinstance(request, m.Subscribe):
            if request.scope == "all" and client.user.role == "agent":
                self._error(client, request.id, "forbidden", "agents may only subscribe to their own extension")
                return
            self.hub.send_to(client, m.Reply(id=request.id, data={"scope": request.scope}))
            self._subscribe(client, request.scope)
            return
        if len(client.requests) >= MAX_REQUESTS_IN_FLIGHT:
            self._error(client, request.id, "conflict", "too many requests waiting; wait for their replies")
            return
        task = asyncio.create_task(self._carry_out(client, request))
        client.requests.add(task)
        task.add_done_callback(client.requests.discard)

    async def _carry_out(self, client: Client, request: Any) -> None:
        try:
            data = await self.commands.run(client.user, request)
        except RequestFailed as exc:
            self._error(client, request.id, exc.code, exc.message)
        except Exception:
            log.exception("websocket: %s failed", request.type)
            self._error(client, request.id, "internal", "the server failed to carry out the request (see its log)")
        else:
            self.hub.send_to(client, m.Reply(id=request.id, data=data))

    def _error(self, client: Client, request_id: str | None, code: m.ErrorCode, message: str) -> None:
        self.hub.send_to(client, m.Error(id=request_id, code=code, message=message))

    async def close(self) -> None:
        await self.hub.close_all()


def _user_info(user: User) -> m.UserInfo:
    return m.UserInfo(name=user.name, role=user.role, extension=user.extension, display_name=user.display_name)


class NewContact(BaseModel):
    """The body of ``POST /api/contacts``."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    kind: Literal["private", "corporate", "partner", "employee"] = "private"
    phones: list[Annotated[str, Field(max_length=40)]] = Field(default=[], max_length=10)
    email: str | None = Field(default=None, max_length=200)
    notes: str | None = Field(default=None, max_length=2000)
    vehicles: list[m.VehicleInfo] = Field(default=[], max_length=20)

    def contact(self) -> Contact:
        return Contact(name=self.name.strip(), kind=self.kind, phones=tuple(self.phones), email=self.email,
                       notes=self.notes, vehicles=tuple(Vehicle(make=v.make, model=v.model, year=v.year,
                                                                plate=v.plate, vin=v.vin) for v in self.vehicles))


def _validation_text(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '(body)'}: {e['msg']}" for e in exc.errors()[:3])
    return "send a JSON object"


def _range_and_page(q: QueryParams, default_limit: int) -> tuple[float | None, float | None, int, int]:
    """``since``/``until`` (ISO 8601) and ``limit`` (at most 1000) / ``offset`` of a listing; ValueError if bad."""
    since, until = _time_param(q.get("since")), _time_param(q.get("until"))
    try:
        limit = min(int(q.get("limit") or default_limit), 1000)
        offset = max(int(q.get("offset") or 0), 0)
    except ValueError:
        raise ValueError("limit and offset are whole numbers") from None
    if limit < 1:
        raise ValueError("limit must be at least 1")
    return since, until, limit, offset


def _time_param(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(value).timestamp()
    except ValueError:
        raise ValueError(f"{value!r} is not a date or an ISO 8601 time (2026-11-24 or 2026-11-24T10:00)") from None


def _explain(exc: ValidationError, raw: object) -> str:
    if not isinstance(raw, dict):
        return "a message is a JSON object with a 'type'"
    kind = raw.get("type")
    errors = exc.errors()
    if errors and errors[0]["type"] in ("union_tag_invalid", "union_tag_not_found"):
        names = ", ".join(sorted(str(t) for t in _client_types()))
        return f"unknown message type {kind!r} (known: {names})" if kind is not None else f"no 'type' (one of {names})"
    parts = []
    for err in errors[:3]:
        where = ".".join(str(p) for p in err["loc"][1:]) or "(message)"
        parts.append(f"{where}: {err['msg']}")
    return f"{kind}: " + "; ".join(parts)


def _client_types() -> list[str]:
    out: list[str] = []
    for model in m.CLIENT_MESSAGES:
        annotation = model.model_fields["type"].annotation
        out.extend(getattr(annotation, "__args__", ()))
    return out
