"""``/ws``: the live socket of the panel and of any thin client, from the handshake to the last message.

The handshake passes the gate like an API write (the panel's own origin or an allowed one, then a session or
token), refused as plain text; one login holds at most ``[http] max_sockets_per_session`` sockets. Then the
client gets ``hello`` (with the PBXs its user sees) and the ``state`` of its scope on those PBXs only, its
own relay task drains its queue in the hub, and this loop reads its requests: each is checked (size, JSON, the
published models), carried out in its own task (at most ``MAX_REQUESTS_IN_FLIGHT`` at once) and answered by
exactly one ``reply`` or ``error``. Whatever a message holds, the socket stays open; only a session that ended
closes it (1008).
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pydantic import ValidationError
from starlette.responses import PlainTextResponse
from starlette.websockets import WebSocket, WebSocketDisconnect

from cti.control import OWN_EXTENSION_ROLES
from ui_bridge.settings import HttpSettings

from .. import messages as m
from ..commands import Commands, RequestFailed
from ..hub import CLOSE_POLICY, Client, Hub, Scope, Transport
from ..jsonin import BadJson, parse_json
from ..notifier import Notifier
from ..sessions import Sessions
from .gate import Gate, Policy, Refusal

log = logging.getLogger(__name__)

MAX_REQUESTS_IN_FLIGHT = 16


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


class LiveSocket:
    """The WebSocket endpoint: admits the handshake through ``gate`` against ``policy``, then runs the client."""

    def __init__(self, gate: Gate, policy: Policy, settings: HttpSettings, hub: Hub, notifier: Notifier,
                 commands: Commands, sessions: Sessions) -> None:
        self.gate = gate
        self.policy = policy
        self.settings = settings
        self.hub = hub
        self.notifier = notifier
        self.commands = commands
        self.sessions = sessions

    async def endpoint(self, websocket: WebSocket) -> None:
        try:
            credential = await self.gate.admit(websocket, self.policy)
        except Refusal as refusal:
            await websocket.send_denial_response(PlainTextResponse(refusal.message, status_code=refusal.status))
            return
        assert credential is not None, "the socket's policy needs a login"
        hub, user = self.hub, credential.user
        limit = self.settings.max_sockets_per_session
        if hub.sockets_of(credential.key) >= limit:  # checked and taken below in one step: no await between
            await websocket.send_denial_response(PlainTextResponse(
                f"this login already has {limit} live connections: close one (another tab?) and retry",
                status_code=429))
            return
        address = self.gate.client_address(websocket)
        if websocket.client is not None and address == websocket.client.host:
            address = f"{address}:{websocket.client.port}"
        client = hub.new_client(user, StarletteTransport(websocket), address, credential=credential.key)
        try:
            await websocket.accept()
            hub.send_to(client, self.notifier.messages.hello(user, time.time(),
                                                             self.notifier.pbx_infos(user.pbxs or None)))
            self._subscribe(client, "own" if user.role in OWN_EXTENSION_ROLES else "all")
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
        pbxs = client.user.pbxs or None  # the user's PBXs (none named: every PBX)
        seen = scope == "all" or extension is not None
        calls = self.notifier.calls_of(extension, pbxs) if seen else []
        agents = self.notifier.agents_of(extension, pbxs) if seen else []
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
        if isinstance(request, m.Subscribe) and request.scope == "all" and client.user.role in OWN_EXTENSION_ROLES:
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
            self._error(client, request.id, exc.code, exc.message, by=exc.by)
        except Exception:
            log.exception("websocket: %s failed", request.type)
            self._error(client, request.id, "internal", "the server failed to carry out the request (see its log)")
        else:
            self.hub.send_to(client, self.notifier.messages.reply(request.id, data))

    def _error(self, client: Client, request_id: str | None, code: m.ErrorCode, message: str,
               by: str | None = None) -> None:
        self.hub.send_to(client, self.notifier.messages.error(request_id, code, message, by))


def _explain(exc: ValidationError, raw: object) -> str:
    """A ``bad_message`` text a client's developer can act on: the unknown type and the known ones, or the
    first few fields that are wrong."""
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
