"""Zammad's Generic CTI endpoint for the tests, as its documentation and its code describe it (issue 16).

What it implements (docs.zammad.org "Generic CTI": the ``newCall``, ``answer`` and ``hangup`` events; Zammad's
``Integration::CtiController``, ``Cti::Driver::Base`` and ``Cti::Log.process``):

* ``POST /api/v1/cti/<token>``, JSON or form-encoded (``user[]`` repeated); the token in the path is the only
  authentication: a wrong one is ``401 {"error": "Invalid token, please contact your admin!"}``. The integration
  switched off: ``422 {"error": "Feature is disabled, please contact your administrator!"}``.
* ``direction`` other than ``in``/``out``: ``422 {"error": "Invalid direction!"}``.
* ``newCall`` of an inbound call from a number on the blocklist (:attr:`ZammadCti.blocked`): logged with the comment
  ``reject, busy`` and answered ``{"action": "reject", "reason": "busy"}``. ``newCall`` of an outbound call with an
  outbound caller ID configured (:attr:`ZammadCti.outbound_caller_id`): ``{"action": "dial", "caller_id", "number"}``.
  Else ``{}``.
* The caller log (:attr:`ZammadCti.calls`, by ``callId``): a second ``newCall`` of a ``callId`` is Zammad's
  ``RuntimeError "call_id … already exists!"``, which its error handler answers ``500 {"error": "Object already
  exists!", "error_human": …}``; an ``answer`` or ``hangup`` of a ``callId`` it does not know is ``RuntimeError "No
  such call_id"``, answered ``500 {"error": "Error ID …: Please contact your administrator."}`` (Zammad hides the
  message from a caller that is not an admin); an ``answer`` after the ``hangup`` is ignored; a ``hangup`` marks an
  inbound call still in ``newCall`` (cause not ``forwarded``) as not done (missed).
* Faults: :meth:`ZammadCti.fail_next` (the next requests answered with a status), :meth:`ZammadCti.hang_next` (the
  next requests held until :meth:`ZammadCti.release` or ``hang_seconds``: a client times out); the server itself is
  taken down and brought back by ``tests/crm/local_server.py``.

Every request is recorded (:attr:`ZammadCti.requests`), refused ones too, so a test reads exactly what was sent.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

PATH = "/api/v1/cti/{token}"
CAUSES = frozenset({"normalClearing", "busy", "cancel", "noAnswer", "congestion", "notFound", "forwarded"})


@dataclass
class Seen:
    """One request as Zammad got it."""

    token: str
    params: dict[str, Any]
    status: int
    answer: Any
    at: float = field(default_factory=time.time)

    @property
    def event(self) -> str | None:
        value = self.params.get("event")
        return value if isinstance(value, str) else None


@dataclass
class LogEntry:
    """A row of Zammad's caller log (``Cti::Log``)."""

    call_id: str
    direction: str
    from_: str
    to: str
    state: str
    user: str | None = None
    queue: str | None = None
    comment: str | None = None
    done: bool = True
    answering_number: str | None = None
    #: Each event Zammad applied to this row, in order (``newCall``, ``answer``, ``hangup``).
    events: list[str] = field(default_factory=list)
    #: Each applied event's parameters, in order.
    params: list[dict[str, Any]] = field(default_factory=list)


