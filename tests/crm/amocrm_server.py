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
* Faults: :meth:`AmoCrmAccount.fail_next`, :meth:`AmoCrmAccount.hang_next` / :meth:`AmoCrmAccount.release`; the
  server itself is taken down and back by ``tests/crm/local_server.py``.

Every request is recorded (:attr:`AmoCrmAccount.requests`), refused ones too.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

ACCOUNT_ID = 28805383
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
                 users: tuple[int, ...] = (), rate_limit: int = 7, hang_seconds: float = 60.0) -> None:
        self.token = token or secrets.token_urlsafe(24)
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
        self.app = Starlette(routes=[Route("/api/v4/calls", self._calls, methods=["POST"])])

    # -- faults ---------------------------------------------------------------------------------------------------

    def expire_token(self) -> None:
        """The current token stops working (a long-lived token past its end date)."""
        self._expired.add(self.token)

    def renew_token(self) -> str:
        self.token = secrets.token_urlsafe(24)
        return self.token

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
        if bearer is None or bearer != self.token or bearer in self._expired:
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
