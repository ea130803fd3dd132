"""The one place that turns the core's facts into wire messages, and says who should get each.

Every outgoing event message is built here, from an effect of the call model (``cti.effects``) or a
change of the missed-call register (``store.repository.RegisterChange``), as wazo-calld's notifier
builds its events. The audience of a message is a set of agent extensions: clients subscribed to one of
them get it, and ``all`` subscribers get everything.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo

from pydantic import BaseModel

from cti.effects import (
    AgentStateChanged,
    CallAnswered,
    CallEnded,
    CallRang,
    CallTransferred,
    Effect,
    LegEnded,
)
from cti.model import Call, CallBook
from cti.phones import is_withheld, normalize_number
from cti.records import MissedEntry, iso_time
from store.repository import RegisterChange

from . import messages as m


@dataclass(frozen=True, slots=True)
class Outgoing:
    message: BaseModel
    extensions: frozenset[str]  # agents whose own subscription gets it; ``all`` subscribers always do


class Notifier:
    def __init__(self, book: CallBook, tz: tzinfo | None, region: str, agent_names: dict[str, str] | None = None
                 ) -> None:
        self.book = book
        self.tz = tz
        self.region = region
        self.agent_names = agent_names or {}
        #: The looked-up card of each call in progress (filled by ``cards.PopSequencer`` and the attach
        #: request through :meth:`remember_card`, emptied by :meth:`forget_card`).
        self.known_cards: dict[str, m.CallerCard] = {}

    def remember_card(self, linkedid: str, card: m.CallerCard) -> None:
        """Keep a call's looked-up card for clients that connect mid-call, only while the call is in progress:
        a lookup that finishes after its call ended would leave an entry that nothing removes."""
        if linkedid in self.book.calls:
            self.known_cards[linkedid] = card

    def forget_card(self, linkedid: str) -> None:
        """The call ended (``CallEnded``): its card is no longer anyone's business."""
        self.known_cards.pop(linkedid, None)

    def time(self, epoch: float | None) -> str:
        return iso_time(epoch, self.tz) or ""

    def card(self, number: str | None) -> m.CallerCard:
        if is_withheld(number):
            return m.CallerCard(number=None, withheld=True)
        return m.CallerCard(number=normalize_number(number, self.region))

    # -- effects -------------------------------------------------------------------------------------------

    def for_effect(self, effect: Effect) -> Outgoing | None:
        """The message an effect becomes, or None for effects clients do not see."""
        if isinstance(effect, CallRang):
            call = self.book.calls.get(self.book.canonical(effect.linkedid))
            direction = call.direction if call is not None else None
            return Outgoing(m.CallRinging(
                linkedid=effect.linkedid, extension=effect.agent, channel=effect.channel, caller=effect.caller,
                caller_name=effect.caller_name, called=effect.called, queue=effect.queue,
                direction=direction if direction in ("inbound", "outbound", "internal") else None,  # type: ignore[arg-type]
                at=self.time(effect.at), card=self.card(effect.caller),
            ), frozenset({effect.agent}))
        if isinstance(effect, LegEnded):
            return Outgoing(m.CallLegEnded(linkedid=effect.linkedid, extension=effect.agent,
                                           answered=effect.answered, at=self.time(effect.at)),
                            frozenset({effect.agent}))
        if isinstance(effect, CallAnswered):
            return Outgoing(m.CallAnswered(linkedid=effect.linkedid, answered_by=effect.answered_by,
                                           at=self.time(effect.at)),
                            self._participants(effect.linkedid) | {effect.answered_by})
        if isinstance(effect, CallTransferred):
            return Outgoing(m.CallTransferred(linkedid=effect.linkedid, transferred_to=effect.transferred_to,
                                              kind=effect.kind,  # type: ignore[arg-type]
                                              at=self.time(effect.at)),
                            self._participants(effect.linkedid) | {effect.transferred_to})
        if isinstance(effect, CallEnded):
            r = effect.record
            agents = sorted({*r.agents_answered, *r.agents_rung_not_answered,
                             *([r.answered_by] if r.answered_by else [])})
            return Outgoing(m.CallEnded(
                linkedid=r.linkedid, direction=r.direction, caller=r.caller, caller_name=r.caller_name,
                called=r.called, outcome=r.outcome, missed_reason=r.missed_reason, answered_by=r.answered_by,
                agents=agents, talk_seconds=round(r.talk_seconds, 3), ring_seconds=round(r.ring_seconds, 3),
                hung_up_by=r.hung_up_by, transferred_to=r.transferred_to,
                at=self.time(r.ended_at if r.ended_at is not None else r.started_at),
            ), frozenset(agents) | ({r.transferred_to} if r.transferred_to else frozenset()))
        if isinstance(effect, AgentStateChanged):
            return Outgoing(self.agent_state(effect), frozenset({effect.extension}))
        return None

    def agent_state(self, state: AgentStateChanged) -> m.AgentState:
        return m.AgentState(
            extension=state.extension, name=state.name or self.agent_names.get(state.extension), state=state.state,  # type: ignore[arg-type]
            paused=state.paused, paused_reason=state.paused_reason, queues=list(state.queues),
            paused_queues=list(state.paused_queues), device_state=state.device_state, at=self.time(state.at),
        )

    def _participants(self, linkedid: str) -> frozenset[str]:
        call = self.book.calls.get(self.book.canonical(linkedid))
        return frozenset(call_agents(call)) if call is not None else frozenset()

    # -- the missed-call register ------------------------------------------------------------------------

    def for_register(self, change: RegisterChange) -> list[Outgoing]:
        out = [Outgoing(m.MissedNew(entry=self.missed(e)), frozenset()) for e in change.opened]
        out += [Outgoing(m.MissedUpdated(entry=self.missed(e)), frozenset()) for e in change.updated]
        return out

    def missed(self, entry: MissedEntry) -> m.MissedInfo:
        return m.MissedInfo.model_validate(entry.to_json(self.tz))

    # -- the state a client gets at connect ----------------------------------------------------------------

    def calls_of(self, extension: str | None) -> list[m.CallInfo]:
        """Calls in progress: every one (``extension=None``) or those the extension takes part in."""
        out: list[m.CallInfo] = []
        for call in self.book.calls.values():
            if extension is not None and extension not in call_agents(call):
                continue
            if not call.live:
                continue
            out.append(self.call_info(call))
        return out

    def call_info(self, call: Call) -> m.CallInfo:
        legs: list[m.LegInfo] = []
        for chan in call.channels.values():
            if chan.kind != "agent" or chan.agent is None or chan.uniqueid not in call.live:
                continue
            if chan.up_at is not None:
                state = "talking"
            elif chan.rang_at is not None or chan.state in ("Ringing", "Ring"):
                state = "ringing"
            else:
                state = "dialing"
            legs.append(m.LegInfo(extension=chan.agent, channel=chan.name, state=state))  # type: ignore[arg-type]
        direction = call.direction
        return m.CallInfo(
            linkedid=call.linkedid,
            direction=direction if direction in ("inbound", "outbound", "internal") else None,  # type: ignore[arg-type]
            caller=call.caller, caller_name=call.caller_name, called=call.called, queue=call.queue,
            started_at=self.time(call.started_at), answered_at=iso_time(call.answered_at, self.tz),
            answered_by=call.answered_by, state="talking" if call.answered_at is not None else "ringing",
            agents=legs, card=self.known_cards.get(call.linkedid) or self.card(call.caller),
        )


def call_agents(call: Call) -> set[str]:
    """Agent extensions taking part in a call: every agent phone among its channels, and who answered."""
    agents: set[str] = {c.agent for c in call.channels.values() if c.agent is not None}
    if call.answered_by:
        agents.add(call.answered_by)
    return agents
