"""Keeping every node's mirrors (``ui_bridge/mirror.py``) of the PBXs it does not follow, over the fan-out.

Three duties, each small:

* **Tell** (the holder's side): each call or agent message a node publishes carries, for mirrors, that call's
  state now or that agent's (:func:`update_for`, called where the message is published: ``cards.PopSequencer``,
  the attach request); a ``pbx.status`` carries the holder's link to the PBX, and so does each ``state`` (what a
  node shows at connect as that PBX's link: ``Notifier.pbx_infos``).
* **Keep** (every node's side): an envelope about a PBX this node does not follow updates the mirror
  (:meth:`MirrorSync.on_envelope`); envelopes about a PBX it follows change nothing here (its own view is the
  truth).
* **Heal**: a node publishes the whole state of a PBX when it starts following it (mirrors replace theirs), of
  every PBX it follows when another node asks (``state.request``: what a node sends once its bus is up) and every
  ``HEARTBEAT_SECONDS``; so a message lost on the bus (at most once) is healed within a heartbeat. Which PBXs this
  node follows is read from each handle's ``following()`` every ``CHECK_SECONDS`` (the lease is the daemon's
  business: ``companion/pbx_link.py``).

The store's bus does not say when its connection dropped and came back (messages meanwhile are lost, without a
word to subscribers): the heartbeat is what heals that gap.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

from pydantic import BaseModel, ValidationError

from cti.effects import AgentStateChanged, CallContext, CallEnded, Effect, PbxLinkChanged

from . import messages as m
from .envelope import CallWire, Header, agent_from_wire, agent_wire
from .fanout import Fanout
from .mirror import HEARTBEAT_SECONDS, Mirror, MirroredCall
from .notifier import Notifier
from .pbxs import PbxHandles

log = logging.getLogger(__name__)

#: How often (seconds) the PBXs this node follows are read again, and silent mirrors emptied.
CHECK_SECONDS = 1.0


def call_wire(notifier: Notifier, context: CallContext, card: m.CallerCard | None = None) -> dict[str, Any]:
    """A call's state as mirrors read it (``CallWire``), its card the one given or the one looked up."""
    if not context.live:
        return {"linkedid": context.linkedid, "info": None}
    card = card or notifier.known_cards.get((context.pbx, context.linkedid))
    return {"linkedid": context.linkedid, "info": notifier.messages.call_info(context, card),
            "audience": sorted(context.audience)}


def update_for(effect: Effect, notifier: Notifier, card: m.CallerCard | None = None) -> dict[str, Any] | None:
    """The mirror's part of the envelope of an effect's message: the call's state after it, its end, or the
    agent's state; None for an effect that tells mirrors nothing. ``card``: the pop's looked-up card."""
    if isinstance(effect, CallEnded):
        record = effect.record
        return {"ended": [record.linkedid, *record.linkedids]}
    if isinstance(effect, AgentStateChanged):
        return {"agent": agent_wire(effect)}
    if isinstance(effect, PbxLinkChanged):
        return {"link": {"connected": effect.connected, "since": effect.at}}
    context: CallContext | None = getattr(effect, "context", None)
    if context is None:
        return None
    return {"call": call_wire(notifier, context, card)}


