"""An amoCRM (or Kommo) account's calls API for the tests, as its documentation describes it (issue 16).

What it implements (amocrm.ru/developers "Звонки": ``POST /api/v4/calls``; "Справочник ошибок и ответов API"):

* ``POST /api/v4/calls`` with ``Authorization: Bearer <token>``; the body a JSON list of calls: ``direction``
  (``inbound``/``outbound``), ``duration`` (int), ``source`` and ``phone`` required; ``uniq``, ``link``,
  ``call_result``, ``call_status`` (1..7), ``responsible_user_id``, ``created_by``, ``created_at``, ``request_id``
  optional. A call is added to the contact with that phone (its last 10 digits) when there is one
  (:attr:`AmoCrmAccount.contacts`); the answer: ``{"_total_items", "errors", "_embedded": {"calls": [{"id",
  "entity_id", "entity_type", "account_id", "request_id", "_embedded": {"entity": {"id", "_links"}}}]}}``. A call
  whose phone no contact has is not added ("Если сущности с таким номером нет в базе, то звонок добавлен не
  будет"): it is in ``errors`` with its ``request_id`` (the documentation shows no such item; this server's is
  ``{"request_id", "title", "detail"}``).
* Invalid data: ``400`` with ``validation-errors`` (``[{"request_id", "errors": [{"code", "path", "detail"}]}]``),
  nothing added. No token or a wrong one (or one :meth:`AmoCrmAccount.expire_token` ended): ``401`` (``{"title":
  "Unauthorized", "status": 401, "detail"}``).
* amoCRM's limit of 7 requests a second: over it, ``429`` (a real count over the last second, in wall time).
* ``uniq``: the documentation promises no deduplication by it, so a call sent twice is added twice: this server does
  the same and counts it (:meth:`AmoCrmAccount.uniq_counts`), so a test sees a repeat.
* OAuth (amocrm.ru/developers "Авторизация OAuth 2.0", Kommo's "Get/renew access token"): ``POST
  /oauth2/access_token`` with a JSON (or form) body of ``client_id``, ``client_secret``, ``redirect_uri`` (the
  integration's, compared as written) and ``grant_type``: ``authorization_code`` with a ``code``
  (:meth:`AmoCrmAccount.issue_code`: as the integration's «Ключи и доступы» shows it, good for 20 minutes, once) or
  ``refresh_token`` with a ``refresh_token``. The answer: ``{"token_type": "Bearer", "expires_in", "server_time",
  "access_token", "refresh_token"}``; the access token lasts ``access_seconds`` (a day), the refresh token is good
  for one refresh (rotated: the old one is dead once used). Refused: ``400`` (a code or refresh token unknown, used,
  revoked or expired; a ``redirect_uri`` that is not the integration's) or ``401`` (``client_id``/``client_secret``
  wrong), with the OAuth error (``error``: ``invalid_grant``, ``invalid_client``...) and amoCRM's ``title``,
  ``hint`` and ``detail``. An access token past its end (or :meth:`AmoCrmAccount.expire_access_tokens`) is ``401``
  at ``/api/v4/calls``; :meth:`AmoCrmAccount.revoke_refresh_tokens` ends every refresh token (three months unused,
  the integration's access revoked); :attr:`AmoCrmAccount.token_gate` holds a token request until set.
* Faults: :meth:`AmoCrmAccount.fail_next`, :meth:`AmoCrmAccount.hang_next` / :meth:`AmoCrmAccount.release`; the
  server itself is taken down and back by ``tests/crm/local_server.py``.

Every request is recorded (:attr:`AmoCrmAccount.requests`; the token endpoint's in
:attr:`AmoCrmAccount.token_requests`), refused ones too.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
import urllib.parse
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ACCOUNT_ID = 28805383
CLIENT_ID = "6a2d4741-2f1c-4b8e-9d3a-92277723dcea"
#: The integration's redirect URI as written in it: sent back exactly so (no slash added).
REDIRECT_URI = "https://cti.example.ru/amocrm/oauth"
CODE_SECONDS = 20 * 60
REQUIRED = ("direction", "duration", "source", "phone")
STATUSES = range(1, 8)
_DIGITS = re.compile(r"\D")


@dataclass
class Seen:
    """One request as amoCRM got it."""

    authorization: str | None
    body: Any
    status: int
    answer: Any
    at: float = field(default_factory=time.time)


@dataclass
class TokenRequest:
    """One request at ``/oauth2/access_token`` and what it was answered."""

    body: dict[str, str]
    status: int
    answer: Any
    at: float = field(default_factory=time.time)


@dataclass
class AddedCall:
    """A call note amoCRM added to a card."""

    id: int
    entity_id: int
    call: dict[str, Any]


def _last10(phone: str) -> str:
    return _DIGITS.sub("", phone)[-10:]


class AmoCrmAccount:
    """The account's state and its Starlette app (:attr:`app`). ``contacts``: phone → contact id; ``users``: the
    account's user ids (``responsible_user_id`` and ``created_by`` must name one)."""

    def __init__(self, *, token: str | None = None, contacts: dict[str, int] | None = None,
                 users: tuple[int, ...] = (), rate_limit: int = 7, hang_seconds: float = 60.0,
                 access_seconds: float = 86400.0) -> None:
        self.token = token or secrets.token_urlsafe(24)
        # OAuth: the integration, its codes and tokens (module docstring).
        self.client_id = CLIENT_ID
        self.client_secret = secrets.token_urlsafe(48)
        self.redirect_uri = REDIRECT_URI
        self.access_seconds = access_seconds
        self.codes: dict[str, float] = {}
        self.access_tokens: dict[str, float] = {}
        self.refresh_tokens: set[str] = set()
        self.token_requests: list[TokenRequest] = []
        #: Requests that reached the token endpoint, answered or still held by :attr:`token_gate`.
        self.token_asks = 0
        self.token_gate: asyncio.Event | None = None
        self.contacts = {_last10(phone): cid for phone, cid in (contacts or {}).items()}
        self.users = set(users)
        self.rate_limit = rate_limit
        self.hang_seconds = hang_seconds
        self.requests: list[Seen] = []
        self.added: list[AddedCall] = []
        self._recent: deque[float] = deque()
        self._expired: set[str] = set()
        self._fail: list[tuple[int, Any, dict[str, str]]] = []
        self._hang = 0
        self._released = asyncio.Event()
        self._next_id = 58963
        self.app = Starlette(routes=[Route("/api/v4/calls", self._calls, methods=["POST"]),
                                     Route("/oauth2/access_token", self._oauth, methods=["POST"])])

    # -- faults ---------------------------------------------------------------------------------------------------

    def expire_token(self) -> None:
        """The current token stops working (a long-lived token past its end date)."""
        self._expired.add(self.token)

    def renew_token(self) -> str:
        self.token = secrets.token_urlsafe(24)
        return self.token

    def issue_code(self) -> str:
        """An authorization code, as the integration's «Ключи и доступы» shows it (20 minutes, one use)."""
        code = "def50200" + secrets.token_hex(200)
        self.codes[code] = time.time() + CODE_SECONDS
        return code

    def expire_access_tokens(self) -> None:
        """Every OAuth access token handed out runs out now (the next call with one is ``401``)."""
        now = time.time()
        self.access_tokens = {t: min(end, now - 1) for t, end in self.access_tokens.items()}

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token is dead (unused for three months, or the integration's access revoked)."""
        self.refresh_tokens.clear()

    @property
    def refreshes(self) -> int:
        """Refresh requests answered with a new pair."""
        return sum(1 for r in self.token_requests if r.body.get("grant_type") == "refresh_token" and r.status == 200)

    def fail_next(self, times: int, status: int = 503, body: Any = None, headers: dict[str, str] | None = None) -> None:
        answer = body if body is not None else {"title": "Service Unavailable", "status": status}
        self._fail.extend([(status, answer, dict(headers or {}))] * times)

    def hang_next(self, times: int) -> None:
        self._hang += times
        self._released.clear()

    def release(self) -> None:
        self._hang = 0
        self._released.set()

    # -- what the tests read --------------------------------------------------------------------------------------

    def uniq_counts(self) -> Counter[str]:
        """How many times each ``uniq`` was added."""
        return Counter(str(a.call.get("uniq")) for a in self.added)

    def call(self, uniq: str) -> dict[str, Any] | None:
        """The call added with ``uniq`` (the first, if added twice)."""
        return next((a.call for a in self.added if a.call.get("uniq") == uniq), None)

    # -- the endpoint ---------------------------------------------------------------------------------------------

    async def _calls(self, request: Request) -> JSONResponse:
        authorization = request.headers.get("authorization")
        raw = await request.body()
        try:
            body: Any = json.loads(raw or b"null")
        except ValueError:
            body = None
        if self._hang > 0:
            self._hang -= 1
            try:
                async with asyncio.timeout(self.hang_seconds):
                    await self._released.wait()
            except TimeoutError:
                pass
            return self._answer(authorization, body, 504, {"title": "Gateway Timeout", "status": 504})
        if self._fail:
            status, answer, headers = self._fail.pop(0)
            return self._answer(authorization, body, status, answer, headers)
        bearer = authorization[7:] if authorization and authorization.startswith("Bearer ") else None
        if not self._authorized(bearer):
            return self._answer(authorization, body, 401, {"title": "Unauthorized", "type": "https://httpstatus.es/401",
                                                           "status": 401, "detail": "Unauthorized"})
        now = time.monotonic()
        while self._recent and now - self._recent[0] >= 1.0:
            self._recent.popleft()
        if len(self._recent) >= self.rate_limit:
            return self._answer(authorization, body, 429, {"title": "Too Many Requests",
                                                           "type": "https://httpstatus.es/429", "status": 429,
                                                           "detail": "Too Many Requests"})
        self._recent.append(now)
        problems = self._validate(body)
        if problems:
            return self._answer(authorization, body, 400, {
                "validation-errors": problems, "title": "Bad Request", "type": "https://httpstatus.es/400",
                "status": 400, "detail": "Request validation failed"})
        added: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        for index, call in enumerate(body):
            request_id = str(call.get("request_id", index))
            contact = self.contacts.get(_last10(str(call["phone"])))
            if contact is None:
                errors.append({"request_id": request_id, "title": "Not found",
                               "detail": "No entity with this phone was found: the call was not added"})
                continue
            self._next_id += 1
            self.added.append(AddedCall(self._next_id, contact, dict(call)))
            added.append({"id": self._next_id, "entity_id": contact, "entity_type": "contact",
                          "account_id": ACCOUNT_ID, "request_id": request_id,
                          "_embedded": {"entity": {"id": contact, "_links": {"self": {
                              "href": f"https://example.amocrm.ru/api/v4/contacts/{contact}"}}}}})
        return self._answer(authorization, body, 200, {"_total_items": len(added), "errors": errors,
                                                       "_embedded": {"calls": added}})

    def _authorized(self, bearer: str | None) -> bool:
        """The long-lived token (not expired), or an OAuth access token not past its end."""
        if bearer is None:
            return False
        if bearer == self.token:
            return bearer not in self._expired
        return self.access_tokens.get(bearer, 0.0) > time.time()

    # -- OAuth ----------------------------------------------------------------------------------------------------

    async def _oauth(self, request: Request) -> JSONResponse:
        raw = await request.body()
        try:
            parsed: Any = json.loads(raw) if request.headers.get("content-type", "").startswith(
                "application/json") else dict(urllib.parse.parse_qsl(raw.decode("utf-8")))
        except (ValueError, UnicodeDecodeError):
            parsed = None
        body = {str(k): str(v) for k, v in parsed.items()} if isinstance(parsed, dict) else {}
        self.token_asks += 1
        if self.token_gate is not None:
            await self.token_gate.wait()
        status, answer = self._grant(body)
        self.token_requests.append(TokenRequest(body, status, answer))
        return JSONResponse(answer, status_code=status)

    def _grant(self, body: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
            return _oauth_error(401, "invalid_client", "Client authentication failed")
        if body.get("redirect_uri") != self.redirect_uri:
            return _oauth_error(400, "invalid_request", "Redirect URI mismatch")
        grant = body.get("grant_type")
        now = time.time()
        if grant == "authorization_code":
            end = self.codes.pop(body.get("code", ""), None)
            if end is None:
                return _oauth_error(400, "invalid_grant", "Authorization code has been revoked")
            if end <= now:
                return _oauth_error(400, "invalid_grant", "Authorization code has expired")
        elif grant == "refresh_token":
            refresh = body.get("refresh_token", "")
            if refresh not in self.refresh_tokens:
                return _oauth_error(400, "invalid_grant", "Token has been revoked")
            self.refresh_tokens.discard(refresh)  # one use: rotated
        else:
            return _oauth_error(400, "unsupported_grant_type", "The authorization grant type is not supported")
        access, refresh = secrets.token_urlsafe(32), "def50200" + secrets.token_hex(64)
        self.access_tokens[access] = now + self.access_seconds
        self.refresh_tokens.add(refresh)
        return 200, {"token_type": "Bearer", "expires_in": int(self.access_seconds), "server_time": int(now),
                     "access_token": access, "refresh_token": refresh}

    def _answer(self, authorization: str | None, body: Any, status: int, answer: Any,
                headers: dict[str, str] | None = None) -> JSONResponse:
        self.requests.append(Seen(authorization, body, status, answer))
        return JSONResponse(answer, status_code=status, headers=headers)

    def _validate(self, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, list) or not body or len(body) > 250:
            return [{"request_id": "0", "errors": [{"code": "InvalidType", "path": "",
                                                    "detail": "A list of 1 to 250 calls was expected."}]}]
        out: list[dict[str, Any]] = []
        for index, call in enumerate(body):
            errors = self._call_errors(call)
            if errors:
                request_id = str(call.get("request_id", index)) if isinstance(call, dict) else str(index)
                out.append({"request_id": request_id, "errors": errors})
        return out

    def _call_errors(self, call: Any) -> list[dict[str, str]]:
        if not isinstance(call, dict):
            return [{"code": "InvalidType", "path": "", "detail": "This value should be of type object."}]
        errors: list[dict[str, str]] = []

        def bad(path: str, detail: str, code: str = "InvalidType") -> None:
            errors.append({"code": code, "path": path, "detail": detail})

        for name in REQUIRED:
            if name not in call or call[name] in (None, ""):
                bad(name, "This value should not be blank.", "NotBlank")
        if "direction" in call and call["direction"] not in ("inbound", "outbound"):
            bad("direction", "The value you selected is not a valid choice.", "NotSupportedChoice")
        if "duration" in call and (not isinstance(call["duration"], int) or call["duration"] < 0):
            bad("duration", "This value should be of type int.")
        for name in ("source", "phone", "uniq", "link", "call_result"):
            if name in call and not isinstance(call[name], str):
                bad(name, "This value should be of type string.")
        if "call_status" in call and call["call_status"] not in STATUSES:
            bad("call_status", "The value you selected is not a valid choice.", "NotSupportedChoice")
        for name in ("responsible_user_id", "created_by"):
            if name in call and (not isinstance(call[name], int) or call[name] not in self.users):
                bad(name, "The user was not found.", "NotFound")
        if "created_at" in call and not isinstance(call["created_at"], int):
            bad("created_at", "This value should be of type int.")
        if "link" in call and isinstance(call["link"], str) and not call["link"].startswith(("http://", "https://")):
            bad("link", "This value is not a valid URL.", "InvalidUrl")
        return errors


def _oauth_error(status: int, error: str, hint: str) -> tuple[int, dict[str, Any]]:
    """A refusal at the token endpoint: the OAuth error and amoCRM's problem fields."""
    return status, {"error": error, "hint": hint, "title": "Некорректный запрос" if status == 400 else "Unauthorized",
                    "type": "https://developers.amocrm.ru/v3/errors/OAuthProblemJson", "status": status,
                    "detail": "В запросе отсутствует ряд параметров или параметры невалидны"}
