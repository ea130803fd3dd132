"""Requests from clients: who may do what, and which AMI action carries it out.

Each request becomes one AMI action (a pause: one per member interface of the agent), as a real Asterisk
and the replay PBX record them.
The rules, in one place:

- ``agent``: only their own extension: click-to-call from it, transfer or hang up calls their phone is on,
  pause themselves. ``admin``: everything, any extension. ``qa``: reads only; no call control.
- Blind transfer moves the *other* party of the agent (the customer) with ``Redirect`` into the transfer
  context (``[pbx] transfer_context``, or ``external_transfer_context`` for numbers longer than an
  extension), as 13-blind-transfer-redirect and 35-blind-transfer-external do. Attended transfer is
  ``Atxfer`` on the agent's own channel, so the agent talks to the target first.
- Hang-up ends the agent's own leg; an admin who is not on the call ends the caller's channel.
- Call control is rate-limited per user, not per socket (two tabs, or a browser and a CRM plug-in with a token,
  share one budget): ``[http] command_burst`` commands at once, then ``command_rate`` per second
  (:class:`CommandLimiter`). A command over the limit gets ``rate_limited`` and sends nothing to the PBX.
- What a request carries was checked at the edge (``messages.py``). The rest of an action comes from the PBX
  (channel names, member interfaces), the config (contexts, technology, agents' names) or the user list
  (display names); should any of it hold a line break, ``action()`` refuses to build the action
  (:class:`~asterisk.messages.AmiHeaderError`) and the request gets ``bad_message``: nothing is sent.
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from pydantic import BaseModel

from asterisk.connection import (
    AmiActionFailed,
    AmiActionTimeout,
    AmiConnectionLost,
    AmiError,
    AmiNotConnected,
    AmiResponse,
)
from asterisk.messages import AmiHeaderError, AmiMessage, action
from asterisk.settings import PbxSettings
from cti.model import Call, CallBook, Channel
from store.repository import MissedAlreadyClosed, MissedNotFound, StoreError, User
from store.sqlite import SqliteStore
from ui_bridge.settings import HttpSettings

from . import messages as m
from .notifier import Notifier

log = logging.getLogger(__name__)

SendAction = Callable[[AmiMessage], Awaitable[AmiResponse]]


class RequestFailed(Exception):
    def __init__(self, code: m.ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: m.ErrorCode = code
        self.message = message


def forbidden(message: str) -> RequestFailed:
    return RequestFailed("forbidden", message)


#: The requests that become AMI actions, and so are rate-limited.
CALL_CONTROL = (m.Originate, m.Transfer, m.Hangup, m.QueuePause, m.QueueUnpause)


@dataclass
class CommandLimiter:
    """A token bucket per user: ``burst`` commands at once, then ``rate`` a second.

    Memory is one entry per user who has sent a command (users are created by an admin, so it is bounded).
    A refused command costs nothing: a client that keeps trying gets through as soon as a token is back.
    """

    burst: int
    rate: float
    clock: Callable[[], float] = time.monotonic
    _buckets: dict[str, tuple[float, float]] = field(default_factory=dict)  # user -> (tokens, when)

    def take(self, user: str) -> float:
        """Spend one of ``user``'s tokens: 0.0 if there was one, else the seconds until there is."""
        now = self.clock()
        tokens, then = self._buckets.get(user, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) * self.rate)
        if tokens >= 1.0:
            self._buckets[user] = (tokens - 1.0, now)
            return 0.0
        self._buckets[user] = (tokens, now)
        return (1.0 - tokens) / self.rate