class MirrorSync:
    """Tells and keeps the mirrors of the PBXs this node does not follow (module docstring)."""

    def __init__(self, fanout: Fanout, notifier: Notifier, pbxs: PbxHandles, mirror: Mirror, *,
                 heartbeat: float = HEARTBEAT_SECONDS, check: float = CHECK_SECONDS) -> None:
        self.fanout = fanout
        self.notifier = notifier
        self.pbxs = pbxs
        self.mirror = mirror
        self.heartbeat = heartbeat
        self.check = check
        #: The PBXs this node followed at the last check (their state published since).
        self._followed: set[str] = set()
        self._last_heartbeat = time.monotonic()
        #: Envelopes whose mirror part did not validate (skipped).
        self.unreadable = 0
        fanout.listeners.append(self.on_envelope)
        fanout.on_active.append(self._bus_up)

    # -- telling ---------------------------------------------------------------------------------------------

    def _bus_up(self) -> None:
        """The bus is in use: ask every holder for its PBXs' state, and tell ours."""
        self.fanout.publish_bare("state.request")
        self._followed = self._following()
        self.publish_states()

    def _following(self) -> set[str]:
        return {pbx for pbx, handle in self.pbxs.items() if handle.following()}

    def publish_state(self, pbx: str) -> None:
        """The whole state of a PBX this node follows (calls in progress, agents): mirrors replace theirs."""
        handle = self.pbxs[pbx]
        calls = [call_wire(self.notifier, context) for context in handle.calls.in_progress()]
        connected, since = handle.link_state()
        self.fanout.publish_bare("state", pbx=pbx, calls=calls,
                                 agents=[agent_wire(state) for state in handle.agent_states()],
                                 link={"connected": connected, "since": since} if since is not None else None)

    def publish_states(self) -> None:
        for pbx in sorted(self._followed):
            self.publish_state(pbx)

    async def run(self) -> None:
        """Every ``check`` seconds: publish the state of a PBX this node started following, forget the mirror of
        one it follows now, republish every heartbeat, empty silent mirrors. Until cancelled."""
        while True:
            await asyncio.sleep(self.check)
            try:
                self.tick(time.monotonic())
            except Exception:  # never let a bug end the panel: the next check tries again
                log.exception("panel mirrors: the periodic check failed")

    def tick(self, now: float) -> None:
        if not self.fanout.active:
            return
        following = self._following()
        for pbx in sorted(following - self._followed):
            self.mirror.drop(pbx)  # this node's own view is the truth now
            log.info("panel mirrors: this node follows PBX %s now: its state published", pbx)
            self.publish_state(pbx)
        for pbx in self._followed - following:
            self.mirror.drop(pbx)  # the next holder tells its state when it takes the PBX over
        self._followed = following
        if now - self._last_heartbeat >= self.heartbeat:
            self._last_heartbeat = now
            self.publish_states()
        for pbx in self.mirror.forget_silent():
            log.warning("panel mirrors: no node spoke for PBX %s in %.0f s: its calls and agents are no longer "
                        "shown (is any daemon following it?)", pbx, self.mirror.forget_after)

    # -- keeping ---------------------------------------------------------------------------------------------

    def on_envelope(self, header: Header) -> None:
        """Every envelope this node receives (``Fanout.listeners``)."""
        if header.kind == "state.request":
            if header.node != self.fanout.node:
                self.publish_states()
            return
        pbx = header.pbx
        if pbx is None:
            return
        handle = self.pbxs.get(pbx)
        if handle is None or handle.following():
            return  # a PBX this node serves no one of, or follows itself
        try:
            self._keep(pbx, header)
        except ValidationError as exc:
            self.unreadable += 1
            log.warning("panel mirrors: a %s envelope of PBX %s from node %s does not validate (%s); skipped",
                        header.kind, pbx, header.node, exc.errors()[0]["msg"])

    def _keep(self, pbx: str, header: Header) -> None:
        mirror, holder = self.mirror, header.node
        if header.kind == "state":
            calls = {}
            for raw in header.calls or ():
                wire = CallWire.model_validate(raw)
                if wire.info is not None:
                    calls[wire.linkedid] = MirroredCall(wire.info, frozenset(wire.audience))
            agents = [agent_from_wire(raw) for raw in header.agents or ()]
            mirror.replace(pbx, holder, calls, agents)
            if header.link is not None:
                _keep_link(mirror, pbx, holder, header.link)
        elif header.call is not None:
            wire = CallWire.model_validate(header.call)
            mirror.call(pbx, holder, wire.linkedid,
                        MirroredCall(wire.info, frozenset(wire.audience)) if wire.info is not None else None)
        elif header.ended is not None:
            mirror.ended(pbx, holder, header.ended)
        elif header.agent is not None:
            mirror.agent(pbx, holder, agent_from_wire(header.agent))
        elif header.link is not None:
            _keep_link(mirror, pbx, holder, header.link)
        else:
            mirror.heard(pbx, holder)


class _Link(BaseModel):
    """A holder's link to its PBX as it travels in an envelope (``link``)."""

    connected: bool
    since: float


def _keep_link(mirror: Mirror, pbx: str, holder: str, raw: dict[str, Any]) -> None:
    """A holder's link state from an envelope (``pbx.status`` or ``state``); ValidationError if it is not one."""
    link = _Link.model_validate(raw)
    mirror.link(pbx, holder, link.connected, link.since)
