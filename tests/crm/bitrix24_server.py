"""A Bitrix24 portal's REST API for the tests, as its documentation describes it (issue 16), served on loopback.

What it implements (``docs/crm.md``, "Bitrix24", and dev.1c-bitrix.ru's ``rest_help``):

* ``POST /rest/<method>.json`` with ``auth=<access token>`` (a local application, OAuth) and
  ``POST /rest/<user>/<code>/<method>.json`` (an incoming webhook); method names are case-insensitive. Bodies are
  JSON or form-encoded. Answers ``{"result": ..., "time": {...}}``, errors ``{"error", "error_description"}``.
* The telephony methods: ``telephony.externalcall.register`` (``CALL_ID`` generated; the same parameters before
  ``finish`` give the same ``CALL_ID`` for 30 minutes), ``show``/``hide`` (per user, of a registered call),
  ``finish`` (only of a registered call not finished: else an error), ``telephony.externalCall.attachRecord`` (of a
  finished call: the portal fetches ``RECORD_URL`` and keeps it only if it is audio, WAV or MP3),
  ``telephony.call.attachTranscription`` (of a finished call, the messages checked), ``user.get`` (filter by
  ``UF_PHONE_INNER`` or ``ID``), ``telephony.externalCall.searchCrmEntities``. ``register`` and ``finish`` refuse a
  webhook (``WRONG_AUTH_TYPE``).
* OAuth: ``/oauth/token/`` refreshes (``grant_type=refresh_token``): the access token lasts ``token_seconds``, the
  refresh token is good for one use (rotated at each refresh). An expired access token is ``401 expired_token``.
* Bitrix24's rate limit, a leaky bucket (``rate`` per second, ``burst``): over it, ``503 QUERY_LIMIT_EXCEEDED``.
* Faults: ``fail_next`` (the next requests answered with an error), :meth:`expire_access_tokens`; the server itself
  is taken down and back by ``tests/crm/local_server.py``.
* The click-to-call side: :meth:`start_call` registers a call the way a click on a number in a CRM card does and
  gives the ``ONEXTERNALCALLSTART`` event's form to post to the daemon; :meth:`install_form` the install handler's.

Every request is recorded (:attr:`requests`), refused ones too, so a test reads exactly what the daemon sent.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

REGISTER_DEDUPE_SECONDS = 30 * 60
_FORM_KEY = re.compile(r"([^\[\]]+)((?:\[[^\]]*\])+)")
#: Methods a webhook may not call (a local application's OAuth only).
APP_ONLY = frozenset({"telephony.externalcall.register", "telephony.externalcall.finish"})


@dataclass
class Seen:
    """One request as the portal got it."""

    method: str
    params: dict[str, Any]
    #: ``oauth`` or ``webhook``; None: no credentials at all.
    auth: str | None
    status: int
    error: str | None = None
    at: float = field(default_factory=time.time)


@dataclass
class PortalCall:
    call_id: str
    params: dict[str, Any]
    registered_at: float
    #: Started by a click in the CRM (``ONEXTERNALCALLSTART``): registered without ``register``.
    from_event: bool = False
    shown: set[int] = field(default_factory=set)
    finished: dict[str, Any] | None = None
    record: dict[str, Any] | None = None
    transcript: list[dict[str, Any]] | None = None


class RestError(Exception):
    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(error)
        self.status, self.error, self.description = status, error, description


def _flatten_form(pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """PHP's form arrays (``USER_ID[0]=1``, ``FILTER[UF_PHONE_INNER]=101``, ``auth[application_token]=...``) as
    Bitrix24 reads them."""
    out: dict[str, Any] = {}
    for key, value in pairs:
        match = _FORM_KEY.fullmatch(key)
        if match is None:
            out[key] = value
            continue
        parts = [match.group(1), *re.findall(r"\[([^\]]*)\]", match.group(2))]
        node = out
        for part in parts[:-1]:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[parts[-1] or str(len(node))] = value
    flat: dict[str, Any] = _lists(out)
    return flat


def _lists(value: Any) -> Any:
    if isinstance(value, dict):
        value = {k: _lists(v) for k, v in value.items()}
        if value and all(k.isdigit() for k in value):
            return [value[k] for k in sorted(value, key=int)]
    return value


def _is_audio(data: bytes) -> bool:
    """A WAV (RIFF/WAVE with a data chunk) or an MP3 (ID3 tag or a frame sync): what a portal keeps as a record."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return b"data" in data[12:200]
    return data[:3] == b"ID3" or (len(data) > 2 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0)


