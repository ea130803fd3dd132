"""What the panel needs of each PBX the daemon follows: one handle per PBX, looked up by the PBX's short id.

A linkedid and an extension mean something only within their PBX (101 on two PBXs is two agents, and two PBXs
can hand out the same linkedid), so every part of the panel that reads calls in progress, shows agents or sends
an action to a PBX goes through the handle of that call's or that user's PBX. The composition root
(``companion.daemon``) builds one handle per followed PBX; the panel never sees the daemon's books or AMI clients.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Collection, Mapping
from dataclasses import dataclass

from asterisk.connection import AmiResponse
from asterisk.messages import AmiMessage
from asterisk.settings import PbxSettings
from cti.context import CallView
from cti.effects import AgentStateChanged

SendAction = Callable[[AmiMessage], Awaitable[AmiResponse]]


@dataclass(frozen=True, slots=True)
class PbxHandle:
    """One followed PBX as the panel sees it: its settings, its calls in progress, its agents, its AMI link."""

    settings: PbxSettings  # ``settings.id`` is the PBX's short id; the dial-plan facts call control needs
    calls: CallView
    agent_states: Callable[[], list[AgentStateChanged]]
    #: extension -> {queue: member interface}, from that PBX's agent board.
    member_interfaces: Callable[[str], dict[str, str]]
    send_action: SendAction
    #: Whether the daemon is connected to this PBX's AMI now.
    connected: Callable[[], bool]
    #: Whether this node follows the PBX now (holds its lease: ``companion/pbx_link.py``); another node may.
    following: Callable[[], bool] = lambda: True
    #: The link as the panel shows it (``pbx.status``): up (logged in and resynced) or not, and since when (epoch
    #: seconds; None: not known). None: ``connected()``, since unknown.
    link: Callable[[], tuple[bool, float | None]] | None = None
    #: The queues the PBX listed at resync (``AgentBoard.queues``), members or not: the supervisor's figures.
    queues: Callable[[], Collection[str]] = lambda: ()
    #: The PBX's clock now: the daemon's clock plus the offset the events' ``Timestamp`` headers show
    #: (``cti/clock.py``). Every time a call carries is on the PBX's clock, so a wait is measured against this:
    #: a PBX whose clock is two minutes behind must not make every caller look two minutes late.
    pbx_time: Callable[[], float] = time.time

    def link_state(self) -> tuple[bool, float | None]:
        """Whether the daemon's link to the PBX is up, and since when (``pbx.status``)."""
        return self.link() if self.link is not None else (self.connected(), None)

    @property
    def id(self) -> str:
        return self.settings.id

    @property
    def label(self) -> str:
        """The PBX's name for people (its id when it has none)."""
        return self.settings.name or self.settings.id


#: The followed PBXs by id, in the configuration's order.
PbxHandles = Mapping[str, PbxHandle]
