"""A 1C base's HTTP service for the call events, as ``docs/crm.md`` "1C" asks a 1C developer to write it.

What the service does (the contract our push is tested against): ``POST /base/hs/cti/events`` with Basic auth of
a 1C user (401 with ``WWW-Authenticate`` when the credentials are wrong, as the 1C web server answers), a JSON body
(400 when it is not one event: what a 1C handler answers a body it cannot read), the event taken once by its
``delivery`` (a repeat is answered 200 and not taken again). A test can make it answer something else for a while
(:meth:`OneCService.fail_next`: 503 while the base is being updated, 500 a handler's exception) and take it down
and up on the same port (``tests/crm/local_server.py``).
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

#: Where the service is published: ``<web server>/<base>/hs/<root URL of the HTTP service>/<template>``.
PATH = "/base/hs/cti/events"
USER = "cti"
PASSWORD = "пароль-1С"


@dataclass
class OneCService:
    """The service's behaviour and what it was sent."""

    user: str = USER
    password: str = PASSWORD
    #: Every event taken, in the order it was taken (a repeat is not taken again).
    events: list[dict[str, Any]] = field(default_factory=list)
    #: Every request that reached the handler: (status answered, the ``delivery`` or None).
    requests: list[tuple[int, int | None]] = field(default_factory=list)
    #: Deliveries sent again after they were taken.
    repeats: list[int] = field(default_factory=list)
    _failures: list[tuple[int, str]] = field(default_factory=list)

    def fail_next(self, count: int, status: int = 503, body: str = "Информационная база обновляется") -> None:
        """The next ``count`` requests (with good credentials) are answered ``status``."""
        self._failures.extend([(status, body)] * count)

    def of_call(self, call: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["call"]["id"] == call]

    def app(self) -> Starlette:
        return Starlette(routes=[Route(PATH, self._event, methods=["POST"])])

    async def _event(self, request: Request) -> Response:
        if not self._authorised(request.headers.get("authorization", "")):
            self.requests.append((401, None))
            return Response("Unauthorized", status_code=401, headers={"WWW-Authenticate": 'Basic realm="1C"'})
        if self._failures:
            status, body = self._failures.pop(0)
            self.requests.append((status, None))
            return Response(body, status_code=status, media_type="text/plain; charset=utf-8")
        try:
            event = json.loads(await request.body())
            delivery = event["delivery"]
            if not isinstance(delivery, int) or request.headers.get("x-cti-delivery") != str(delivery):
                raise ValueError("delivery")
        except (ValueError, KeyError, TypeError):
            self.requests.append((400, None))
            return Response("Не удалось прочитать событие", status_code=400,
                            media_type="text/plain; charset=utf-8")
        self.requests.append((200, delivery))
        if any(e["delivery"] == delivery for e in self.events):
            self.repeats.append(delivery)
        else:
            self.events.append(event)
        return JSONResponse({"result": "ok"})

    def _authorised(self, header: str) -> bool:
        scheme, _, encoded = header.partition(" ")
        if scheme.lower() != "basic":
            return False
        try:
            user, _, password = base64.b64decode(encoded).decode("utf-8").partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        return user == self.user and password == self.password