class Bitrix24Portal:
    """The portal's state and its Starlette app (:attr:`app`)."""

    def __init__(self, *, rate: float = 2.0, burst: int = 50, token_seconds: float = 3600.0,
                 client_id: str = "local.cti.test", client_secret: str = "test-secret",
                 clock: Callable[[], float] = time.time) -> None:
        self.rate, self.burst = rate, burst
        self.token_seconds = token_seconds
        self.client_id, self.client_secret = client_id, client_secret
        self.clock = clock
        self.member_id = secrets.token_hex(16)
        self.application_token = secrets.token_hex(16)
        self.webhook = ("1", secrets.token_hex(8))
        self.access_tokens: dict[str, float] = {}
        self.refresh_tokens: set[str] = set()
        self.refreshes = 0
        #: Set: a refresh is recorded and then held until the event is set (a refresh in flight, for a race).
        self.token_gate: asyncio.Event | None = None
        self.users: list[dict[str, Any]] = []
        self.contacts: dict[str, dict[str, Any]] = {}
        self.calls: dict[str, PortalCall] = {}
        self.requests: list[Seen] = []
        self._bucket = 0.0
        self._drained_at = clock()
        self._faults: list[tuple[int, str, str]] = []
        self._methods: dict[str, Callable[[dict[str, Any]], Awaitable[Any]]] = {
            "telephony.externalcall.register": self._register,
            "telephony.externalcall.show": self._show,
            "telephony.externalcall.hide": self._hide,
            "telephony.externalcall.finish": self._finish,
            "telephony.externalcall.attachrecord": self._attach_record,
            "telephony.call.attachtranscription": self._attach_transcription,
            "telephony.externalcall.searchcrmentities": self._search,
            "user.get": self._user_get,
        }
        self.base_url = ""  # set by the test once served (the portal's own address, in events)
        self.app = Starlette(routes=[
            Route("/rest/{method}.json", self._rest, methods=["POST", "GET"]),
            Route("/rest/{user}/{code}/{method}.json", self._rest, methods=["POST", "GET"]),
            Route("/oauth/token/", self._token, methods=["POST", "GET"]),
        ])

    # -- what a test sets up and reads -------------------------------------------------------------------------

    def add_user(self, user_id: int, inner_phone: str, name: str = "") -> None:
        self.users.append({"ID": str(user_id), "ACTIVE": True, "NAME": name or f"User {user_id}",
                           "UF_PHONE_INNER": inner_phone})

    def add_contact(self, number: str, entity_id: int, assigned_by: int, name: str = "") -> None:
        """A client whose number the CRM knows, with the user responsible for it (``searchCrmEntities``' shape)."""
        user = next((u for u in self.users if u["ID"] == str(assigned_by)), None)
        self.contacts[number] = {
            "CRM_ENTITY_TYPE": "CONTACT", "CRM_ENTITY_ID": entity_id, "ASSIGNED_BY_ID": assigned_by,
            "NAME": name or f"Contact {entity_id}",
            "ASSIGNED_BY": {"ID": str(assigned_by), "TIMEMAN_STATUS": "OPENED",
                            "USER_PHONE_INNER": user["UF_PHONE_INNER"] if user else None, "WORK_PHONE": None,
                            "PERSONAL_PHONE": None, "PERSONAL_MOBILE": None}}

    def issue_tokens(self) -> dict[str, Any]:
        """A fresh token pair, as an install gives it."""
        access, refresh = secrets.token_hex(16), secrets.token_hex(16)
        self.access_tokens[access] = self.clock() + self.token_seconds
        self.refresh_tokens.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_in": int(self.token_seconds)}

    def expire_access_tokens(self) -> None:
        """Every access token handed out runs out now (the next call with one is ``401 expired_token``)."""
        now = self.clock()
        self.access_tokens = {t: min(exp, now - 1) for t, exp in self.access_tokens.items()}

    def fail_next(self, count: int, status: int = 503, error: str = "QUERY_LIMIT_EXCEEDED",
                  description: str = "Too many requests") -> None:
        self._faults.extend([(status, error, description)] * count)

    def install_form(self) -> dict[str, str]:
        """The ``ONAPPINSTALL`` event's form, as the portal posts it to the application's install handler."""
        tokens = self.issue_tokens()
        return {"event": "ONAPPINSTALL", "data[VERSION]": "1", "data[ACTIVE]": "Y", "data[INSTALLED]": "Y",
                "data[LANGUAGE_ID]": "ru", "ts": str(int(self.clock())),
                "auth[access_token]": tokens["access_token"], "auth[expires_in]": str(tokens["expires_in"]),
                "auth[scope]": "telephony,user", "auth[domain]": self.domain,
                "auth[server_endpoint]": "https://oauth.bitrix.info/rest/", "auth[status]": "L",
                "auth[client_endpoint]": f"{self.base_url}/rest/", "auth[member_id]": self.member_id,
                "auth[user_id]": "1", "auth[refresh_token]": tokens["refresh_token"],
                "auth[application_token]": self.application_token}

    @property
    def domain(self) -> str:
        return self.base_url.split("://", 1)[-1] or "portal.test"

    def start_call(self, user_id: int, number: str, *, entity: tuple[str, int] | None = None) -> dict[str, str]:
        """A click on ``number`` in a CRM card by ``user_id``: the call registered, and the ``ONEXTERNALCALLSTART``
        form the portal posts to the application's handler."""
        call_id = self._new_call_id()
        self.calls[call_id] = PortalCall(call_id, {"USER_ID": user_id, "PHONE_NUMBER": number, "TYPE": 1},
                                         self.clock(), from_event=True)
        form = {"event": "ONEXTERNALCALLSTART", "data[PHONE_NUMBER]": number, "data[USER_ID]": str(user_id),
                "data[CALL_ID]": call_id, "data[IS_MOBILE]": "0", "data[LINE_NUMBER]": "",
                "ts": str(int(self.clock())), "auth[domain]": self.domain,
                "auth[client_endpoint]": f"{self.base_url}/rest/", "auth[member_id]": self.member_id,
                "auth[application_token]": self.application_token}
        if entity is not None:
            form["data[CRM_ENTITY_TYPE]"], form["data[CRM_ENTITY_ID]"] = entity[0], str(entity[1])
        return form

    def methods(self, *, ok_only: bool = True) -> list[str]:
        return [r.method for r in self.requests if not ok_only or r.status == 200]

    def call_sequence(self, call_id: str) -> list[str]:
        """The telephony methods accepted for one call, in order (``register`` named by its answer)."""
        out = []
        for r in self.requests:
            if r.status != 200 or not r.method.startswith("telephony."):
                continue
            if r.params.get("CALL_ID") == call_id or (r.method.endswith(".register")
                                                      and r.params.get("_answer") == call_id):
                out.append(r.method.rsplit(".", 1)[-1].lower())
        return out

    # -- the REST side -----------------------------------------------------------------------------------------

    def _new_call_id(self) -> str:
        return f"externalCall.{secrets.token_hex(16)}.{int(self.clock())}"

    async def _params(self, request: Request) -> dict[str, Any]:
        params: dict[str, Any] = _flatten_form(list(request.query_params.multi_items()))
        body = await request.body()
        if body:
            kind = request.headers.get("content-type", "")
            if "json" in kind:
                try:
                    loaded = json.loads(body)
                except ValueError:
                    raise RestError(400, "INVALID_REQUEST", "The body is not JSON") from None
                if not isinstance(loaded, dict):
                    raise RestError(400, "INVALID_REQUEST", "The body is not an object")
                params.update(loaded)
            else:
                params.update(_flatten_form(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True)))
        return params

    def _leak(self) -> bool:
        """One more request into the bucket; False when it is full."""
        now = self.clock()
        self._bucket = max(0.0, self._bucket - (now - self._drained_at) * self.rate)
        self._drained_at = now
        if self._bucket + 1 > self.burst:
            return False
        self._bucket += 1
        return True

    async def _rest(self, request: Request) -> JSONResponse:
        method = request.path_params["method"].lower()
        started = self.clock()
        params: dict[str, Any] = {}
        auth: str | None = None
        seen = Seen(method, params, None, 200)
        self.requests.append(seen)
        try:
            params = await self._params(request)
            seen.params = params
            if "user" in request.path_params:
                if (request.path_params["user"], request.path_params["code"]) != self.webhook:
                    raise RestError(401, "NO_AUTH_FOUND", "Wrong authorization data")
                auth = "webhook"
            else:
                token = params.pop("auth", None)
                if not token:
                    raise RestError(401, "NO_AUTH_FOUND", "Wrong authorization data")
                expires = self.access_tokens.get(str(token))
                if expires is None:
                    raise RestError(401, "invalid_token", "The access token provided is invalid.")
                if expires <= self.clock():
                    raise RestError(401, "expired_token", "The access token provided has expired.")
                auth = "oauth"
            seen.auth = auth
            if not self._leak():
                raise RestError(503, "QUERY_LIMIT_EXCEEDED", "Too many requests")
            if self._faults:
                raise RestError(*self._faults.pop(0))
            if auth == "webhook" and method in APP_ONLY:
                raise RestError(401, "WRONG_AUTH_TYPE", "Current authorization type is denied for this method")
            handler = self._methods.get(method)
            if handler is None:
                raise RestError(404, "ERROR_METHOD_NOT_FOUND", "Method not found!")
            result = await handler(params)
        except RestError as exc:
            seen.status, seen.error = exc.status, exc.error
            return JSONResponse({"error": exc.error, "error_description": exc.description}, status_code=exc.status)
        if method.endswith(".register") and isinstance(result, dict):
            params["_answer"] = result["CALL_ID"]
        now = self.clock()
        return JSONResponse({"result": result, "time": {"start": started, "finish": now,
                                                        "duration": now - started}})

    def _user(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The user a request names by ``USER_ID`` or ``USER_PHONE_INNER``."""
        if params.get("USER_ID") not in (None, ""):
            found = [u for u in self.users if u["ID"] == str(params["USER_ID"])]
        elif params.get("USER_PHONE_INNER") not in (None, ""):
            found = [u for u in self.users if u["UF_PHONE_INNER"] == str(params["USER_PHONE_INNER"])]
        else:
            raise RestError(400, "ERROR_ARGUMENT", "USER_ID or USER_PHONE_INNER is required")
        if not found:
            raise RestError(400, "ERROR_USER_NOT_FOUND", "User not found")
        return found[0]

    def _call(self, params: Mapping[str, Any]) -> PortalCall:
        call = self.calls.get(str(params.get("CALL_ID", "")))
        if call is None:
            raise RestError(400, "ERROR_CALL_NOT_FOUND", "Call is not found")
        return call

    async def _register(self, params: dict[str, Any]) -> dict[str, Any]:
        user = self._user(params)
        if not str(params.get("PHONE_NUMBER") or ""):
            raise RestError(400, "ERROR_ARGUMENT", "PHONE_NUMBER is required")
        if str(params.get("TYPE")) not in {"1", "2", "3", "4", "5"}:
            raise RestError(400, "ERROR_ARGUMENT", "Wrong TYPE")
        now = self.clock()
        for call in self.calls.values():
            if (not call.from_event and call.finished is None and call.params == params
                    and now - call.registered_at < REGISTER_DEDUPE_SECONDS):
                return self._register_answer(call)
        call = PortalCall(self._new_call_id(), dict(params), now)
        self.calls[call.call_id] = call
        if str(params.get("SHOW", "1")) == "1":
            call.shown.add(int(user["ID"]))
        return self._register_answer(call)

    def _register_answer(self, call: PortalCall) -> dict[str, Any]:
        contact = self.contacts.get(str(call.params.get("PHONE_NUMBER")))
        answer: dict[str, Any] = {"CALL_ID": call.call_id}
        if contact is not None:
            answer.update(CRM_ENTITY_TYPE=contact["CRM_ENTITY_TYPE"], CRM_ENTITY_ID=contact["CRM_ENTITY_ID"])
        elif str(call.params.get("CRM_CREATE")) == "1":
            answer.update(CRM_CREATED_LEAD=len(self.calls), CRM_ENTITY_TYPE="LEAD", CRM_ENTITY_ID=len(self.calls))
        return answer

    def _user_ids(self, params: Mapping[str, Any]) -> list[int]:
        raw = params.get("USER_ID")
        values = raw if isinstance(raw, list) else [raw]
        try:
            ids = [int(str(v)) for v in values]
        except (TypeError, ValueError):
            raise RestError(400, "ERROR_ARGUMENT", "Wrong USER_ID") from None
        known = {int(u["ID"]) for u in self.users}
        if not ids or not set(ids) <= known:
            raise RestError(400, "ERROR_USER_NOT_FOUND", "User not found")
        return ids

    async def _show(self, params: dict[str, Any]) -> bool:
        call = self._call(params)
        call.shown.update(self._user_ids(params))
        return True

    async def _hide(self, params: dict[str, Any]) -> bool:
        call = self._call(params)
        call.shown.difference_update(self._user_ids(params))
        return True

    async def _finish(self, params: dict[str, Any]) -> dict[str, Any]:
        call = self._call(params)
        if call.finished is not None:
            raise RestError(400, "ERROR_CALL_NOT_FOUND", "Call is not found or already finished")
        user = self._user(params)
        try:
            duration = int(params.get("DURATION", 0))
        except (TypeError, ValueError):
            raise RestError(400, "ERROR_ARGUMENT", "Wrong DURATION") from None
        call.finished = dict(params)
        call.shown.clear()
        return {"CALL_ID": call.call_id, "PORTAL_USER_ID": user["ID"], "CALL_DURATION": duration,
                "CALL_FAILED_CODE": str(params.get("STATUS_CODE") or ("200" if duration else "304"))}

    async def _attach_record(self, params: dict[str, Any]) -> dict[str, Any]:
        call = self._call(params)
        if call.finished is None:
            raise RestError(400, "ERROR_CALL_NOT_FINISHED", "Call is not finished")
        if params.get("FILE_CONTENT"):
            try:
                data = base64.b64decode(str(params["FILE_CONTENT"]), validate=True)
            except ValueError:
                raise RestError(400, "ERROR_ARGUMENT", "FILE_CONTENT is not Base64") from None
        elif params.get("RECORD_URL"):
            try:
                async with httpx.AsyncClient(timeout=10.0) as client:
                    response = await client.get(str(params["RECORD_URL"]))
            except httpx.HTTPError as exc:
                raise RestError(400, "ERROR_RECORD_DOWNLOAD", f"Could not download the record: {exc}") from None
            if response.status_code != 200:
                raise RestError(400, "ERROR_RECORD_DOWNLOAD", f"The record's URL answered {response.status_code}")
            data = response.content
        else:
            raise RestError(400, "ERROR_ARGUMENT", "RECORD_URL or FILE_CONTENT is required")
        if not _is_audio(data):
            raise RestError(400, "ERROR_RECORD_FORMAT", "The record is not audio")
        call.record = {"FILENAME": params.get("FILENAME"), "size": len(data),
                       "sha256": hashlib.sha256(data).hexdigest()}
        return {"FILE_ID": len(self.calls) * 100 + len(data) % 97}

    async def _attach_transcription(self, params: dict[str, Any]) -> dict[str, Any]:
        call = self._call(params)
        if call.finished is None:
            raise RestError(400, "ERROR_CALL_NOT_FINISHED", "Call is not finished")
        messages = params.get("MESSAGES")
        if not isinstance(messages, list) or not messages:
            raise RestError(400, "ERROR_ARGUMENT", "MESSAGES is required")
        for m in messages:
            if not (isinstance(m, dict) and m.get("SIDE") in ("User", "Client")
                    and isinstance(m.get("START_TIME"), int) and m["START_TIME"] >= 0
                    and isinstance(m.get("STOP_TIME"), int) and m["STOP_TIME"] >= 1
                    and isinstance(m.get("MESSAGE"), str)):
                raise RestError(400, "ERROR_ARGUMENT", f"Wrong message: {m!r}")
        call.transcript = messages
        return {"TRANSCRIPT_ID": len(self.calls)}

    async def _user_get(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        flt = params.get("FILTER") or params.get("filter") or {}
        if not isinstance(flt, dict):
            raise RestError(400, "ERROR_ARGUMENT", "Wrong FILTER")
        found = self.users
        for key, value in flt.items():
            found = [u for u in found if str(u.get(key.upper())) == str(value)]
        return found

    async def _search(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        if not str(params.get("PHONE_NUMBER") or ""):
            raise RestError(400, "ERROR_ARGUMENT", "PHONE_NUMBER is required")
        contact = self.contacts.get(str(params["PHONE_NUMBER"]))
        return [contact] if contact else []

    # -- OAuth -------------------------------------------------------------------------------------------------

    async def _token(self, request: Request) -> JSONResponse:
        params = dict(request.query_params)
        body = await request.body()
        if body:
            params.update(parse_qsl(body.decode("utf-8", "replace")))
        seen = Seen("oauth.token", dict(params), "oauth", 200)
        self.requests.append(seen)
        if self.token_gate is not None:
            await self.token_gate.wait()
        if params.get("grant_type") != "refresh_token" or params.get("client_id") != self.client_id \
                or params.get("client_secret") != self.client_secret:
            seen.status, seen.error = 400, "invalid_client"
            return JSONResponse({"error": "invalid_client", "error_description": "Invalid client"}, 400)
        refresh = params.get("refresh_token", "")
        if refresh not in self.refresh_tokens:
            seen.status, seen.error = 400, "invalid_grant"
            return JSONResponse({"error": "invalid_grant", "error_description": "Invalid grant"}, 400)
        self.refresh_tokens.discard(refresh)  # one use: rotated
        self.refreshes += 1
        tokens = self.issue_tokens()
        return JSONResponse({**tokens, "expires": int(self.clock() + self.token_seconds), "scope": "app",
                             "domain": "oauth.bitrix.info", "server_endpoint": "https://oauth.bitrix.info/rest/",
                             "status": "L", "client_endpoint": f"{self.base_url}/rest/", "member_id": self.member_id,
                             "user_id": 1})
