"""The agent board: AMI events in, each agent's live state out. No I/O, no clock.

Like :mod:`cti.model`, :meth:`AgentBoard.apply` looks the event up in :data:`AGENT_HANDLERS`; the
handler updates the board and :class:`~cti.effects.AgentStateChanged` is returned for every agent
whose *visible* state (state, name, paused, reason, queues) changed. Unknown events change nothing.
Time comes from the message (the PBX's ``Timestamp``), as in the call model.

Rules derived from what a real Asterisk 22 sends (``../shared/ami-traces``):

* An agent is a phone endpoint matching ``[pbx] agent_pattern``: ``PJSIP/101`` (also ``SIP/``,
  ``IAX2/``). Devices such as ``Queue:support_pause_PJSIP/101`` or ``PJSIP/trunk`` are not agents.
  A queue member ``Local/104@agents`` is the agent of its ``StateInterface`` (``PJSIP/104``). Channel
  and device names are read by :mod:`cti.channels`, as the call model reads them.
* Ringing / in a call comes from the agent's own *channels* (``Newchannel``/``Newstate``/``Hangup``,
  ``CoreShowChannel`` at resync): the phones run with ``device_state_busy_at=1``, so the device state
  jumps straight to ``BUSY`` when the phone starts ringing and stays ``BUSY`` through the answer
  (01-direct-answered, 07-queue-ringall-answered); it never says ``RINGING`` or ``INUSE``.
* The device state (``DeviceStateChange``, the numeric ``Status`` of queue member events) still
  says offline (``UNAVAILABLE``/``INVALID``), and stands in for the channels only when it was
  reported after the agent's last channel change (a board that missed the call's channels). It
  often arrives a moment after the ``Hangup``; that late ``NOT_INUSE`` changes nothing visible.
* Paused is per queue (``QueueMemberPause``/``QueueMemberStatus``/``QueueMember``): an agent paused
  in at least one queue is ``paused`` when otherwise idle; a call wins over the pause (``in_call``
  with ``paused=True``). Asterisk sends ``PausedReason: ''`` on unpause (32-queue-paused-member).
* A member Asterisk tries but whose phone answers ``503`` never gets a device state change nor a
  channel beyond ``Down`` (36-queue-member-unavailable): ``Down`` channels do not count.
* Resync: ``QueueStatus`` items (``QueueParams``/``QueueMember``, then ``QueueStatusComplete``) and
  ``CoreShowChannels`` items go through the same table; applying them twice changes nothing. At the
  end of a listing, memberships of the listed queues and agent channels it no longer shows are
  dropped (they ended while the daemon was away). This assumes unfiltered listings, which is what the
  daemon sends.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace

from asterisk.messages import AmiMessage

from .ami_numbers import small_int
from .channels import DialPlan, channel_agent, endpoint_agent, local_agent
from .clock import PbxClock
from .effects import AgentStateChanged
from .records import DEFAULT_PBX

#: The numeric ``Status`` of queue member events (``enum ast_device_state``) as device state names.
DEVICE_STATES = ("UNKNOWN", "NOT_INUSE", "INUSE", "BUSY", "INVALID", "UNAVAILABLE", "RINGING", "RINGINUSE",
                 "ONHOLD")
OFFLINE_DEVICE = frozenset({"UNAVAILABLE", "INVALID"})
BUSY_DEVICE = frozenset({"INUSE", "BUSY", "RINGINUSE", "ONHOLD"})

_NOT_A_MEMBER = object()
#: Device and interface names remembered with their agent (a PBX has tens to hundreds of them).
MAX_REMEMBERED_ENDPOINTS = 4096
#: Channel states (``ChannelStateDesc``) that are not (yet) a call: a dialled phone before it rings.
QUIET_CHANNEL = frozenset({"Down", "Rsrvd"})
RINGING_CHANNEL = frozenset({"Ringing", "Pre-ring"})


#: What a user sees of an agent: name, state, paused, the pause reason, the paused queues, the queues.
Visible = tuple[str | None, str, bool, str | None, tuple[str, ...], tuple[str, ...]]


@dataclass(slots=True)
class Agent:
    """One agent's live state (mutable, internal); :meth:`AgentBoard.get` gives the frozen view."""

    extension: str
    name: str | None = None
    device_state: str = "UNKNOWN"
    #: The device state was reported after the agent's last channel change (so it is news).
    device_fresh: bool = False
    channels: dict[str, str] = field(default_factory=dict)  # uniqueid -> ChannelStateDesc
    memberships: dict[str, str | None] = field(default_factory=dict)  # queue -> None, or the pause reason
    paused_in: set[str] = field(default_factory=set)
    #: queue -> the member's interface there (``PJSIP/104``, or ``Local/104@agents``): what QueuePause names.
    interfaces: dict[str, str] = field(default_factory=dict)
    #: One of its channels got beyond Down: the phone is there even if its device state is unknown.
    reachable: bool = False
    #: The view last handed out (its ``device_state`` may be older than :attr:`device_state`: see ``get``).
    shown: AgentStateChanged | None = None
    #: What a user sees of :attr:`shown` (name, state, paused, reason, paused queues, queues): compared on
    #: every event, so kept ready.
    visible: Visible | None = None
    #: The name, the memberships or the pauses changed since :attr:`visible` was made: its queue part is
    #: rebuilt (sorted) only then; a change of state alone reuses it (most refreshes).
    roster_changed: bool = True