@dataclass
class Commands:
    book: CallBook
    pbx: PbxSettings
    notifier: Notifier
    send_action: SendAction
    store: Callable[[], SqliteStore | None]
    #: extension -> {queue: member interface}, from the agent board (``AgentBoard.member_interfaces``).
    member_interfaces: Callable[[str], dict[str, str]] = lambda _ext: {}
    #: The panel's settings: ``command_burst`` and ``command_rate`` size each user's :class:`CommandLimiter`.
    http: HttpSettings = field(default_factory=HttpSettings)
    limiter: CommandLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = CommandLimiter(self.http.command_burst, self.http.command_rate)

    async def run(self, user: User, request: BaseModel) -> dict[str, object]:
        """Carry out one request for ``user``; returns the reply's data or raises RequestFailed."""
        if isinstance(request, m.Ping):
            return {}
        if isinstance(request, m.MissedClose):
            return await self._missed_close(user, request)
        if not isinstance(request, CALL_CONTROL):
            raise RequestFailed("bad_message", f"{type(request).__name__} is not a command")
        if user.role == "qa":
            raise forbidden("QA users cannot control calls")
        wait = self.limiter.take(user.name)
        if wait > 0:
            raise RequestFailed("rate_limited", f"too many call-control commands; try again in {math.ceil(wait)} s "
                                f"(at most {self.http.command_burst} at once, then {self.http.command_rate:g} "
                                "a second)")
        try:
            if isinstance(request, m.Originate):
                return await self._originate(user, request)
            if isinstance(request, m.Transfer):
                return await self._transfer(user, request)
            if isinstance(request, m.Hangup):
                return await self._hangup(user, request)
            return await self._pause(user, request)
        except AmiHeaderError as exc:
            log.warning("%s for %s not sent to the PBX: %s", request.type, user.name, exc)
            raise RequestFailed("bad_message", f"the PBX cannot be sent this request: {exc}") from None

    # -- helpers ------------------------------------------------------------------------------------

    def _extension_for(self, user: User, requested: str | None) -> str:
        if user.role == "agent":
            if requested is not None and requested != user.extension:
                raise forbidden("agents may only act for their own extension")
            assert user.extension is not None
            return user.extension
        if requested is not None:
            return requested
        if user.extension is None:
            raise RequestFailed("bad_message", "your user has no extension: say which extension in 'extension'")
        return user.extension

    def _call(self, linkedid: str) -> Call:
        call = self.book.calls.get(self.book.canonical(linkedid))
        if call is None or not call.live:
            raise RequestFailed("not_found", f"no call {linkedid} in progress")
        return call

    def _own_leg(self, call: Call, extension: str | None) -> Channel | None:
        """The extension's live channel on the call, the one that is up first."""
        legs = [c for c in _live(call) if c.kind == "agent" and c.agent == extension]
        legs.sort(key=lambda c: (c.up_at is None, c.created_at))
        return legs[0] if legs else None

    async def _send(self, msg: AmiMessage) -> dict[str, object]:
        try:
            answer = await self.send_action(msg)
        except AmiNotConnected:
            raise RequestFailed("pbx_unavailable", "the PBX is not connected; try again in a moment") from None
        except AmiActionTimeout:
            raise RequestFailed("pbx_timeout", "the PBX did not answer in time; the action may or may not "
                                               "have been carried out") from None
        except AmiConnectionLost:
            raise RequestFailed("pbx_unavailable", "the connection to the PBX dropped before it answered; "
                                                   "the action may or may not have been carried out") from None
        except AmiActionFailed as exc:
            raise RequestFailed("pbx_refused", f"the PBX refused {msg.action}: {exc}") from None
        except AmiError as exc:
            raise RequestFailed("pbx_unavailable", str(exc)) from None
        log.info("%s sent (%s)", msg.action, answer.response.action_id)
        return {"action": msg.action, "action_id": answer.response.action_id}

    # -- commands -----------------------------------------------------------------------------------

    async def _originate(self, user: User, req: m.Originate) -> dict[str, object]:
        ext = self._extension_for(user, req.extension)
        number = _dialable(req.number)
        name = self.pbx.agents.get(ext) or (user.display_name if user.extension == ext else None) or ext
        caller_id = f'"{_caller_id_name(name) or ext}" <{ext}>'
        return await self._send(action(
            "Originate", Channel=f"{self.pbx.agent_technology}/{ext}", Context=self.pbx.originate_context,
            Exten=number, Priority="1", CallerID=caller_id,
            Timeout=str(round(self.pbx.originate_timeout * 1000)), Async="true",
        ))

    async def _transfer(self, user: User, req: m.Transfer) -> dict[str, object]:
        call = self._call(req.linkedid)
        leg = self._own_leg(call, user.extension)
        if leg is None and user.role == "agent":
            raise forbidden("agents may only transfer calls their phone is on")
        if leg is None:  # an admin acting for the agent who has the call
            leg = self._own_leg(call, call.answered_by)
        target = _dialable(req.target)
        internal = len(target.lstrip("+")) <= self.pbx.internal_number_max_digits
        context = self.pbx.transfer_context if internal else self.pbx.external_transfer_context
        if req.mode == "attended":
            if leg is None or leg.up_at is None:
                raise RequestFailed("conflict", "an attended transfer needs an agent talking on the call")
            return await self._send(action("Atxfer", Channel=leg.name, Exten=target, Context=context))
        other = _other_party(call, leg)
        if other is None:
            raise RequestFailed("conflict", "nobody else is on the call to transfer")
        return await self._send(action("Redirect", Channel=other.name, Context=context, Exten=target, Priority="1"))

    async def _hangup(self, user: User, req: m.Hangup) -> dict[str, object]:
        call = self._call(req.linkedid)
        leg = self._own_leg(call, user.extension)
        if leg is None and user.role == "agent":
            raise forbidden("agents may only hang up calls their phone is on")
        if leg is None:
            leg = _other_party(call, None)
        if leg is None:
            raise RequestFailed("conflict", "the call has no channel left to hang up")
        return await self._send(action("Hangup", Channel=leg.name, Cause="16"))

    async def _pause(self, user: User, req: m.QueuePause | m.QueueUnpause) -> dict[str, object]:
        """``QueuePause`` names the member's interface, which is not always the phone: a queue member
        ``Local/104@agents`` (queue ``sales`` of the lab) is paused by that name. Without ``queue``, one
        action per distinct interface covers every queue the agent is in."""
        ext = self._extension_for(user, req.extension)
        known = self.member_interfaces(ext)
        phone = f"{self.pbx.agent_technology}/{ext}"
        if req.queue:
            targets: list[tuple[str, str | None]] = [(known.get(req.queue, phone), req.queue)]
        else:
            targets = [(interface, None) for interface in sorted(set(known.values()))] or [(phone, None)]
        results: list[dict[str, object]] = []
        for interface, queue in targets:
            fields: dict[str, str] = {"Interface": interface,
                                      "Paused": "true" if isinstance(req, m.QueuePause) else "false"}
            if queue:
                fields["Queue"] = queue
            if isinstance(req, m.QueuePause) and req.reason:
                fields["Reason"] = req.reason
            results.append(await self._send(action("QueuePause", **fields)))
        if len(results) == 1:
            return results[0]
        return {"action": "QueuePause", "action_ids": [r["action_id"] for r in results]}

    async def _missed_close(self, user: User, req: m.MissedClose) -> dict[str, object]:
        if user.role != "admin":
            raise forbidden("only admins close missed calls by hand")
        store = self.store()
        if store is None:
            raise RequestFailed("internal", "the store is not open yet; try again in a moment")
        try:
            entry = await store.close_missed(req.missed_id, req.comment, by=user.name)
        except MissedNotFound as exc:
            raise RequestFailed("not_found", str(exc)) from None
        except MissedAlreadyClosed as exc:
            raise RequestFailed("conflict", str(exc)) from None
        except StoreError as exc:
            raise RequestFailed("internal", f"the store failed: {exc}") from None
        return {"entry": self.notifier.missed(entry).model_dump()}


