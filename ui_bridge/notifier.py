"""The panel's memory of the calls in progress: their looked-up cards, and the state a client gets at connect.

Messages themselves are built in ``ui_bridge/outgoing.py`` (:attr:`Notifier.messages`); this adds what needs
the calls in progress, which it sees only through each PBX's :class:`~cti.context.CallView` (frozen snapshots,
never the live ``CallBook``: ``ui_bridge/pbxs.py``), and the cards the ``PopSequencer`` looked up, kept while
their call is in progress for clients that connect mid-call. A call is its (PBX, linkedid): two PBXs can hand
out the same linkedid. Of a PBX another node follows (its handle's ``following()`` False) the state at connect
shows the mirror the fan-out keeps (``ui_bridge/mirror.py``).
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import tzinfo

from cti.effects import AgentStateChanged, Effect
from cti.records import MissedEntry
from store.repository import RegisterChange

from . import messages as m
from .mirror import Mirror
from .numbers import NumberStyle
from .outgoing import Messages, Outgoing
from .pbx_access import among
from .pbxs import PbxHandles

__all__ = ["Notifier", "Outgoing"]


class Notifier:
    def __init__(self, pbxs: PbxHandles, tz: tzinfo | None, region: str, mirror: Mirror | None = None,
                 number_style: NumberStyle = "international") -> None:
        self.pbxs = pbxs
        #: The calls and agents of the PBXs another node follows (``ui_bridge/mirror.py``), kept from the
        #: fan-out's envelopes: what the state at connect shows of a PBX whose ``following()`` is False.
        self.mirror = mirror if mirror is not None else Mirror()
        self.messages = Messages(tz, region, {p.id: p.settings.agents for p in pbxs.values()}, number_style)
        #: The looked-up card of each call in progress by (PBX, linkedid) (filled by ``cards.PopSequencer`` and
        #: the attach request through :meth:`remember_card`, emptied by :meth:`forget_card`).
        self.known_cards: dict[tuple[str, str], m.CallerCard] = {}

    @property
    def tz(self) -> tzinfo | None:
        return self.messages.tz

    def remember_card(self, pbx: str, linkedid: str, card: m.CallerCard) -> None:
        """Keep a call's looked-up card for clients that connect mid-call, only while the call is in progress:
        a lookup that finishes after its call ended would leave an entry that nothing removes."""
        handle = self.pbxs.get(pbx)
        if handle is not None and linkedid in handle.calls:
            self.known_cards[(pbx, linkedid)] = card

    def forget_card(self, pbx: str, linkedid: str) -> None:
        """The call ended (``CallEnded``): its card is no longer anyone's business."""
        self.known_cards.pop((pbx, linkedid), None)

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

    def calls_of(self, extension: str | None, pbxs: Collection[str] | None = None) -> list[m.CallInfo]:
        """Calls in progress on ``pbxs`` (None: every PBX): every one (``extension=None``) or those the
        extension takes part in (an extension of each of those PBXs)."""
        out: list[m.CallInfo] = []
        for handle in self.pbxs.values():
            if not among(pbxs, handle.id):
                continue
            if not handle.following():  # another node follows it: what it told us (ui_bridge/mirror.py)
                out += self.mirror.calls_of(handle.id, extension)
                continue
            out += [self.messages.call_info(call, self.known_cards.get((handle.id, call.linkedid)))
                    for call in handle.calls.in_progress(extension)]
        return out

    def agents_of(self, extension: str | None, pbxs: Collection[str] | None = None) -> list[AgentStateChanged]:
        """Agents' states on ``pbxs`` (None: every PBX): all of them (``extension=None``) or that extension's."""
        out: list[AgentStateChanged] = []
        for handle in self.pbxs.values():
            if not among(pbxs, handle.id):
                continue
            if not handle.following():
                out += self.mirror.agents_of(handle.id, extension)
                continue
            out += [state for state in handle.agent_states() if extension is None or state.extension == extension]
        return out

    def pbx_infos(self, pbxs: Collection[str] | None = None) -> list[m.PbxInfo]:
        """The PBXs of ``pbxs`` (None: every one) with their names and links, for ``hello``."""
        out: list[m.PbxInfo] = []
        for handle in self.pbxs.values():
            if among(pbxs, handle.id):
                # The link of the node that follows the PBX: this one's, or as the holder last said (mirror.py).
                link = handle.link_state() if handle.following() else self.mirror.link_of(handle.id)
                connected, since = link if link is not None else (None, None)
                out.append(m.PbxInfo(id=handle.id, name=handle.label, connected=connected,
                                     since=self.messages.time(since) if since is not None else None))
        return out
