"""Facts the call model hands to the edges (store, WebSocket hub), named in the past tense.

The model never does I/O; whoever owns the I/O acts on these. One effect, one thing that happened.

An effect about a call in progress carries its :class:`CallContext`: the call as it stood right after the
event that caused the effect (direction, caller and called, who was rung and who answered, the live
channels, who may see it). ``cti/context.py`` fills it in right after ``CallBook.apply``, so the edges (the
panel, a script engine, a CRM push) work from the effect alone, in their own task, however far the live
``CallBook`` has moved on since. The model's handlers leave it ``None``.

They are built per event, so each class takes :func:`~cti.frozen.fast_init` (the same frozen class, built
faster).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from .frozen import fast_init
from .records import DEFAULT_PBX, AgentMiss, CallRecord, MissedEntry

LegPhase = Literal["ringing", "talking", "dialing"]


@fast_init
@dataclass(frozen=True, slots=True)
class ChannelView:
    """One live channel of a call, frozen: what call control and the panel need of it."""

    uniqueid: str
    name: str
    kind: str  # trunk | agent | local | other
    agent: str | None  # the agent's extension when kind == "agent"
    phase: LegPhase  # talking once up; ringing once it rang (or the PBX says Ring/Ringing); else dialing
    created_at: float
    up_at: float | None
    rang_at: float | None


@fast_init
@dataclass(frozen=True, slots=True)
class CallContext:
    """A call in progress, frozen at one moment: its parties and who may see it.

    ``audience`` is every agent extension that takes part (a phone of theirs is or was on the call, or they
    answered it): the agents who may see the call and act on it. ``channels`` are the live ones, oldest
    first; ``origin`` is the uniqueid of the call's first channel (the caller's, for an inbound call).
    """

    linkedid: str
    direction: str | None
    caller: str | None
    caller_name: str | None
    called: str | None
    queue: str | None
    started_at: float
    answered_at: float | None
    answered_by: str | None
    transferred_to: str | None
    origin: str
    channels: tuple[ChannelView, ...]
    agents_rung: tuple[str, ...]
    agents_answered: tuple[str, ...]
    audience: frozenset[str]
    pbx: str = DEFAULT_PBX  # the PBX the call is on: an audience's extensions are that PBX's
    #: The caller waits in ``queue`` now (``QueueCallerJoin`` until ``QueueCallerLeave``): ``queue`` alone stays
    #: set after the caller left it (sent to voicemail by a time-out, or answered).
    in_queue: bool = False

    @property
    def legs(self) -> tuple[ChannelView, ...]:
        """The agents' live phones on the call."""
        return tuple(c for c in self.channels if c.kind == "agent" and c.agent is not None)

    @property
    def live(self) -> bool:
        return bool(self.channels)


@fast_init
@dataclass(frozen=True, slots=True)
class CallStarted:
    linkedid: str
    direction: str | None
    caller: str | None
    caller_name: str | None
    called: str | None
    at: float
    context: CallContext | None = None
    pbx: str = DEFAULT_PBX  # the PBX of the call (set by cti.context.enrich), also when context is None


@fast_init
@dataclass(frozen=True, slots=True)
class CallDialing:
    """An agent's outbound call started dialling the outside number: the moment the model knows it is outbound.

    Once per outbound call, before its ``CallAnswered``: at the ``DialBegin`` to a trunk channel (the trunk's own
    ``Newchannel`` names no number yet; 33-phone-outbound-remote-hangup, and for a click-to-call once the agent's own
    phone answered the ``Originate``, 16-click-to-call-answered). The CRMs show the agent the customer's card from
    here, while the customer's phone rings. A call the daemon joined mid-way gets it from the resync that finds it
    outbound (``cti/resync.py``, dated as every change seen there), also when the snapshot shows it answered already;
    a call rebuilt after a restart whose dial was seen before does not get it again. Internal calls never do.

    ``agent`` is the extension dialling out (the call's first agent phone, else the call's caller); ``number`` the
    external number dialled.
    """

    linkedid: str
    agent: str | None
    number: str | None
    at: float
    context: CallContext | None = None
    pbx: str = DEFAULT_PBX  # the PBX of the call (set by cti.context.enrich), also when context is None


@fast_init
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
    context: CallContext | None = None
    pbx: str = DEFAULT_PBX  # the PBX of the call (set by cti.context.enrich), also when context is None


@fast_init
@dataclass(frozen=True, slots=True)
class LegEnded:
    """An agent's leg stopped ringing or ended (answered elsewhere, no answer, hung up...)."""

    linkedid: str
    agent: str
    uniqueid: str
    answered: bool
    cause: int | None
    at: float
    context: CallContext | None = None
    pbx: str = DEFAULT_PBX  # the PBX of the call (set by cti.context.enrich), also when context is None


@fast_init
@dataclass(frozen=True, slots=True)
class CallAnswered:
    """An agent took the call: the first one, and again each agent who takes it later (a transfer)."""

    linkedid: str
    answered_by: str
    at: float
    context: CallContext | None = None
    pbx: str = DEFAULT_PBX  # the PBX of the call (set by cti.context.enrich), also when context is None


@fast_init
@dataclass(frozen=True, slots=True)
class CallTransferred:
    linkedid: str
    transferred_to: str
    kind: str  # blind | attended | redirect
    at: float
    context: CallContext | None = None
    pbx: str = DEFAULT_PBX  # the PBX of the call (set by cti.context.enrich), also when context is None


@fast_init
@dataclass(frozen=True, slots=True)
class CallsMerged:
    """Two linkedids turned out to be one call (directed pickup): ``absorbed`` lives on as ``into``."""

    into: str
    absorbed: str
    context: CallContext | None = None
    pbx: str = DEFAULT_PBX  # the PBX of the call (set by cti.context.enrich), also when context is None


@fast_init
@dataclass(frozen=True, slots=True)
class CallEnded:
    record: CallRecord
    missed: MissedEntry | None
    agent_misses: tuple[AgentMiss, ...]
    #: The agents who took part (rung, answered, on the call, the transfer target): who may see its end.
    audience: frozenset[str] = frozenset()


@fast_init
@dataclass(frozen=True, slots=True)
class VariableWanted:
    """The model needs a channel variable it could not see (a call already up when we connected).

    The edge that owns the AMI connection asks the PBX (``Getvar``) and feeds the answer back as a
    ``CtiVariable`` event.
    """

    uniqueid: str
    channel: str
    variable: str


@fast_init
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
    pbx: str = DEFAULT_PBX  # the PBX the extension belongs to (101 on two PBXs is two agents)


@fast_init
@dataclass(frozen=True, slots=True)
class PbxLinkChanged:
    """The daemon's link to a PBX was lost, or is back (``companion/pbx_link.py`` hands it, not the model).

    Lost: from then on the PBX's events are not seen and the calls in progress shown for it may be out of date.
    Back: logged in again *and* the resync snapshot reconciled (the calls that ended meanwhile already ended), so
    what is shown of the PBX is its own truth again. ``at`` is the daemon's clock (epoch seconds) at the change."""

    pbx: str
    connected: bool
    at: float


Effect = (
    CallStarted | CallDialing | CallRang | LegEnded | CallAnswered | CallTransferred | CallsMerged | CallEnded
    | VariableWanted | AgentStateChanged | PbxLinkChanged
)
