"""Requests from clients carried out: the policy asked, the AMI action sent, the reply data returned.

Who may do what, and which channel an action names, is decided by the pure rules of ``cti/control.py``
(from a frozen call snapshot, :class:`~cti.context.CallView`); this module only does the I/O. Each request
becomes one AMI action (a pause: one per member interface of the agent), as a real Asterisk and the replay
PBX record them.

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
from cti import control
from cti.context import CallView
from store.repository import MissedAlreadyClosed, MissedNotFound, Store, StoreError, User
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


def actor(user: User) -> control.Actor:
    return control.Actor(name=user.name, role=user.role, extension=user.extension)


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
    calls: CallView
    pbx: PbxSettings
    notifier: Notifier
    send_action: SendAction
    store: Callable[[], Store | None]
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
        try:
            control.may_control(actor(user))
        except control.Refused as exc:
            raise RequestFailed(exc.code, exc.message) from None
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
        except control.Refused as exc:
            raise RequestFailed(exc.code, exc.message) from None
        except AmiHeaderError as exc:
            log.warning("%s for %s not sent to the PBX: %s", request.type, user.name, exc)
            raise RequestFailed("bad_message", f"the PBX cannot be sent this request: {exc}") from None

    # -- helpers ------------------------------------------------------------------------------------

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
        ext = control.acting_extension(actor(user), req.extension)
        number = control.dialable(req.number)
        name = self.pbx.agents.get(ext) or (user.display_name if user.extension == ext else None) or ext
        caller_id = f'"{_caller_id_name(name) or ext}" <{ext}>'
        return await self._send(action(
            "Originate", Channel=f"{self.pbx.agent_technology}/{ext}", Context=self.pbx.originate_context,
            Exten=number, Priority="1", CallerID=caller_id,
            Timeout=str(round(self.pbx.originate_timeout * 1000)), Async="true",
        ))

    async def _transfer(self, user: User, req: m.Transfer) -> dict[str, object]:
        call = control.in_progress(self.calls.get(req.linkedid), req.linkedid)
        plan = control.plan_transfer(call, actor(user), req.target, req.mode, control.TransferRules(
            transfer_context=self.pbx.transfer_context,
            external_transfer_context=self.pbx.external_transfer_context,
            internal_number_max_digits=self.pbx.internal_number_max_digits))
        if isinstance(plan, control.AttendedTransfer):
            return await self._send(action("Atxfer", Channel=plan.channel, Exten=plan.exten, Context=plan.context))
        return await self._send(action("Redirect", Channel=plan.channel, Context=plan.context, Exten=plan.exten,
                                       Priority="1"))

    async def _hangup(self, user: User, req: m.Hangup) -> dict[str, object]:
        call = control.in_progress(self.calls.get(req.linkedid), req.linkedid)
        return await self._send(action("Hangup", Channel=control.plan_hangup(call, actor(user)), Cause="16"))

    async def _pause(self, user: User, req: m.QueuePause | m.QueueUnpause) -> dict[str, object]:
        """One ``QueuePause`` per member interface the pause names (``control.pause_targets``)."""
        ext = control.acting_extension(actor(user), req.extension)
        targets = control.pause_targets(self.member_interfaces(ext), f"{self.pbx.agent_technology}/{ext}",
                                        req.queue)
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
        return {"entry": self.notifier.messages.missed(entry).model_dump()}


#: What could end the quoted name of a CallerID or start a number in it (Asterisk takes the number from the
#: last ``<...>``), and what is not text at all.
_NOT_IN_NAME = re.compile(r'["\\<>\x00-\x1f\x7f-\x9f\u2028\u2029]+')


def _caller_id_name(name: str) -> str:
    """``Анна "Аня" <b>`` → ``Анна Аня b``: a display name safe inside ``"name" <number>``."""
    return " ".join(_NOT_IN_NAME.sub(" ", name).split())
