"""Requests from clients carried out: the policy asked, the AMI action sent, the reply data returned.

Who may do what, and which channel an action names, is decided by the pure rules of ``cti/control.py``
(from a frozen call snapshot, :class:`~cti.context.CallView`); this module only does the I/O. Each request
becomes one AMI action (a pause: one per member interface of the agent), as a real Asterisk and the replay
PBX record them.

- Call control is rate-limited per user, not per socket (two tabs, or a browser and a CRM plug-in with a token,
  share one budget): ``[http] command_burst`` commands at once, then ``command_rate`` per second
  (:class:`CommandLimiter`). A command over the limit gets ``rate_limited`` and sends nothing to the PBX.
- Each action goes to one PBX, through its handle (``ui_bridge/pbxs.py``): a request about a call goes to that
  call's PBX, click-to-call and pauses to the agent's. Which PBX a request names is decided by
  ``ui_bridge/pbx_access.py`` (``pbx`` in the request, or the user's only PBX, or the one PBX of the user's
  where the call is); a user never acts on a PBX they do not belong to (``forbidden``).
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
)
from asterisk.messages import AmiHeaderError, AmiMessage, action
from cti import control
from cti.effects import CallContext
from store.repository import MissedAlreadyClosed, MissedNotFound, Store, StoreError, User
from ui_bridge.settings import HttpSettings

from . import messages as m
from .notifier import Notifier
from .pbx_access import PbxRefused, named_pbx, pbx_of_call
from .pbxs import PbxHandle, PbxHandles

log = logging.getLogger(__name__)


#: Carries a call-control request out on the node that follows its PBX: (user, request with its ``pbx``, pbx).
Forward = Callable[[User, BaseModel, str], Awaitable[dict[str, object]]]
#: Acknowledges the alert with this id for a user; returns the reply's data or raises :class:`RequestFailed`.
AcknowledgeAlert = Callable[[User, int], Awaitable[dict[str, object]]]
#: Carries out a request of the shared register (``missed.claim``/``release``/``result``: ``ui_bridge/register.py``).
RegisterRequest = Callable[[User, BaseModel], Awaitable[dict[str, object]]]
#: The shared register's requests (not call control: never rate-limited as commands, never sent to a PBX).
REGISTER_REQUESTS = (m.MissedClaim, m.MissedRelease, m.MissedResult)
#: Carries out a request of the contact script (``ui_bridge/script_desk.py``: ``ScriptDesk.request``).
ScriptRequest = Callable[[User, BaseModel], Awaitable[dict[str, object]]]
#: The contact script's requests (the desk sends a transfer a step asks for through :meth:`Commands.run` itself).
SCRIPT_REQUESTS = (m.ScriptStart, m.ScriptAnswer, m.ScriptBack, m.ScriptDiscard, m.ScriptRuns)
#: Carries out a request of the call-back reminders (``reminder.close``: ``ui_bridge/reminders.py``).
ReminderRequest = Callable[[User, BaseModel], Awaitable[dict[str, object]]]
#: Carries out a request of live audio (``identify.*``, ``listen_in``: ``ui_bridge/live_desk.py``).
LiveRequest = Callable[[User, BaseModel], Awaitable[dict[str, object]]]


class RequestFailed(Exception):
    """A request refused: the protocol's error ``code``, the ``message`` for developers, and ``by``: the user a
    conflict is with (``Error.by``), for a client to name in its own words."""

    def __init__(self, code: m.ErrorCode, message: str, by: str | None = None) -> None:
        super().__init__(message)
        self.code: m.ErrorCode = code
        self.message = message
        self.by = by


def forbidden(message: str) -> RequestFailed:
    return RequestFailed("forbidden", message)


def actor(user: User) -> control.Actor:
    return control.Actor(name=user.name, role=user.role, extension=user.extension)


#: Live audio's requests (``ui_bridge/live_desk.py``; ``listen_in`` is rate-limited as call control).
LIVE_REQUESTS = (m.IdentifyConfirm, m.IdentifyDismiss, m.ListenIn)
LiveRequestModel = m.IdentifyConfirm | m.IdentifyDismiss | m.ListenIn
#: The requests that become AMI actions, and so are rate-limited.
CALL_CONTROL = (m.Originate, m.Transfer, m.Hangup, m.QueuePause, m.QueueUnpause)
CallControl = m.Originate | m.Transfer | m.Hangup | m.QueuePause | m.QueueUnpause


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
    #: The followed PBXs: each one's calls, settings, member interfaces and AMI link.
    pbxs: PbxHandles
    notifier: Notifier
    store: Callable[[], Store | None]
    #: The panel's settings: ``command_burst`` and ``command_rate`` size each user's :class:`CommandLimiter`.
    http: HttpSettings = field(default_factory=HttpSettings)
    #: Across nodes: carries a request for a PBX another node follows out there (``ui_bridge/forwarding.py``;
    #: the panel sets it while the store's bus is in use). None: such a request gets ``pbx_unavailable``.
    forward: Forward | None = None
    #: Acknowledges an alert for a user (``ui_bridge/alerts.py``'s ``AlertEngine.acknowledge``; set by the daemon).
    acknowledge_alert: AcknowledgeAlert | None = None
    #: Carries out the shared register's requests (``RegisterDesk.request``; set by the panel).
    register: RegisterRequest | None = None
    #: Carries out the contact script's requests (``ScriptDesk.request``; set by the daemon when scripts are loaded).
    scripts: ScriptRequest | None = None
    #: Carries out the reminders' requests (``ReminderDesk.request``; set by the panel).
    reminders: ReminderRequest | None = None
    #: Carries out live audio's requests (``LiveDesk.request``; set by the daemon when ``[live]`` is on).
    live: LiveRequest | None = None
    limiter: CommandLimiter = field(init=False)

    def __post_init__(self) -> None:
        self.limiter = CommandLimiter(self.http.command_burst, self.http.command_rate)

    async def run(self, user: User, request: BaseModel) -> dict[str, object]:
        """Carry out one request for ``user``; returns the reply's data or raises RequestFailed."""
        if isinstance(request, m.Ping):
            return {}
        if isinstance(request, m.MissedClose):
            return await self._missed_close(user, request)
        if isinstance(request, REGISTER_REQUESTS):
            if self.register is None:
                raise RequestFailed("internal", "the missed-call register is not shared on this node")
            return await self.register(user, request)
        if isinstance(request, SCRIPT_REQUESTS):
            if self.scripts is None:
                raise RequestFailed("not_found", "no contact scripts are loaded ([scripts] folder)")
            return await self.scripts(user, request)
        if isinstance(request, m.ReminderClose):
            if self.reminders is None:
                raise RequestFailed("internal", "reminders are not kept on this node")
            return await self.reminders(user, request)
        if isinstance(request, LIVE_REQUESTS):
            return await self._live(user, request)
        if isinstance(request, m.AlertAck):
            if self.acknowledge_alert is None:
                raise RequestFailed("internal", "alerts are not kept on this node")
            return await self.acknowledge_alert(user, request.alert_id)
        command = _may_control(user, request)
        wait = self.limiter.take(user.name)
        if wait > 0:
            raise RequestFailed("rate_limited", f"too many call-control commands; try again in {math.ceil(wait)} s "
                                f"(at most {self.http.command_burst} at once, then {self.http.command_rate:g} "
                                "a second)")
        elsewhere = self._followed_elsewhere(user, command)
        if elsewhere is not None:
            return await self._forward(user, command, elsewhere)
        return await self._dispatch(user, command)

    async def _forward(self, user: User, request: BaseModel, pbx: str) -> dict[str, object]:
        """``request`` carried out by the node that follows ``pbx`` (``ui_bridge/forwarding.py``)."""
        if self.forward is None:
            raise RequestFailed("pbx_unavailable", f"the PBX {pbx!r} is followed by another node, which this node "
                                                   "cannot reach")
        return await self.forward(user, request.model_copy(update={"pbx": pbx}), pbx)

    async def run_forwarded(self, user: User, request: BaseModel) -> dict[str, object]:
        """A call-control request another node forwarded (``ui_bridge/forwarding.py``): that node checked the
        user's session, the rate limit and the PBX; the control policy is checked here, on this node's live calls,
        as for a request of its own. Never forwarded again. Live audio's requests come too: the offers and the taps
        are the following node's."""
        if isinstance(request, LIVE_REQUESTS):
            return await self._live_here(user, request)
        return await self._dispatch(user, _may_control(user, request))

    def _followed_elsewhere(self, user: User, request: CallControl) -> str | None:
        """The PBX a call-control request acts on, if another node follows it (else None: this node does, or the
        request is refused further on as it would be anyway)."""
        followed = list(self.pbxs)
        try:
            if isinstance(request, m.Transfer | m.Hangup):
                linkedid = request.linkedid
                pbx = pbx_of_call(user, followed, request.pbx, linkedid, lambda p: self._has_call(p, linkedid))
            else:
                pbx = named_pbx(user, followed, request.pbx, what=request.type)
        except PbxRefused:
            return None  # refused with the same words by the handler
        return None if self.pbxs[pbx].following() else pbx

    def _has_call(self, pbx: str, linkedid: str) -> bool:
        handle = self.pbxs[pbx]
        if handle.following():
            return handle.calls.get(linkedid) is not None
        return self.notifier.mirror.has_call(pbx, linkedid)

    async def _dispatch(self, user: User, request: CallControl) -> dict[str, object]:
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
        except PbxRefused as exc:
            raise RequestFailed(exc.code, exc.message) from None
        except AmiHeaderError as exc:
            log.warning("%s for %s not sent to the PBX: %s", request.type, user.name, exc)
            raise RequestFailed("bad_message", f"the PBX cannot be sent this request: {exc}") from None

    # -- helpers ------------------------------------------------------------------------------------

    def _pbx_for(self, user: User, requested: str | None, what: str) -> PbxHandle:
        """The PBX an action for an extension goes to (click-to-call, a pause): the agent's own."""
        return _followed_here(self.pbxs[named_pbx(user, list(self.pbxs), requested, what=what)])

    def _call(self, user: User, linkedid: str, requested: str | None) -> tuple[PbxHandle, CallContext]:
        """The call in progress a request is about, on the PBX it names (or the user's one PBX that has it)."""
        pbx = pbx_of_call(user, list(self.pbxs), requested, linkedid,
                          lambda p: self.pbxs[p].calls.get(linkedid) is not None)
        handle = _followed_here(self.pbxs[pbx])
        return handle, control.in_progress(handle.calls.get(linkedid), linkedid)

    async def _send(self, handle: PbxHandle, msg: AmiMessage) -> dict[str, object]:
        try:
            answer = await handle.send_action(msg)
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
        log.info("%s sent to PBX %s (%s)", msg.action, handle.id, answer.response.action_id)
        return {"action": msg.action, "action_id": answer.response.action_id, "pbx": handle.id}

    async def send(self, handle: PbxHandle, msg: AmiMessage) -> dict[str, object]:
        """An action sent to a PBX for a request (the live desk's ``listen_in``): the reply's data, or
        :class:`RequestFailed` with the PBX's failure as the protocol words it."""
        return await self._send(handle, msg)

    async def _live(self, user: User, request: LiveRequestModel) -> dict[str, object]:
        """A live request: rate-limited here when it is an action (``listen_in``), carried out by the node that
        follows the call's PBX (it tapped the call and made the offer), forwarded there when it is another."""
        if isinstance(request, m.ListenIn):
            wait = self.limiter.take(user.name)
            if wait > 0:
                raise RequestFailed("rate_limited", f"too many call-control commands; try again in {math.ceil(wait)} s")
        try:
            pbx = pbx_of_call(user, list(self.pbxs), request.pbx, request.linkedid,
                              lambda p: self._has_call(p, request.linkedid))
        except PbxRefused:
            pbx = None  # refused with the same words by the live desk
        if pbx is not None and not self.pbxs[pbx].following():
            return await self._forward(user, request, pbx)
        return await self._live_here(user, request)

    async def _live_here(self, user: User, request: LiveRequestModel) -> dict[str, object]:
        from .live_desk import LiveRefused

        if self.live is None:
            raise RequestFailed("not_found", "live audio is not on ([live] enabled)")
        try:
            return await self.live(user, request)
        except LiveRefused as exc:
            raise RequestFailed(exc.code, exc.message) from None

    # -- commands -----------------------------------------------------------------------------------

    async def originate_for(self, source: str, extension: str, number: str,
                            pbx: str | None = None) -> dict[str, object]:
        """Click-to-call started by another system (a CRM's event, 1C's API) for ``extension``: the panel's own
        click-to-call, with the request's checks (``ValidationError`` for a bad number or extension;
        ``RequestFailed`` as the panel gets it). ``source`` names the system in the log (``"bitrix24"``)."""
        req = m.Originate(type="originate", id=f"{source}-originate", number=number, extension=extension, pbx=pbx)
        acting = User(name=source, role="admin", extension=extension)
        log.info("click-to-call from %s for extension %s", source, extension)
        return await self._originate(acting, req)

    async def _originate(self, user: User, req: m.Originate) -> dict[str, object]:
        ext = control.acting_extension(actor(user), req.extension)
        number = control.dialable(req.number)
        handle = self._pbx_for(user, req.pbx, "click-to-call")
        pbx = handle.settings
        name = pbx.agents.get(ext) or (user.display_name if user.extension == ext else None) or ext
        caller_id = f'"{_caller_id_name(name) or ext}" <{ext}>'
        return await self._send(handle, action(
            "Originate", Channel=f"{pbx.agent_technology}/{ext}", Context=pbx.originate_context,
            Exten=number, Priority="1", CallerID=caller_id,
            Timeout=str(round(pbx.originate_timeout * 1000)), Async="true",
        ))

    async def _transfer(self, user: User, req: m.Transfer) -> dict[str, object]:
        handle, call = self._call(user, req.linkedid, req.pbx)
        pbx = handle.settings
        plan = control.plan_transfer(call, actor(user), req.target, req.mode, control.TransferRules(
            transfer_context=pbx.transfer_context,
            external_transfer_context=pbx.external_transfer_context,
            internal_number_max_digits=pbx.internal_number_max_digits))
        if isinstance(plan, control.AttendedTransfer):
            return await self._send(handle, action("Atxfer", Channel=plan.channel, Exten=plan.exten,
                                                   Context=plan.context))
        return await self._send(handle, action("Redirect", Channel=plan.channel, Context=plan.context,
                                               Exten=plan.exten, Priority="1"))

    async def _hangup(self, user: User, req: m.Hangup) -> dict[str, object]:
        handle, call = self._call(user, req.linkedid, req.pbx)
        return await self._send(handle, action("Hangup", Channel=control.plan_hangup(call, actor(user)),
                                               Cause="16"))

    async def _pause(self, user: User, req: m.QueuePause | m.QueueUnpause) -> dict[str, object]:
        """One ``QueuePause`` per member interface the pause names (``control.pause_targets``)."""
        ext = control.acting_extension(actor(user), req.extension)
        handle = self._pbx_for(user, req.pbx, "a pause")
        targets = control.pause_targets(handle.member_interfaces(ext),
                                        f"{handle.settings.agent_technology}/{ext}", req.queue)
        results: list[dict[str, object]] = []
        for interface, queue in targets:
            fields: dict[str, str] = {"Interface": interface,
                                      "Paused": "true" if isinstance(req, m.QueuePause) else "false"}
            if queue:
                fields["Queue"] = queue
            if isinstance(req, m.QueuePause) and req.reason:
                fields["Reason"] = req.reason
            results.append(await self._send(handle, action("QueuePause", **fields)))
        if len(results) == 1:
            return results[0]
        return {"action": "QueuePause", "action_ids": [r["action_id"] for r in results], "pbx": handle.id}

    async def _missed_close(self, user: User, req: m.MissedClose) -> dict[str, object]:
        if user.role != "admin":
            raise forbidden("only admins close missed calls by hand")
        store = self.store()
        if store is None:
            raise RequestFailed("internal", "the store is not open yet; try again in a moment")
        try:
            if user.pbxs and (await store.get_missed(req.missed_id)).pbx not in user.pbxs:
                raise forbidden("this missed call is another PBX's")
            entry = await store.close_missed(req.missed_id, req.comment, by=user.name)
        except MissedNotFound as exc:
            raise RequestFailed("not_found", str(exc)) from None
        except MissedAlreadyClosed as exc:
            raise RequestFailed("conflict", str(exc)) from None
        except StoreError as exc:
            raise RequestFailed("internal", f"the store failed: {exc}") from None
        return {"entry": self.notifier.messages.missed(entry).model_dump()}


