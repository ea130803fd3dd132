"""Facts the call model hands to the edges (store, WebSocket hub), named in the past tense.

The model never does I/O; whoever owns the I/O acts on these. One effect, one thing that happened.
"""

from __future__ import annotations

from dataclasses import dataclass

from .records import AgentMiss, CallRecord, MissedEntry


@dataclass(frozen=True, slots=True)
class CallStarted:
    linkedid: str
    direction: str | None
    caller: str | None
    caller_name: str | None
    called: str | None
    at: float


@dataclass(frozen=True, slots=True)
class CallRang:
    """An agent's phone started ringing for a call (the screen-pop moment)."""

    linkedid: str
    agent: str
    channel: str
    uniqueid: str
    caller: str | None
    caller_name: str | None
    called: str | None
    queue: str | None
    at: float


@dataclass(frozen=True, slots=True)
class LegEnded:
    """An agent's leg stopped ringing or ended (answered elsewhere, no answer, hung up...)."""

    linkedid: str
    agent: str
    uniqueid: str
    answered: bool
    cause: int | None
    at: float


@dataclass(frozen=True, slots=True)
class CallAnswered:
    linkedid: str
    answered_by: str
    at: float


@dataclass(frozen=True, slots=True)
class CallTransferred:
    linkedid: str
    transferred_to: str
    kind: str  # blind | attended | redirect
    at: float


@dataclass(frozen=True, slots=True)
class CallsMerged:
    """Two linkedids turned out to be one call (directed pickup): ``absorbed`` lives on as ``into``."""

    into: str
    absorbed: str


@dataclass(frozen=True, slots=True)
class CallEnded:
    record: CallRecord
    missed: MissedEntry | None
    agent_misses: tuple[AgentMiss, ...]


@dataclass(frozen=True, slots=True)
class VariableWanted:
    """The model needs a channel variable it could not see (a call already up when we connected).

    The edge that owns the AMI connection asks the PBX (``Getvar``) and feeds the answer back as a
    ``CtiVariable`` event.
    """

    uniqueid: str
    channel: str
    variable: str


Effect = CallStarted | CallRang | LegEnded | CallAnswered | CallTransferred | CallsMerged | CallEnded | VariableWanted
