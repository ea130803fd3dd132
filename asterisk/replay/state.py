"""What the PBX has right now, as the served events imply it; answers ``CoreShowChannels``, ``QueueStatus``, ``Getvar``.

The replay keeps the PBX's state as Asterisk would: a channel table (``Newchannel`` creates, every event carrying
a channel snapshot refreshes it, ``Newexten`` sets the application, ``BridgeEnter``/``BridgeLeave`` the bridge,
``Hangup`` removes it with its variables) and the queues (members from ``QueueMemberStatus``/``QueueMemberPause``,
waiting callers from ``QueueCallerJoin``/``QueueCallerLeave``). It is fed every event as it is served, whether or
not a client is connected to receive it: so after an outage the answers show the state at the reconnect, with
``Duration`` on the PBX's clock, and no channel that hung up meanwhile is listed, as on a real Asterisk.

Pure bookkeeping: no I/O and no clock (times come in as arguments), so a test can drive it without a socket.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from asterisk.messages import AmiMessage, Headers

from .queues_conf import QueueMemberConf

#: The channel snapshot Asterisk puts in every channel event, in its order.
SNAPSHOT_KEYS = ("Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
                  "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten",
                  "Priority", "Uniqueid", "Linkedid")
#: Float slack when an integer number of seconds is taken from two epoch timestamps.
_EPSILON = 1e-4


def _duration(seconds: float) -> str:
    whole = max(0, int(seconds + _EPSILON))
    return f"{whole // 3600:02d}:{whole % 3600 // 60:02d}:{whole % 60:02d}"


def _seconds(hms: str) -> float:
    """``HH:MM:SS`` (a recorded ``Duration``) in seconds; 0 if it is not one."""
    try:
        return float(sum(int(part) * 60**i for i, part in enumerate(reversed(hms.split(":")))))
    except ValueError:
        return 0.0


def _known(value: str) -> str:
    """Asterisk's ``QueueStatus`` writes ``unknown`` where channel events write ``<unknown>``."""
    return value if value and value != "<unknown>" else "unknown"


@dataclass(slots=True)
class _Channel:
    fields: dict[str, str]
    created: float
    application: str = ""
    app_data: str = ""
    bridge_id: str = ""


@dataclass(slots=True)
class _Entry:
    uniqueid: str
    fields: dict[str, str]
    joined: float


_MEMBER_KEYS = (("Name", "MemberName"), ("Location", "Interface"), ("StateInterface", "StateInterface"),
                ("Membership", "Membership"), ("Penalty", "Penalty"), ("CallsTaken", "CallsTaken"),
                ("LastCall", "LastCall"), ("LastPause", "LastPause"), ("LoginTime", "LoginTime"),
                ("InCall", "InCall"), ("Status", "Status"), ("Paused", "Paused"),
                ("PausedReason", "PausedReason"), ("Wrapuptime", "Wrapuptime"))
_PARAM_KEYS = ("Max", "Strategy", "Calls", "Holdtime", "TalkTime", "Completed", "Abandoned", "ServiceLevel",
               "ServicelevelPerf", "ServicelevelPerf2", "Weight")
#: Application Asterisk gives a channel it dials, by the dialling channel's application.
_OUTGOING_APP = {"Dial": "AppDial", "Queue": "AppQueue"}


