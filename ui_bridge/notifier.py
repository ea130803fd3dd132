"""The panel's memory of the calls in progress: their looked-up cards, and the state a client gets at connect.

Messages themselves are built in ``ui_bridge/outgoing.py`` (:attr:`Notifier.messages`); this adds what needs
the calls in progress, which it sees only through a :class:`~cti.context.CallView` (frozen snapshots, never
the live ``CallBook``), and the cards the ``PopSequencer`` looked up, kept while their call is in progress
for clients that connect mid-call.
"""

from __future__ import annotations

from datetime import tzinfo

from cti.context import CallView
from cti.effects import Effect
from cti.records import MissedEntry
from store.repository import RegisterChange

from . import messages as m
from .outgoing import Messages, Outgoing

__all__ = ["Notifier", "Outgoing"]


class Notifier:
    def __init__(self, calls: CallView, tz: tzinfo | None, region: str, agent_names: dict[str, str] | None = None
                 ) -> None:
        self.calls = calls
        self.messages = Messages(tz, region, agent_names)
        #: The looked-up card of each call in progress (filled by ``cards.PopSequencer`` and the attach
        #: request through :meth:`remember_card`, emptied by :meth:`forget_card`).
        self.known_cards: dict[str, m.CallerCard] = {}

    @property
    def tz(self) -> tzinfo | None:
        return self.messages.tz

    def remember_card(self, linkedid: str, card: m.CallerCard) -> None:
        """Keep a call's looked-up card for clients that connect mid-call, only while the call is in progress:
        a lookup that finishes after its call ended would leave an entry that nothing removes."""
        if linkedid in self.calls:
            self.known_cards[linkedid] = card

    def forget_card(self, linkedid: str) -> None:
        """The call ended (``CallEnded``): its card is no longer anyone's business."""
        self.known_cards.pop(linkedid, None)

    # -- what messages.py builds, kept under the names the edge used --------------------------------------

    def time(self, epoch: float | None) -> str:
        return self.messages.time(epoch)

    def card(self, number: str | None) -> m.CallerCard:
        return self.messages.card(number)

    def for_effect(self, effect: Effect) -> Outgoing | None:
        return self.messages.for_effect(effect)

    def for_register(self, change: RegisterChange) -> list[Outgoing]:
        return self.messages.for_register(change)

    def missed(self, entry: MissedEntry) -> m.MissedInfo:
        return self.messages.missed(entry)

    # -- the state a client gets at connect ----------------------------------------------------------------

    def calls_of(self, extension: str | None) -> list[m.CallInfo]:
        """Calls in progress: every one (``extension=None``) or those the extension takes part in."""
        return [self.messages.call_info(call, self.known_cards.get(call.linkedid))
                for call in self.calls.in_progress(extension)]