@dataclass(slots=True)
class _Listing:
    """The items of one resync listing (by ActionID) seen so far."""

    channels: set[str] = field(default_factory=set)
    queues: set[str] = field(default_factory=set)
    members: set[tuple[str, str]] = field(default_factory=set)  # (extension, queue)


def _state(agent: Agent) -> str:
    if agent.channels:
        ringing = False
        for s in agent.channels.values():
            if s in RINGING_CHANNEL:
                ringing = True
            elif s not in QUIET_CHANNEL:
                return "in_call"
        if ringing:
            return "ringing"
    device = agent.device_state
    if device in OFFLINE_DEVICE:
        return "offline"
    if agent.device_fresh:
        if device == "RINGING":
            return "ringing"
        if device in BUSY_DEVICE:
            return "in_call"
    if agent.paused_in:
        return "paused"
    if device == "UNKNOWN" and not agent.reachable:
        return "unknown"
    return "idle"


class AgentBoard:
    """Every agent's live state. Feed it events with :meth:`apply`."""

    def __init__(self, config: DialPlan, clock: PbxClock | None = None, pbx: str = DEFAULT_PBX) -> None:
        self.config = config
        #: The PBX whose agents these are: stamped on each effect (101 on two PBXs is two agents).
        self.pbx = pbx
        self._agents: dict[str, Agent] = {}
        self._channel_owner: dict[str, str] = {}  # uniqueid -> agent extension
        self._listings: dict[str, _Listing] = {}  # ActionID -> items seen
        self._endpoints: dict[str, str | None] = {}  # device or interface -> its agent (see _endpoint_agent)
        #: The PBX clock minus the local clock (dates resync items, which carry no Timestamp); the call book's,
        #: when the daemon shares it (each message's stamp is then read once).
        self.clock = clock if clock is not None else PbxClock()
        #: Time of the last event that touched an agent, on the PBX's clock (what dates its effects).
        self.now: float = 0.0
        #: The queues the PBX listed (``QueueParams`` at resync), members or not: the supervisor's figures list a
        #: queue nobody is a member of yet (``cti/queue_figures.py``). At most ``MAX_REMEMBERED_ENDPOINTS``.
        self.queues: set[str] = set()

    # -- entry points -----------------------------------------------------------------------

    def apply(self, msg: AmiMessage) -> list[AgentStateChanged]:
        """Apply one AMI event; return the agents whose visible state changed. Never raises for odd input."""
        handler = AGENT_HANDLERS.get(msg.event)
        if handler is None:
            return []
        touched = handler(self, msg)
        if not touched:
            return []  # most agent events repeat a state: no time needed (only an effect is dated)
        self.now = self.clock.time_of(msg)
        if len(touched) == 1:  # the usual case: one agent's device, channel or membership
            effect = self._refresh(self._agents[touched[0]])
            return [] if effect is None else [effect]
        effects = []
        for ext in dict.fromkeys(touched):
            effect = self._refresh(self._agents[ext])
            if effect is not None:
                effects.append(effect)
        return effects

    def agents(self) -> list[AgentStateChanged]:
        """The current state of every known agent, by extension (for a client that connects later)."""
        return [view for ext in sorted(self._agents) if (view := self.get(ext)) is not None]

    def member_interfaces(self, extension: str) -> dict[str, str]:
        """queue -> the agent's member interface in it (empty when no queue membership is known)."""
        agent = self._agents.get(extension)
        return dict(agent.interfaces) if agent is not None else {}

    def get(self, extension: str) -> AgentStateChanged | None:
        agent = self._agents.get(extension)
        if agent is None:
            return None
        shown = agent.shown
        if shown is not None and shown.device_state != agent.device_state:
            # A device state change alone is no news (no effect); the view catches up when it is read.
            shown = agent.shown = replace(shown, device_state=agent.device_state)
        return shown

    # -- helpers ----------------------------------------------------------------------------

    def _agent(self, ext: str) -> Agent:
        agent = self._agents.get(ext)
        if agent is None:
            agent = self._agents[ext] = Agent(ext)
        return agent

    def _refresh(self, agent: Agent) -> AgentStateChanged | None:
        """The agent's view; returned only when what a user sees changed.

        Runs for every agent event (a third of a call centre's traffic are device and member status
        changes that change nothing visible): the visible part is compared as a tuple first, and the
        view is only built when it differs.
        """
        state = _state(agent)
        before = agent.visible
        if before is not None and not agent.roster_changed:
            if state == before[1]:
                return None
            _, _, paused, reason, paused_queues, queues = before
            visible: Visible = (agent.name, state, paused, reason, paused_queues, queues)
        else:
            memberships = agent.memberships
            queues = tuple(sorted(memberships)) if len(memberships) > 1 else tuple(memberships)
            paused_in = agent.paused_in
            if paused_in:
                paused_queues = tuple(sorted(paused_in)) if len(paused_in) > 1 else tuple(paused_in)
                reason = next((r for q in paused_queues if (r := memberships.get(q))), None)
            else:
                paused_queues, reason = (), None
            agent.roster_changed = False
            visible = (agent.name, state, bool(paused_queues), reason, paused_queues, queues)
            if visible == before:
                return None
        agent.visible = visible
        view = agent.shown = AgentStateChanged(  # positional, in field order: cheaper than by keyword
            agent.extension, agent.name, state, bool(paused_queues), reason,  # ..., paused, paused_reason
            paused_queues, queues, agent.device_state, self.now, self.pbx,  # ..., at, pbx
        )
        return view

    def _endpoint_agent(self, interface: str) -> str | None:
        """:func:`~cti.channels.endpoint_agent`, remembered: a PBX has a fixed set of devices and member
        interfaces, and a third of its events name one (bounded, in case a PBX invents new names forever)."""
        known = self._endpoints
        if interface in known:
            return known[interface]
        if len(known) >= MAX_REMEMBERED_ENDPOINTS:
            known.clear()
        ext = known[interface] = endpoint_agent(interface, self.config)
        return ext

    def _member_agent(self, msg: AmiMessage) -> str | None:
        """The agent behind a queue member event or ``QueueMember`` item.

        The member's ``StateInterface`` first (``Local/104@agents`` is watched through ``PJSIP/104``), then
        its interface (``Interface``, or ``Location`` in a ``QueueMember`` item), and as a last resort the
        extension of a ``Local/104@context`` interface.
        """
        get = msg.fields.get
        interface = get("Interface", "") or get("Location", "")
        for candidate in (get("StateInterface", ""), interface):
            ext = self._endpoint_agent(candidate)
            if ext is not None:
                return ext
        return local_agent(interface, self.config)

    def _set_device(self, agent: Agent, device: str) -> bool:
        """Whether the device state changed (a repeated state is no news, and no call)."""
        if device == agent.device_state:
            return False
        agent.device_state = device
        agent.device_fresh = True
        return True

    def _set_channel(self, ext: str, uid: str, state: str) -> list[str]:
        agent = self._agents.get(ext)
        if agent is None and state in QUIET_CHANNEL:
            return []  # a phone being dialled that never rang (a 503 member) does not make an agent
        agent = agent or self._agent(ext)
        if agent.channels.get(uid) == state:
            return [ext]
        agent.channels[uid] = state
        self._channel_owner[uid] = ext
        agent.device_fresh = False
        if state not in QUIET_CHANNEL:
            agent.reachable = True
        return [ext]

    def _drop_channel(self, uid: str) -> list[str]:
        ext = self._channel_owner.pop(uid, None)
        if ext is None:
            return []
        agent = self._agents[ext]
        agent.channels.pop(uid, None)
        agent.device_fresh = False
        return [ext]

    def _listing(self, msg: AmiMessage) -> _Listing:
        return self._listings.setdefault(msg.action_id, _Listing())