def _live(call: Call) -> list[Channel]:
    return [c for uid, c in call.channels.items() if uid in call.live]


def _other_party(call: Call, leg: Channel | None) -> Channel | None:
    """The party an agent's leg talks to: the call's first channel unless that is the agent, else another."""
    candidates = [c for c in _live(call) if c is not leg and c.kind != "local"]
    if not candidates:
        return None
    candidates.sort(key=lambda c: (c.uniqueid != call.origin, c.up_at is None, c.created_at))
    return candidates[0]


_NOT_DIALABLE = re.compile(r"[\s()\-]")
#: What could end the quoted name of a CallerID or start a number in it (Asterisk takes the number from the
#: last ``<...>``), and what is not text at all.
_NOT_IN_NAME = re.compile(r'["\\<>\x00-\x1f\x7f-\x9f\u2028\u2029]+')


def _caller_id_name(name: str) -> str:
    """``Анна "Аня" <b>`` → ``Анна Аня b``: a display name safe inside ``"name" <number>``."""
    return " ".join(_NOT_IN_NAME.sub(" ", name).split())


def _dialable(number: str) -> str:
    """``+7 (916) 123-45-67`` → ``+79161234567``: what the dialplan's patterns expect."""
    return _NOT_DIALABLE.sub("", number)
