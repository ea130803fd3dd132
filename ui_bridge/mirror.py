"""What a panel node knows of the PBXs another node follows: their calls in progress and their agents.

Why: a panel node serves agents and admins of every PBX, but follows (holds the lease of, ``companion/pbx_link.py``)
only some of them, maybe none. A client connecting to it gets the calls in progress and the agents of its PBXs
in its ``state`` (``Notifier.calls_of`` / ``agents_of``): for a PBX this node does not follow, they come from
here. The holder of each PBX tells every node through the fan-out (``ui_bridge/fanout.py``): each call or agent
message carries the call's or agent's state now, and the holder sends the PBX's whole state when it starts
following it, when a node asks (a node that starts), and every ``HEARTBEAT_SECONDS`` (``mirror_sync.py``), which
heals a message lost on the way.

A PBX nobody has spoken for in ``FORGET_AFTER_SECONDS`` (three heartbeats missed: its holder died or lost the
database, and nobody took it over yet) is emptied: showing calls that may have ended long ago would mislead.
``holder_of`` says who follows a PBX, or None (the health report: nobody follows it now).

Pure state, no I/O: the time comes from a clock given at construction (tests pass their own).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from cti.effects import AgentStateChanged

from . import messages as m

#: A holder republishes the state of each PBX it follows this often (seconds).
HEARTBEAT_SECONDS = 30.0
#: A mirror of a PBX nobody spoke for in this long is emptied (three heartbeats and a margin).
FORGET_AFTER_SECONDS = 3 * HEARTBEAT_SECONDS + 5.0


@dataclass(frozen=True, slots=True)
class MirroredCall:
    """A call in progress on a PBX followed elsewhere: as a client is shown it, and the agents who see it."""

    info: m.CallInfo
    audience: frozenset[str]


@dataclass(eq=False)
class _Pbx:
    holder: str
    heard_at: float
    calls: dict[str, MirroredCall] = field(default_factory=dict)
    agents: dict[str, AgentStateChanged] = field(default_factory=dict)
    #: The holder's link to the PBX (connected, since: epoch seconds), once it said (``pbx.status``, ``state``).
    link: tuple[bool, float] | None = None


class Mirror:
    """The mirrored PBXs by id (only those this node does not follow: the caller decides which)."""

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 forget_after: float = FORGET_AFTER_SECONDS) -> None:
        self._clock = clock
        self.forget_after = forget_after
        self._pbxs: dict[str, _Pbx] = {}

    def _heard(self, pbx: str, holder: str) -> _Pbx:
        now = self._clock()
        found = self._pbxs.get(pbx)
        if found is None:
            found = self._pbxs[pbx] = _Pbx(holder, now)
        found.holder, found.heard_at = holder, now
        return found

    # -- updates from the holders ------------------------------------------------------------------------

    def call(self, pbx: str, holder: str, linkedid: str, call: MirroredCall | None) -> None:
        """A call's state now (None: no longer in progress)."""
        mirrored = self._heard(pbx, holder)
        if call is None:
            mirrored.calls.pop(linkedid, None)
        else:
            mirrored.calls[linkedid] = call

    def ended(self, pbx: str, holder: str, linkedids: Iterable[str]) -> None:
        """A call ended (every linkedid it had: a pickup merges two)."""
        mirrored = self._heard(pbx, holder)
        for linkedid in linkedids:
            mirrored.calls.pop(linkedid, None)

    def agent(self, pbx: str, holder: str, state: AgentStateChanged) -> None:
        self._heard(pbx, holder).agents[state.extension] = state

    def link(self, pbx: str, holder: str, connected: bool, since: float) -> None:
        """The holder's link to the PBX was lost or is back (or is so, as its ``state`` says)."""
        self._heard(pbx, holder).link = (connected, since)

    def link_of(self, pbx: str) -> tuple[bool, float] | None:
        """The link of the PBX's holder as it last said, or None (not said, or nobody spoke for the PBX lately)."""
        mirrored = self._pbxs.get(pbx)
        return mirrored.link if mirrored is not None else None

    def heard(self, pbx: str, holder: str) -> None:
        """A message of ``pbx`` that changes no call or agent: its holder is alive."""
        self._heard(pbx, holder)

    def replace(self, pbx: str, holder: str, calls: dict[str, MirroredCall], agents: list[AgentStateChanged]) -> None:
        """The PBX's whole state, from its holder: everything known of it before is dropped."""
        mirrored = self._heard(pbx, holder)
        mirrored.calls = dict(calls)
        mirrored.agents = {a.extension: a for a in agents}

    def drop(self, pbx: str) -> None:
        """Forget ``pbx``: this node follows it now (its own view is the truth), or nobody does."""
        self._pbxs.pop(pbx, None)

    def forget_silent(self) -> list[str]:
        """Empty the PBXs nobody spoke for in ``forget_after`` seconds; returns their ids."""
        limit = self._clock() - self.forget_after
        silent = [pbx for pbx, mirrored in self._pbxs.items() if mirrored.heard_at < limit]
        for pbx in silent:
            del self._pbxs[pbx]
        return silent

    # -- what the snapshot reads -------------------------------------------------------------------------

    def calls_of(self, pbx: str, extension: str | None) -> list[m.CallInfo]:
        """The PBX's calls in progress (``extension=None``), or those the extension takes part in."""
        mirrored = self._pbxs.get(pbx)
        if mirrored is None:
            return []
        return [c.info for c in mirrored.calls.values() if extension is None or extension in c.audience]

    def agents_of(self, pbx: str, extension: str | None) -> list[AgentStateChanged]:
        mirrored = self._pbxs.get(pbx)
        if mirrored is None:
            return []
        if extension is None:
            return list(mirrored.agents.values())
        found = mirrored.agents.get(extension)
        return [found] if found is not None else []

    def has_call(self, pbx: str, linkedid: str) -> bool:
        return self.get(pbx, linkedid) is not None

    def get(self, pbx: str, linkedid: str) -> MirroredCall | None:
        """The call in progress as its holder last said, or None."""
        mirrored = self._pbxs.get(pbx)
        return mirrored.calls.get(linkedid) if mirrored is not None else None

    def holder_of(self, pbx: str) -> str | None:
        """The node that follows ``pbx`` as last heard (within ``forget_after``), else None."""
        mirrored = self._pbxs.get(pbx)
        if mirrored is None or mirrored.heard_at < self._clock() - self.forget_after:
            return None
        return mirrored.holder