def _followed_here(handle: PbxHandle) -> PbxHandle:
    """``handle`` if this node follows its PBX now; else ``pbx_unavailable`` (a request forwarded to this node for
    a PBX it no longer follows: its lease moved meanwhile)."""
    if not handle.following():
        raise RequestFailed("pbx_unavailable", f"the PBX {handle.id!r} is not followed by this node (any more); "
                            "try again in a moment")
    return handle


#: What could end the quoted name of a CallerID or start a number in it (Asterisk takes the number from the
#: last ``<...>``), and what is not text at all.
_NOT_IN_NAME = re.compile(r'["\\<>\x00-\x1f\x7f-\x9f\u2028\u2029]+')


def _caller_id_name(name: str) -> str:
    """``Анна "Аня" <b>`` → ``Анна Аня b``: a display name safe inside ``"name" <number>``."""
    return " ".join(_NOT_IN_NAME.sub(" ", name).split())


def _may_control(user: User, request: BaseModel) -> CallControl:
    """The request as a call-control one, from a user who may control calls at all; else RequestFailed."""
    if not isinstance(request, CALL_CONTROL):
        raise RequestFailed("bad_message", f"{type(request).__name__} is not a command")
    if user.role == "employee" and not isinstance(request, m.Originate):  # a reminder's call-back, nothing else
        raise forbidden("an employee calls clients back from their reminders; other call control is the agents'")
    try:
        control.may_control(actor(user))
    except control.Refused as exc:
        raise RequestFailed(exc.code, exc.message) from None
    return request
