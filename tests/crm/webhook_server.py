"""A webhook receiver that does what ``docs/crm.md`` asks of one (issue 16's tests), as a Starlette app.

It checks each ``POST`` the way a receiver must: the ``X-CTI-Signature`` HMAC of the raw body against the shared
secret (a bad one is answered 401 and counted), the JSON, the ``X-CTI-Event`` matching the body; it deduplicates by
``X-CTI-Delivery`` (a repeat is answered 200 and counted, not kept twice). A test scripts its answers: the next
answers (``answer_next``: 503 with a ``Retry-After``, 429, 400...) or a rule per event (``refuse``), and reads what
arrived per call, in order (:meth:`WebhookReceiver.calls`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

PATH = "/hooks/cti"


@dataclass(frozen=True)
class Answer:
    """A scripted answer: a status, its headers, its body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: str = ""


@dataclass
class WebhookReceiver:
    secret: str
    #: Every accepted event's body, in the order they arrived (a repeated delivery only once).
    events: list[dict[str, Any]] = field(default_factory=list)
    #: Every POST with its delivery id, the status answered and when (``time.monotonic()``): the tries as seen here.
    tries: list[tuple[str | None, int, float]] = field(default_factory=list)
    bad_signatures: int = 0
    repeats: int = 0
    #: Answers for the next POSTs, before anything is checked (a CRM answering 503 whatever comes).
    scripted: deque[Answer] = field(default_factory=deque)
    #: A rule per event body: an Answer refuses it (checked after the signature).
    refuse: Callable[[dict[str, Any]], Answer | None] | None = None
    _seen: set[str] = field(default_factory=set)

    def _try(self, delivery: str | None, status: int) -> None:
        self.tries.append((delivery, status, time.monotonic()))

    def answer_next(self, *answers: Answer) -> None:
        self.scripted.extend(answers)

    @property
    def app(self) -> Starlette:
        return Starlette(routes=[Route(PATH, self.receive, methods=["POST"])])

    async def receive(self, request: Request) -> Response:
        delivery = request.headers.get("x-cti-delivery")
        if self.scripted:
            answer = self.scripted.popleft()
            self._try(delivery, answer.status)
            return Response(answer.body, status_code=answer.status, headers=answer.headers)
        raw = await request.body()
        expected = "sha256=" + hmac.new(self.secret.encode(), raw, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(request.headers.get("x-cti-signature", ""), expected):
            self.bad_signatures += 1
            self._try(delivery, 401)
            return JSONResponse({"error": "bad signature"}, status_code=401)
        body = json.loads(raw)
        if body.get("event") != request.headers.get("x-cti-event") or str(body.get("delivery")) != delivery:
            self._try(delivery, 400)
            return JSONResponse({"error": "headers do not match the body"}, status_code=400)
        if self.refuse is not None:
            refused = self.refuse(body)
            if refused is not None:
                self._try(delivery, refused.status)
                return Response(refused.body, status_code=refused.status, headers=refused.headers)
        self._try(delivery, 200)
        if delivery in self._seen:
            self.repeats += 1
            return JSONResponse({"ok": True, "repeat": True})
        assert delivery is not None
        self._seen.add(delivery)
        self.events.append(body)
        return JSONResponse({"ok": True})

    def calls(self) -> dict[str, list[str]]:
        """Each call's events as they arrived: ``{"main:1795479360.12": ["ringing", "ringing", ...]}``."""
        out: dict[str, list[str]] = {}
        for body in self.events:
            out.setdefault(body["call"]["id"], []).append(body["event"])
        return out

    def of_call(self, call: str) -> list[dict[str, Any]]:
        return [body for body in self.events if body["call"]["id"] == call]
