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
    """An agent took the call: the first one, and again each agent who takes it later (a transfer)."""

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


@dataclass(frozen=True, slots=True)
class AgentStateChanged:
    """What the agent board shows for one agent changed (``cti/agents.py``).

    ``state`` is ``idle``, ``ringing``, ``in_call``, ``paused``, ``offline`` or ``unknown``. A call
    wins over a pause: a paused agent on a call is ``in_call`` with ``paused=True``. ``paused`` is
    true when the agent is paused in at least one queue (``paused_queues``); ``queues`` lists every
    queue the agent is a member of. ``device_state`` is Asterisk's last device state for the phone
    (``NOT_INUSE``, ``BUSY``...); ``at`` is when the visible state last changed (PBX clock).
    """

    extension: str
    name: str | None
    state: str
    paused: bool
    paused_reason: str | None
    paused_queues: tuple[str, ...]
    queues: tuple[str, ...]
    device_state: str
    at: float


Effect = (
    CallStarted | CallRang | LegEnded | CallAnswered | CallTransferred | CallsMerged | CallEnded | VariableWanted
    | AgentStateChanged
)