Handler = Callable[[AgentBoard, AmiMessage], list[str]]
"""A handler updates the board and returns the extensions of the agents it touched."""


# -- devices and channels ------------------------------------------------------------------------


def _device_state_change(board: AgentBoard, msg: AmiMessage) -> list[str]:
    get = msg.fields.get
    ext = board._endpoint_agent(get("Device", ""))
    if ext is None:
        return []
    agent = board._agent(ext)
    if not board._set_device(agent, get("State", "") or "UNKNOWN") and agent.visible is not None:
        return []  # the same state again (the commonest agent event): nothing to look at
    return [ext]


def _channel_state(board: AgentBoard, msg: AmiMessage) -> list[str]:
    get = msg.fields.get
    ext = channel_agent(get("Channel", ""), board.config)
    uid = get("Uniqueid", "")
    if ext is None or not uid:
        return []
    if msg.event == "CoreShowChannel":
        board._listing(msg).channels.add(uid)
    return board._set_channel(ext, uid, get("ChannelStateDesc", "") or "Unknown")


def _hangup(board: AgentBoard, msg: AmiMessage) -> list[str]:
    return board._drop_channel(msg.fields.get("Uniqueid", ""))


def _core_show_channels_complete(board: AgentBoard, msg: AmiMessage) -> list[str]:
    """Agent channels the listing did not show hung up while the daemon was away."""
    listing = board._listings.pop(msg.action_id, _Listing())
    touched: list[str] = []
    for uid in [u for u in board._channel_owner if u not in listing.channels]:
        touched += board._drop_channel(uid)
    return touched


