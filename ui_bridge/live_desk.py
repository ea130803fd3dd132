"""The panel's requests about live audio (issue 17): answering «Это …?», and a supervisor listening in.

* ``identify.confirm`` (the call's agent): the offered contact is attached to the call, as the directory's
  ``POST /api/calls/{linkedid}/contact`` does it (``ui_bridge/routes/directory.py``), and the call's audience gets a
  fresh ``call.card``; ``identify.dismiss``: nothing is attached. Either closes the call's offer: the daemon's live taps
  (``companion/live/manager.py``, reached through ``close_offer``) make no other for that call.
* ``listen_in`` (an admin of the call's PBX, with an extension of their own): an AMI ``Originate`` rings the admin's
  phone and, once answered, runs ``ChanSpy`` on the agent's channel with options ``q`` (no beep, no name said) and
  ``E`` (it ends when the agent's channel hangs up), and no ``w``/``W``/``B``: the admin hears agent and customer
  and can say nothing to either. The spy is the PBX's own (no audio crosses the daemon).

A request is about a call in progress on a PBX this node follows (the offer was made here); a call that is not up is
``not_found``. Call control's rate limit applies to ``listen_in`` (it is an AMI action); the others only write.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from pydantic import BaseModel

from asterisk.messages import AmiHeaderError, AmiMessage, action
from cti import control
from cti.effects import CallContext
from store.repository import ContactNotFound, Store, User

from . import messages as m
from .cards import CardService
from .fanout import Fanout
from .mirror_sync import call_wire
from .notifier import Notifier
from .pbx_access import PbxRefused, pbx_of_call
from .pbxs import PbxHandle, PbxHandles

log = logging.getLogger(__name__)

#: ChanSpy's options for a supervisor: quiet, ends with the spied channel; never whisper or barge.
LISTEN_OPTIONS = "qE"


class LiveRefused(Exception):
    """A live request refused: the protocol's error code and the developers' message."""

    def __init__(self, code: m.ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code: m.ErrorCode = code
        self.message = message


def listen_in_originate(technology: str, supervisor: str, agent_channel: str, agent: str | None,
                        timeout: float) -> AmiMessage:
    """The ``Originate`` that rings the supervisor's phone and, answered, lets them hear the agent's call silently.
    ``AmiHeaderError`` for a channel name that cannot go into an action."""
    shown = agent or "call"
    return action("Originate", Channel=f"{technology}/{supervisor}", Application="ChanSpy",
                  Data=f"{agent_channel},{LISTEN_OPTIONS}", CallerID=f'"Listen {shown}" <{shown}>',
                  Timeout=str(round(timeout * 1000)), Async="true")


class LiveDesk:
    """Carries the live requests out (module docstring).

    Args:
        send: sends an AMI action to a PBX and returns the reply's data (``Commands.send``: its errors mapped).
        close_offer: tells the live taps the call's offer was answered (None: no taps on this node).
    """

    def __init__(self, pbxs: PbxHandles, notifier: Notifier, out: Fanout, cards: CardService | None,
                 store: Callable[[], Store | None],
                 send: Callable[[PbxHandle, AmiMessage], Awaitable[dict[str, object]]],
                 close_offer: Callable[[str, str], None] | None = None) -> None:
        self.pbxs = pbxs
        self.notifier = notifier
        self.out = out
        self.cards = cards
        self.store = store
        self.send = send
        self.close_offer = close_offer

    async def request(self, user: User, request: BaseModel) -> dict[str, object]:
        """One live request for ``user``: the reply's data, or :class:`LiveRefused`."""
        if isinstance(request, m.ListenIn):
            return await self._listen_in(user, request)
        if isinstance(request, m.IdentifyConfirm | m.IdentifyDismiss):
            pbx, call = self._call(user, request.linkedid, request.pbx)
            if not control.may_see(call, _actor(user)):
                raise LiveRefused("forbidden", "agents answer «Это …?» on calls their phone is on")
            if isinstance(request, m.IdentifyDismiss):
                self._closed(pbx, call.linkedid)
                return {}
            return await self._confirm(user, pbx, call, request.contact_id)
        raise LiveRefused("bad_message", f"{type(request).__name__} is not a live request")

    def _call(self, user: User, linkedid: str, requested: str | None) -> tuple[str, CallContext]:
        try:
            pbx = pbx_of_call(user, list(self.pbxs), requested, linkedid,
                              lambda p: self.pbxs[p].calls.get(linkedid) is not None)
        except PbxRefused as exc:
            raise LiveRefused(exc.code, exc.message) from None
        call = self.pbxs[pbx].calls.get(linkedid) if self.pbxs[pbx].following() else None
        if call is None:
            raise LiveRefused("not_found", f"no call {linkedid} in progress on PBX {pbx} (on this node)")
        return pbx, call

    def _closed(self, pbx: str, linkedid: str) -> None:
        if self.close_offer is not None:
            self.close_offer(pbx, linkedid)

    async def _confirm(self, user: User, pbx: str, call: CallContext, contact_id: int) -> dict[str, object]:
        store = self.store()
        if store is None:
            raise LiveRefused("internal", "the store is not open")
        try:
            await store.attach_call(call.linkedid, contact_id, by=user.name, pbx=pbx)
        except ContactNotFound as exc:
            raise LiveRefused("not_found", str(exc)) from None
        self._closed(pbx, call.linkedid)
        log.info("live: %s confirmed contact %d for call %s on %s", user.name, contact_id, call.linkedid, pbx)
        if self.cards is None:
            return {"card": None}
        card = self.cards.wire(await self.cards.card_for(call.caller, linkedid=call.linkedid, pbx=pbx))
        self.notifier.remember_card(pbx, call.linkedid, card)
        self.out.publish(self.notifier.messages.call_card(call.linkedid, card, pbx), call.audience, pbx,
                         {"call": call_wire(self.notifier, call, card)} if self.out.active else None)
        return {"card": card.model_dump()}

    async def _listen_in(self, user: User, request: m.ListenIn) -> dict[str, object]:
        if user.role != "admin":
            raise LiveRefused("forbidden", "listening in is for admins")
        if not user.extension:
            raise LiveRefused("bad_message", "you have no extension of your own to listen on")
        pbx, call = self._call(user, request.linkedid, request.pbx)
        agent = request.extension or call.answered_by
        leg = control.own_leg(call, agent) if agent is not None else None
        if leg is None and request.extension is None and call.legs:
            leg = call.legs[0]
        if leg is None:
            raise LiveRefused("not_found", f"no agent's phone {request.extension or ''} on call {call.linkedid}")
        handle = self.pbxs[pbx]
        try:
            msg = listen_in_originate(handle.settings.agent_technology, user.extension, leg.name, leg.agent,
                                      handle.settings.originate_timeout)
        except AmiHeaderError as exc:
            raise LiveRefused("bad_message", f"the PBX cannot be sent this request: {exc}") from None
        log.info("live: %s listens in on %s (call %s on %s)", user.name, leg.name, call.linkedid, pbx)
        return await self.send(handle, msg)


def _actor(user: User) -> control.Actor:
    return control.Actor(name=user.name, role=user.role, extension=user.extension)