class ZammadCti:
    """Zammad's Generic CTI: its state and its Starlette app (:attr:`app`)."""

    def __init__(self, *, token: str | None = None, blocked: tuple[str, ...] = (), enabled: bool = True,
                 outbound_caller_id: str | None = None, hang_seconds: float = 60.0) -> None:
        self.token = token or secrets.token_urlsafe(18)
        self.blocked = set(blocked)
        self.enabled = enabled
        self.outbound_caller_id = outbound_caller_id
        self.hang_seconds = hang_seconds
        self.requests: list[Seen] = []
        self.calls: dict[str, LogEntry] = {}
        self._fail: list[tuple[int, Any, dict[str, str]]] = []
        self._hang = 0
        self._hang_processed = False
        self._released = asyncio.Event()
        self.app = Starlette(routes=[Route(PATH, self._endpoint, methods=["POST"])])

    def endpoint(self, base_url: str) -> str:
        """The URL Zammad's integration page shows: what ``[crm.zammad] url`` is set to."""
        return f"{base_url}/api/v1/cti/{self.token}"

    # -- faults ---------------------------------------------------------------------------------------------------

    def fail_next(self, times: int, status: int = 503, body: Any = None, headers: dict[str, str] | None = None) -> None:
        """The next ``times`` requests are answered ``status`` (with ``body``), not processed."""
        answer = body if body is not None else {"error": "Service Unavailable"}
        self._fail.extend([(status, answer, dict(headers or {}))] * times)

    def hang_next(self, times: int, *, processed: bool = False) -> None:
        """The next ``times`` requests get no answer until :meth:`release` (or ``hang_seconds``): not processed, or
        (``processed``) processed first, their answer lost (the client times out after Zammad logged the event)."""
        self._hang += times
        self._hang_processed = processed
        self._released.clear()

    def release(self) -> None:
        self._hang = 0
        self._released.set()

    # -- what the tests read --------------------------------------------------------------------------------------

    def events_of(self, call_id: str) -> list[str]:
        """The events Zammad applied to the call, in order ([] for a call it does not know)."""
        entry = self.calls.get(call_id)
        return list(entry.events) if entry else []

    def accepted(self) -> list[Seen]:
        return [seen for seen in self.requests if seen.status == 200]

    # -- the endpoint ---------------------------------------------------------------------------------------------

    async def _endpoint(self, request: Request) -> JSONResponse:
        token = request.path_params["token"]
        params = await _params(request)
        if self._hang > 0:
            self._hang -= 1
            if self._hang_processed:
                self._handle(token, params)
            try:
                async with asyncio.timeout(self.hang_seconds):
                    await self._released.wait()
            except TimeoutError:
                pass
            return self._answer(token, params, 504, {"error": "gateway timeout"})
        if self._fail:
            status, body, headers = self._fail.pop(0)
            return self._answer(token, params, status, body, headers)
        return self._handle(token, params)

    def _handle(self, token: str, params: dict[str, Any]) -> JSONResponse:
        """Zammad's controller: configured? the token? the direction? then the event."""
        if not self.enabled:
            return self._answer(token, params, 422,
                                {"error": "Feature is disabled, please contact your administrator!"})
        if token != self.token:
            return self._answer(token, params, 401, {"error": "Invalid token, please contact your admin!"})
        if params.get("direction") not in ("in", "out"):
            return self._answer(token, params, 422, {"error": "Invalid direction!"})
        try:
            result = self._process(params)
        except _Duplicate:
            return self._answer(token, params, 500,
                                {"error": "Object already exists!", "error_human": "Object already exists!"})
        except _Hidden:
            return self._answer(token, params, 500, {"error": f"Error ID {secrets.token_urlsafe(6)}: Please contact "
                                                              "your administrator."})
        return self._answer(token, params, 200, result)

    def _answer(self, token: str, params: dict[str, Any], status: int, body: Any,
                headers: dict[str, str] | None = None) -> JSONResponse:
        self.requests.append(Seen(token, params, status, body))
        return JSONResponse(body, status_code=status, headers=headers)

    def _process(self, params: dict[str, Any]) -> dict[str, Any]:
        """``Cti::Driver::Base#process``: the blocklist, the outbound caller ID, then the caller log."""
        event = params.get("event")
        if event == "newCall" and params["direction"] == "in" and params.get("from") in self.blocked:
            self._log(params, comment="reject, busy")
            return {"action": "reject", "reason": "busy"}
        if event == "newCall" and params["direction"] == "out" and self.outbound_caller_id:
            self._log({**params, "from": self.outbound_caller_id})
            return {"action": "dial", "caller_id": self.outbound_caller_id, "number": params.get("to")}
        self._log(params)
        return {}

    def _log(self, params: dict[str, Any], comment: str | None = None) -> None:
        """``Cti::Log.process``."""
        event = params.get("event")
        call_id = str(params.get("callId") or params.get("call_id") or "")
        user = params.get("user")
        if isinstance(user, list):
            user = ", ".join(str(u) for u in user)
        entry = self.calls.get(call_id)
        if event == "newCall":
            if entry is not None:
                raise _Duplicate
            self.calls[call_id] = LogEntry(
                call_id=call_id, direction=params["direction"], from_=str(params.get("from", "")),
                to=str(params.get("to", "")), state="newCall", user=user, queue=params.get("queue"),
                comment=comment or params.get("cause"), done=params["direction"] != "in",
                events=["newCall"], params=[params])
            return
        if event == "answer":
            if entry is None:
                raise _Hidden
            if entry.state == "hangup":
                return  # "call is already hangup, ignore answer"
            entry.state = "answer"
            if user:
                entry.user = user
            entry.done = True
            entry.answering_number = params.get("answeringNumber")
            entry.events.append("answer")
            entry.params.append(params)
            return
        if event == "hangup":
            if entry is None:
                raise _Hidden
            cause = params.get("cause")
            if cause is not None and cause not in CAUSES:
                raise _Hidden
            entry.done = True
            if entry.direction == "in" and entry.state == "newCall" and cause != "forwarded":
                entry.done = False
            entry.state = "hangup"
            entry.comment = cause
            entry.events.append("hangup")
            entry.params.append(params)
            return
        raise _Hidden  # ArgumentError "Unknown event"


class _Duplicate(Exception):
    pass


class _Hidden(Exception):
    """A Zammad error whose message it hides from a caller that is not an admin."""


async def _params(request: Request) -> dict[str, Any]:
    """The event's parameters: a JSON object, or a form (``user[]`` repeated: a list), as Rails reads them."""
    raw = await request.body()
    if request.headers.get("content-type", "").startswith("application/json"):
        try:
            value = json.loads(raw or b"{}")
        except ValueError:
            return {}
        return value if isinstance(value, dict) else {}
    out: dict[str, Any] = {}
    for key, value in parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True):
        if key.endswith("[]"):
            out.setdefault(key[:-2], []).append(value)
        else:
            out[key] = value
    return out