# -- queue members ---------------------------------------------------------------------------------


def _member(board: AgentBoard, msg: AmiMessage) -> list[str]:
    """QueueMemberStatus / QueueMemberPause / QueueMemberAdded and the QueueMember resync item."""
    get = msg.fields.get
    ext = board._member_agent(msg)
    queue = get("Queue", "")
    if ext is None or not queue:
        return []
    agent = board._agent(ext)
    # What a user may see before: the same status again (most member events) changes nothing to look at.
    before = (agent.name, queue in agent.paused_in, agent.memberships.get(queue, _NOT_A_MEMBER))
    name = get("MemberName", "") or get("Name", "")
    if name and name not in (get("Interface", ""), get("Location", ""), get("StateInterface", "")):
        agent.name = name  # Asterisk names an unnamed member after its interface: not a name
    interface = get("Interface", "") or get("Location", "")
    if interface:
        agent.interfaces[queue] = interface
    if get("Paused", "") in ("1", "true"):
        agent.paused_in.add(queue)
        agent.memberships[queue] = get("PausedReason", "") or None
    else:
        agent.paused_in.discard(queue)
        agent.memberships[queue] = None
    code = small_int(get("Status", ""))  # "²" or 5000 digits: no device state (ami_numbers)
    device_changed = code is not None and code < len(DEVICE_STATES) and board._set_device(agent, DEVICE_STATES[code])
    if msg.event == "QueueMember":
        board._listing(msg).members.add((ext, queue))
    if before != (agent.name, queue in agent.paused_in, agent.memberships[queue]):
        agent.roster_changed = True
    elif not device_changed and agent.visible is not None:
        return []
    return [ext]


def _member_removed(board: AgentBoard, msg: AmiMessage) -> list[str]:
    ext = board._member_agent(msg)
    agent = board._agents.get(ext or "")
    if agent is None:
        return []
    queue = msg.fields.get("Queue", "")
    agent.memberships.pop(queue, None)
    agent.interfaces.pop(queue, None)
    agent.paused_in.discard(queue)
    agent.roster_changed = True
    return [agent.extension]


def _queue_params(board: AgentBoard, msg: AmiMessage) -> list[str]:
    get = msg.fields.get
    if get("Queue", ""):
        board._listing(msg).queues.add(get("Queue", ""))
        if len(board.queues) < MAX_REMEMBERED_ENDPOINTS:
            board.queues.add(get("Queue", ""))
    return []


def _queue_status_complete(board: AgentBoard, msg: AmiMessage) -> list[str]:
    """Members of a listed queue the listing did not show left it while the daemon was away."""
    listing = board._listings.pop(msg.action_id, None)
    if listing is None:
        return []
    touched = []
    for agent in board._agents.values():
        for queue in [q for q in agent.memberships if q in listing.queues]:
            if (agent.extension, queue) not in listing.members:
                del agent.memberships[queue]
                agent.interfaces.pop(queue, None)
                agent.paused_in.discard(queue)
                agent.roster_changed = True
                touched.append(agent.extension)
    return touched


def _cti_connected(board: AgentBoard, msg: AmiMessage) -> list[str]:
    """A new AMI session: listings of the previous one will never complete."""
    board._listings.clear()
    return []


AGENT_HANDLERS: dict[str, Handler] = {
    "DeviceStateChange": _device_state_change,
    "Newchannel": _channel_state,
    "Newstate": _channel_state,
    "Hangup": _hangup,
    "QueueMemberStatus": _member,
    "QueueMemberPause": _member,
    "QueueMemberAdded": _member,
    "QueueMemberRemoved": _member_removed,
    "CtiConnected": _cti_connected,
    "CoreShowChannel": _channel_state,
    "CoreShowChannelsComplete": _core_show_channels_complete,
    "QueueParams": _queue_params,
    "QueueMember": _member,
    "QueueStatusComplete": _queue_status_complete,
}