class PbxState:
    """What the PBX has right now, as the served events imply it; answers the resync actions.

    Pure bookkeeping: no I/O and no clock (times come in as arguments).
    """

    def __init__(self) -> None:
        self.channels: dict[str, _Channel] = {}
        self.variables: dict[str, dict[str, str]] = {}
        self.queues: dict[str, dict[str, str]] = {}
        self.members: dict[tuple[str, str], dict[str, str]] = {}
        self.entries: dict[str, list[_Entry]] = {}

    # -- feeding

    def seed(self, items: Iterable[AmiMessage], created: Callable[[float], float]) -> None:
        """Take a recorded resync answer as the state; ``created(seconds_ago)`` gives a clock time."""
        for item in items:
            name = item.event
            if name == "CoreShowChannel":
                self.channels[item["Uniqueid"]] = _Channel(
                    fields={k: item.get(k) for k in SNAPSHOT_KEYS},
                    created=created(_seconds(item.get("Duration"))),
                    application=item.get("Application"), app_data=item.get("ApplicationData"),
                    bridge_id=item.get("BridgeId"))
            elif name == "QueueParams":
                self.queues[item["Queue"]] = {k: item.get(k) for k in _PARAM_KEYS}
            elif name == "QueueMember":
                self._queue(item["Queue"])
                self.members[(item["Queue"], item.get("Location"))] = {k: item.get(k) for k, _ in _MEMBER_KEYS}
            elif name == "QueueEntry":
                self._queue(item["Queue"])
                entry = _Entry(item.get("Uniqueid"), {k: item.get(k) for k in _ENTRY_KEYS},
                               created(float(item.get("Wait", "0") or 0)))
                self.entries.setdefault(item["Queue"], []).append(entry)

    def add_members(self, members: Iterable[QueueMemberConf], now: float) -> None:
        """The static members of ``queues.conf``, logged in since ``now``, idle; a member already known keeps
        what the served events said of it."""
        for member in members:
            self._queue(member.queue)
            self.members.setdefault((member.queue, member.interface), {
                "Name": member.name, "Location": member.interface, "StateInterface": member.device,
                "Membership": "static", "Penalty": member.penalty, "CallsTaken": "0", "LastCall": "0",
                "LastPause": "0", "LoginTime": str(int(now)), "InCall": "0", "Status": "1", "Paused": "0",
                "PausedReason": "", "Wrapuptime": "0"})

    def apply(self, msg: AmiMessage, now: float) -> None:
        """Update the state with one served event; ``now`` is used when it has no ``Timestamp``."""
        name = msg.event
        if name == "Newchannel":
            self.channels[msg.get("Uniqueid")] = _Channel({k: msg.get(k) for k in SNAPSHOT_KEYS},
                                                          created=msg.time or now)
        else:
            self._refresh_snapshots(msg)
        handler = _HANDLERS.get(name)
        if handler is not None:
            handler(self, msg, msg.time or now)

    def _refresh_snapshots(self, msg: AmiMessage) -> None:
        """Every channel snapshot an event carries (``Dest…``, ``Transferee…``) is the channel's now."""
        for key, value in msg.headers:
            if not key.endswith("Uniqueid"):
                continue
            prefix = key[: -len("Uniqueid")]
            chan = self.channels.get(value)
            if chan is not None and prefix + "ChannelState" in msg:
                for k in SNAPSHOT_KEYS:
                    if prefix + k in msg:
                        chan.fields[k] = msg[prefix + k]

    def _queue(self, name: str) -> dict[str, str]:
        params = self.queues.get(name)
        if params is None:
            params = dict.fromkeys(_PARAM_KEYS, "0")
            params.update(Strategy="", ServicelevelPerf="0.0", ServicelevelPerf2="0.0")
            self.queues[name] = params
        return params

    def has_channel(self, name: str) -> bool:
        """Whether a channel of that name is up (``Getvar`` on any other: ``No such channel``)."""
        return any(c.fields.get("Channel") == name for c in self.channels.values())

    def _hangup(self, msg: AmiMessage, ts: float) -> None:
        uid = msg.get("Uniqueid")
        self.channels.pop(uid, None)
        self.variables.pop(msg.get("Channel"), None)  # a channel's variables end with it
        for entries in self.entries.values():
            entries[:] = [e for e in entries if e.uniqueid != uid]

    def _newexten(self, msg: AmiMessage, ts: float) -> None:
        chan = self.channels.get(msg.get("Uniqueid"))
        if chan is not None:
            chan.application, chan.app_data = msg.get("Application"), msg.get("AppData")

    def _bridge(self, msg: AmiMessage, ts: float) -> None:
        chan = self.channels.get(msg.get("Uniqueid"))
        if chan is not None:
            chan.bridge_id = msg.get("BridgeUniqueid") if msg.event == "BridgeEnter" else ""

    def _dial_begin(self, msg: AmiMessage, ts: float) -> None:
        caller, callee = self.channels.get(msg.get("Uniqueid")), self.channels.get(msg.get("DestUniqueid"))
        if caller is not None and callee is not None and not callee.application:
            app = _OUTGOING_APP.get(caller.application, "")
            if app:
                callee.application, callee.app_data = app, "(Outgoing Line)"

    def _var_set(self, msg: AmiMessage, ts: float) -> None:
        self.variables.setdefault(msg.get("Channel"), {})[msg.get("Variable")] = msg.get("Value")

    def _member(self, msg: AmiMessage, ts: float) -> None:
        queue = msg.get("Queue")
        self._queue(queue)
        key = (queue, msg.get("Interface"))
        if msg.event == "QueueMemberRemoved":
            self.members.pop(key, None)
        else:
            self.members[key] = {k: msg.get(src) for k, src in _MEMBER_KEYS}

    def _caller_join(self, msg: AmiMessage, ts: float) -> None:
        queue = msg.get("Queue")
        self._queue(queue)
        entry = _Entry(msg.get("Uniqueid"), {k: msg.get(k) for k in _ENTRY_KEYS}, ts)
        self.entries.setdefault(queue, []).append(entry)

    def _caller_leave(self, msg: AmiMessage, ts: float) -> None:
        entries = self.entries.get(msg.get("Queue"), [])
        entries[:] = [e for e in entries if e.uniqueid != msg.get("Uniqueid")]

    def _count(self, msg: AmiMessage, ts: float) -> None:
        params = self._queue(msg.get("Queue"))
        key = "Abandoned" if msg.event == "QueueCallerAbandon" else "Completed"
        params[key] = str(int(params.get(key) or 0) + 1)

    # -- answering

    def core_show_channels(self, now: float, action_id: Headers) -> list[AmiMessage]:
        """``CoreShowChannel`` items, headers as Asterisk 22 sends them (see trace 25)."""
        return [
            AmiMessage(headers=[("Event", "CoreShowChannel"), *action_id,
                                *((k, c.fields.get(k, "")) for k in SNAPSHOT_KEYS),
                                ("Application", c.application), ("ApplicationData", c.app_data),
                                ("Duration", _duration(now - c.created)), ("BridgeId", c.bridge_id)])
            for c in self.channels.values()
        ]

    def queue_status(self, now: float, action_id: Headers, queue: str = "", member: str = "") -> list[AmiMessage]:
        """``QueueParams``, ``QueueMember`` and ``QueueEntry`` items, queue by queue."""
        items: list[AmiMessage] = []
        for name, params in self.queues.items():
            if queue and name != queue:
                continue
            entries = self.entries.get(name, [])
            values = {**params, "Calls": str(len(entries))}
            items.append(AmiMessage(headers=[("Event", "QueueParams"), ("Queue", name),
                                             *((k, values[k]) for k in _PARAM_KEYS), *action_id]))
            for (q, location), fields in self.members.items():
                if q == name and (not member or member in (location, fields.get("Name"))):
                    items.append(AmiMessage(headers=[("Event", "QueueMember"), ("Queue", name),
                                                     *fields.items(), *action_id]))
            for position, entry in enumerate(entries, 1):
                live = self.channels.get(entry.uniqueid)
                fields = {**entry.fields, **({k: live.fields[k] for k in _ENTRY_KEYS} if live else {})}
                items.append(AmiMessage(headers=[
                    ("Event", "QueueEntry"), ("Queue", name), ("Position", str(position)),
                    ("Channel", fields["Channel"]), ("Uniqueid", entry.uniqueid),
                    *((k, _known(fields[k])) for k in _ENTRY_KEYS[1:]),
                    ("Wait", str(max(0, int(now - entry.joined + _EPSILON)))), ("Priority", "0"), *action_id]))
        return items


_ENTRY_KEYS = ("Channel", "CallerIDNum", "CallerIDName", "ConnectedLineNum", "ConnectedLineName")

_HANDLERS: dict[str, Callable[[PbxState, AmiMessage, float], None]] = {
    "Hangup": PbxState._hangup,
    "Newexten": PbxState._newexten,
    "BridgeEnter": PbxState._bridge,
    "BridgeLeave": PbxState._bridge,
    "DialBegin": PbxState._dial_begin,
    "VarSet": PbxState._var_set,
    "QueueMemberStatus": PbxState._member,
    "QueueMemberPause": PbxState._member,
    "QueueMemberAdded": PbxState._member,
    "QueueMemberRemoved": PbxState._member,
    "QueueCallerJoin": PbxState._caller_join,
    "QueueCallerLeave": PbxState._caller_leave,
    "QueueCallerAbandon": PbxState._count,
    "AgentComplete": PbxState._count,
}

