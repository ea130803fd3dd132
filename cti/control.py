"""Call-control policy: who may transfer, hang up or pause what, and which channel each action names.

Pure functions of a call snapshot (:class:`~cti.effects.CallContext`) and the user asking
(:class:`Actor`); ``ui_bridge/commands.py`` does the I/O (the AMI action, the reply). Each decision either
returns what to do or raises :class:`Refused` with the protocol's error code and a sentence for the user.

The rules:

- ``agent``: only their own extension: click-to-call from it, transfer or hang up calls their phone is on,
  pause themselves. ``admin``: everything, any extension. ``qa``: reads only; no call control.
- Blind transfer moves the *other* party of the agent (the customer) with ``Redirect`` into the transfer
  context (``[pbx] transfer_context``, or ``external_transfer_context`` for numbers longer than an
  extension), as 13-blind-transfer-redirect and 35-blind-transfer-external do. Attended transfer is
  ``Atxfer`` on the agent's own channel, so the agent talks to the target first; it needs that channel up.
- An admin who is not on the call acts for the agent who answered it.
- Hang-up ends the agent's own leg; an admin who is not on the call ends the caller's channel.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from .effects import CallContext, ChannelView

RefusalCode = Literal["forbidden", "not_found", "conflict", "bad_message"]


class Refused(Exception):
    """The request is not allowed, or not possible in the call's state: nothing goes to the PBX."""

    def __init__(self, code: RefusalCode, message: str) -> None:
        super().__init__(message)
        self.code: RefusalCode = code
        self.message = message


@dataclass(frozen=True, slots=True)
class Actor:
    """Who is asking: a panel user's role and extension (``None`` for admins and QA without a phone)."""

    name: str
    role: str  # agent | admin | qa | employee
    extension: str | None


@dataclass(frozen=True, slots=True)
class TransferRules:
    """The dial-plan facts a transfer needs (``[pbx]``)."""

    transfer_context: str
    external_transfer_context: str
    internal_number_max_digits: int


@dataclass(frozen=True, slots=True)
class Redirect:
    """Blind transfer: send ``channel`` (the other party) to ``exten`` in ``context``."""

    channel: str
    context: str
    exten: str


@dataclass(frozen=True, slots=True)
class AttendedTransfer:
    """Attended transfer: the agent's own ``channel`` dials ``exten`` in ``context`` and talks to it first."""

    channel: str
    context: str
    exten: str


#: The roles bound to their own extension: an agent, and an employee (a master calling a client back from a
#: reminder). Every other role acts for any extension it names and sees every call.
OWN_EXTENSION_ROLES = frozenset({"agent", "employee"})


def may_control(actor: Actor) -> None:
    """QA reads only."""
    if actor.role == "qa":
        raise Refused("forbidden", "QA users cannot control calls")


def acting_extension(actor: Actor, requested: str | None) -> str:
    """The extension a request acts for: an agent's own (another is refused); an admin's choice, else theirs."""
    if actor.role in OWN_EXTENSION_ROLES:
        if requested is not None and requested != actor.extension:
            raise Refused("forbidden", "agents may only act for their own extension")
        if actor.extension is None:
            raise Refused("bad_message", "your user has no extension")
        return actor.extension
    if requested is not None:
        return requested
    if actor.extension is None:
        raise Refused("bad_message", "your user has no extension: say which extension in 'extension'")
    return actor.extension


def in_progress(call: CallContext | None, linkedid: str) -> CallContext:
    """The call, if it is still in progress."""
    if call is None or not call.live:
        raise Refused("not_found", f"no call {linkedid} in progress")
    return call


def may_see(call: CallContext, actor: Actor) -> bool:
    """Agents see (and act on) the calls their phone takes part in; admins and QA see every call."""
    return may_see_audience(call.audience, actor)


def may_see_audience(audience: frozenset[str], actor: Actor) -> bool:
    """:func:`may_see` for a call known only by its audience (one another node follows: ``ui_bridge/mirror.py``)."""
    return actor.role not in OWN_EXTENSION_ROLES or actor.extension in audience


def own_leg(call: CallContext, extension: str | None) -> ChannelView | None:
    """The extension's live channel on the call, the one that is up first (then the oldest)."""
    if extension is None:
        return None
    legs = [c for c in call.channels if c.kind == "agent" and c.agent == extension]
    legs.sort(key=lambda c: (c.up_at is None, c.created_at))
    return legs[0] if legs else None


def other_party(call: CallContext, leg: ChannelView | None) -> ChannelView | None:
    """The party an agent's leg talks to: the call's first channel unless that is the agent, else another
    live channel (up ones first). Local channels are plumbing, never a party."""
    candidates = [c for c in call.channels if c is not leg and c.kind != "local"
                  and (leg is None or c.uniqueid != leg.uniqueid)]
    if not candidates:
        return None
    candidates.sort(key=lambda c: (c.uniqueid != call.origin, c.up_at is None, c.created_at))
    return candidates[0]


def _acting_leg(call: CallContext, actor: Actor, verb: str) -> ChannelView | None:
    leg = own_leg(call, actor.extension)
    if leg is None and actor.role in OWN_EXTENSION_ROLES:
        raise Refused("forbidden", f"agents may only {verb} calls their phone is on")
    return leg


def plan_transfer(call: CallContext, actor: Actor, target: str, mode: str,
                  rules: TransferRules) -> Redirect | AttendedTransfer:
    """What a transfer of ``call`` to ``target`` by ``actor`` sends: which channel, where."""
    may_control(actor)
    leg = _acting_leg(call, actor, "transfer")
    if leg is None:  # an admin acting for the agent who has the call
        leg = own_leg(call, call.answered_by)
    exten = dialable(target)
    internal = len(exten.lstrip("+")) <= rules.internal_number_max_digits
    context = rules.transfer_context if internal else rules.external_transfer_context
    if mode == "attended":
        if leg is None or leg.up_at is None:
            raise Refused("conflict", "an attended transfer needs an agent talking on the call")
        return AttendedTransfer(channel=leg.name, context=context, exten=exten)
    other = other_party(call, leg)
    if other is None:
        raise Refused("conflict", "nobody else is on the call to transfer")
    return Redirect(channel=other.name, context=context, exten=exten)


def plan_hangup(call: CallContext, actor: Actor) -> str:
    """The channel a hang-up by ``actor`` ends: their own leg; for an admin not on the call, the caller's."""
    may_control(actor)
    leg = _acting_leg(call, actor, "hang up")
    if leg is None:
        leg = other_party(call, None)
    if leg is None:
        raise Refused("conflict", "the call has no channel left to hang up")
    return leg.name


def pause_targets(interfaces: dict[str, str], phone: str, queue: str | None) -> list[tuple[str, str | None]]:
    """The (member interface, queue) pairs a pause names.

    ``QueuePause`` names the member's interface, which is not always the phone: a queue member
    ``Local/104@agents`` (queue ``sales`` of the lab) is paused by that name. With ``queue``, that queue's
    interface (the phone when the agent board does not know it); without, one per distinct interface, which
    covers every queue the agent is in.
    """
    if queue:
        return [(interfaces.get(queue, phone), queue)]
    return [(interface, None) for interface in sorted(set(interfaces.values()))] or [(phone, None)]


_NOT_DIALABLE = re.compile(r"[\s()\-]")


def dialable(number: str) -> str:
    """``+7 (916) 123-45-67`` → ``+79161234567``: what the dialplan's patterns expect."""
    return _NOT_DIALABLE.sub("", number)
