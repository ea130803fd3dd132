"""The replay PBX: a real TCP server that speaks AMI and plays back a recorded Asterisk trace.

Why it exists: the daemon, the integration tests, the benchmarks and ``cti demo`` all need an Asterisk
to connect to, and a real one (with SIP phones making calls) cannot run in CI. The folders of
``../shared/ami-traces`` hold what a real Asterisk 22 sent while real calls were made; this server
sends those same events again, over a real socket, behind the same login, so a client cannot tell it
from the PBX (the idea of wazo-calld's ``mock-wazo-amid``: fake a neighbour as a process that speaks its
protocol over the network, never as an in-process mock).

**What is served.** The recorded *events* (frames with an ``Event`` header), in order. Not served: the
``Response`` frames and the event-list items (``CoreShowChannel``, ``QueueMember``, …) that answered
the recording runner's own actions, and the runner's ``FullyBooted``/``SuccessfulAuth`` (each session
gets its own after login). ``OriginateResponse`` events are served to every client: they carry the
runner's ActionID, which a client must ignore as unknown.

**Pacing.** Every event keeps its recorded time ``t`` (seconds after the recording's login). The
stream's clock starts when the first client has logged in, runs at ``speed`` times real time
(``speed=0`` or ``math.inf``: as fast as possible) and stops while the stream is held: by
:meth:`ReplayPbx.pause`, by :meth:`ReplayPbx.stop_answering_pings`, or, with
``pause_when_no_client=True`` (the default), while no client is logged in. So a client that
reconnects continues where the previous one stopped and loses nothing to the gap, as a test wants;
a real PBX would go on without it (use ``pause_when_no_client=False`` for that). Events recorded in
one TCP read (same ``t``) go out in one write. The stream never runs more than one write ahead of the
slowest connected client: that keeps :attr:`ReplayPbx.position` meaningful at ``speed=0``.
``chunk_size`` cuts every write into pieces (of that size; or, when ``chunk_seed`` is given, of random
sizes 1..``chunk_size`` drawn from that seed) with a ``drain()`` between them, so framing is tested
over real TCP reads (a Cyrillic name split between two reads). Nothing is replayed from before a
client connected: a PBX does not replay the past, it answers ``CoreShowChannels``.

**Resync.** The server keeps the PBX's state as the served events imply it: a channel table
(``Newchannel`` creates, every event carrying a channel snapshot refreshes it, ``Newexten`` sets the
application, ``BridgeEnter``/``BridgeLeave`` the bridge, ``Hangup`` removes) and the queues (members
from ``QueueMemberStatus``/``QueueMemberPause``, waiting callers from ``QueueCallerJoin``/
``QueueCallerLeave``). A trace recorded while calls were already up (``25-resync-midcall``) seeds that
state with the ``CoreShowChannels``/``QueueStatus`` answers its runner got at connect. So
``CoreShowChannels`` and ``QueueStatus`` are answered as Asterisk 22 would at the current replay
position, with its header order and its ``Duration`` on the PBX's clock.

**Time and ids.** The PBX's clock is the recorded ``Timestamp`` clock, moved along with the stream.
``rebase_time=True`` rewrites every ``Timestamp`` to the wall clock: recorded time since the stream's
start, divided by ``speed`` (kept as recorded at ``speed=0``/``inf``), plus the wall time the stream
started, re-anchored after every hold; so a demo looks live. With ``loop=True`` the trace list is
served again and again; pass *n* shifts every ``Timestamp`` (unless rebased) and the epoch part of
every ``…Uniqueid``/``…Linkedid`` value (``1795479360.12`` → ``<1795479360 + offset>.12``) by the same
whole number of seconds, *n* times the span of the whole recording, so no id of one pass collides with
another's; bridge UUIDs get their first field bumped by *n*. Channel names (``PJSIP/101-0000002a``)
are left as they are.

Actions are recorded (:attr:`ReplayPbx.received_actions`), never executed: ``Originate``,
``Redirect``, ``Hangup``, … are answered ``Success`` and change nothing in the stream. They are read as
Asterisk's ``manager.c`` reads them (:class:`ActionReader`), not as our client reads events: a line ends at
LF with or without a CR, a NUL ends a header's text, a blank line ends the action. So a client that lets a
bare LF into a value is seen sending the extra headers or actions a real PBX would run.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import math
import random
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

from asterisk.manager_conf import ACTION_CLASSES
from asterisk.messages import AmiHeaderError, AmiMessage, Headers

log = logging.getLogger(__name__)

BANNER = "Asterisk Call Manager/11.0.0"
#: Recorded time between two traces (and between two passes of a loop).
TRACE_GAP = 1.0
#: Event-list items that answered the recording runner's resync actions.
_SNAPSHOT_ITEMS = frozenset({"CoreShowChannel", "QueueParams", "QueueMember", "QueueEntry"})
#: The runner's own session events: every client gets fresh ones after its login.
_SESSION_EVENTS = frozenset({"FullyBooted", "SuccessfulAuth"})
#: The channel snapshot Asterisk puts in every channel event, in its order.
_SNAPSHOT_KEYS = ("Channel", "ChannelState", "ChannelStateDesc", "CallerIDNum", "CallerIDName",
                  "ConnectedLineNum", "ConnectedLineName", "Language", "AccountCode", "Context", "Exten",
                  "Priority", "Uniqueid", "Linkedid")
#: Actions that would change the PBX: recorded and answered ``Success``, never carried out.
_RECORDED_ONLY = {
    "originate": "Originate successfully queued",
    "redirect": "Redirect successful",
    "atxfer": "Atxfer successfully queued",
    "blindtransfer": "Transfer succeeded",
    "hangup": "Channel Hungup",
    "setvar": "Variable Set",
    "mixmonitor": "",
    "stopmixmonitor": "",
}
_EPOCH_ID = re.compile(r"^(\d+)\.(\d+)$")
_UUID = re.compile(r"^([0-9a-f]{8})(-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})$")
#: Float slack when an integer number of seconds is taken from two epoch timestamps.
_EPSILON = 1e-4


# --------------------------------------------------------------------------------------------- trace


@dataclass(frozen=True, slots=True)
class TraceEvent:
    """One recorded event and when it arrived, in seconds after the recording's login."""

    t: float
    message: AmiMessage


@dataclass(frozen=True, slots=True)
class Trace:
    """A trace folder, read once: what a replay serves and how the PBX looked at connect."""

    name: str
    banner: str
    #: The events to serve, in recorded order.
    events: list[TraceEvent]
    #: ``CoreShowChannel``/``QueueParams``/``QueueMember``/``QueueEntry`` items answering the runner's
    #: resync at connect (empty unless calls were up when the recording started, e.g. trace 25).
    snapshot: list[AmiMessage]
    #: The PBX's ``Timestamp`` clock at ``t = 0`` (the recording's login).
    epoch0: float

    @property
    def length(self) -> float:
        """Recorded time of the last event."""
        return self.events[-1].t if self.events else 0.0


def load_trace(path: Path) -> Trace:
    """Read a trace folder (or its ``ami.jsonl``) into the events a replay serves.

    Raises:
        ValueError: the folder has no ``ami.jsonl`` or a line of it is not a recorded message.
    """
    file = path if path.is_file() else path / "ami.jsonl"
    if not file.is_file():
        raise ValueError(f"{path}: not an AMI trace folder (no ami.jsonl)")
    banner = BANNER
    rows: list[tuple[float, str, AmiMessage]] = []  # (t, "msg" | "sent", message)
    with file.open(encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                t = float(item["t"])
                kind = "sent" if "sent" in item else "msg"
                body = item[kind]
                if isinstance(body, str):
                    banner = body
                    continue
                rows.append((t, kind, AmiMessage(headers=[(str(k), str(v)) for k, v in body])))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{file}:{number}: not a recorded AMI message ({exc})") from exc

    runner_actions = {m.action_id: m.action for _, kind, m in rows if kind == "sent" and m.action_id}
    login_ids = {aid for aid, name in runner_actions.items() if name.lower() == "login"}
    t0 = next((t for t, kind, m in rows if kind == "msg" and m.response and m.action_id in login_ids), 0.0)

    events: list[TraceEvent] = []
    snapshot: list[AmiMessage] = []
    epoch0: float | None = None
    for t, kind, msg in rows:
        if kind != "msg":
            continue
        rel = max(0.0, t - t0)
        if epoch0 is None and "Timestamp" in msg:
            epoch0 = msg.time - rel
        name = msg.event
        if not name or name in _SESSION_EVENTS:
            continue
        if msg.action_id in runner_actions and name != "OriginateResponse":
            if name in _SNAPSHOT_ITEMS and not events:
                snapshot.append(msg)
            continue
        events.append(TraceEvent(rel, msg))
    return Trace(name=file.parent.name, banner=banner, events=events, snapshot=snapshot,
                 epoch0=epoch0 if epoch0 is not None else 0.0)


# ------------------------------------------------------------------------------------- PBX state


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
                    fields={k: item.get(k) for k in _SNAPSHOT_KEYS},
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

    def apply(self, msg: AmiMessage, now: float) -> None:
        """Update the state with one served event; ``now`` is used when it has no ``Timestamp``."""
        name = msg.event
        if name == "Newchannel":
            self.channels[msg.get("Uniqueid")] = _Channel({k: msg.get(k) for k in _SNAPSHOT_KEYS},
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
                for k in _SNAPSHOT_KEYS:
                    if prefix + k in msg:
                        chan.fields[k] = msg[prefix + k]

    def _queue(self, name: str) -> dict[str, str]:
        params = self.queues.get(name)
        if params is None:
            params = dict.fromkeys(_PARAM_KEYS, "0")
            params.update(Strategy="", ServicelevelPerf="0.0", ServicelevelPerf2="0.0")
            self.queues[name] = params
        return params

    def _hangup(self, msg: AmiMessage, ts: float) -> None:
        uid = msg.get("Uniqueid")
        self.channels.pop(uid, None)
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
                                *((k, c.fields.get(k, "")) for k in _SNAPSHOT_KEYS),
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


# ----------------------------------------------------------------------------------------- session


class ActionReader:
    """Splits a client's byte stream into actions the way Asterisk's ``manager.c`` does (sans-I/O).

    ``get_input`` ends a line at LF, dropping one CR right before it (a lone CR is text); the line's text
    ends at its first NUL (C strings), the rest of that line is never seen. ``do_message`` ends the action at
    an empty line and keeps at most :attr:`max_headers` lines (``AST_MAX_MANHEADERS``). ``Key: Value`` is
    split at the first ``:``, the value's leading blanks skipped (``astman_get_header``); a line without a
    ``:`` is kept as ``("", line)``, a header no action reads. Deliberately not our client's
    :class:`~asterisk.protocol.AmiFramer`, which is strict about what it accepts; this one is as lenient as the
    PBX, which is what a test of what the PBX would do needs.
    """

    def __init__(self, *, max_line: int = 64 * 1024, max_headers: int = 128) -> None:
        self.max_line = max_line
        self.max_headers = max_headers
        self._buf = bytearray()
        self._headers: Headers = []
        self._out: list[AmiMessage] = []

    def receive_data(self, data: bytes, received_at: float = 0.0) -> None:
        buf = self._buf
        buf += data
        start = 0
        while (end := buf.find(b"\n", start)) != -1:
            line = bytes(buf[start:end])
            start = end + 1
            if line.endswith(b"\r"):
                line = line[:-1]
            line = line.split(b"\x00", 1)[0]
            if not line:
                if self._headers:  # Asterisk answers an empty one "Missing action in request"; never ours
                    self._out.append(AmiMessage(headers=self._headers, received_at=received_at))
                    self._headers = []
                continue
            if len(self._headers) < self.max_headers:
                key, sep, value = line.decode("utf-8", errors="replace").partition(":")
                self._headers.append((key, value.lstrip(" \t")) if sep else ("", key))
            else:
                log.warning("replay PBX: more than %d lines in one action; the rest is ignored", self.max_headers)
        del buf[:start]
        if len(buf) > self.max_line:
            log.warning("replay PBX: a line of over %d bytes with no LF dropped", self.max_line)
            buf.clear()

    def receive_eof(self) -> None:
        """The client closed: an unfinished action is never carried out."""
        self._buf.clear()
        self._headers = []

    def events_received(self) -> list[AmiMessage]:
        """Actions completed since the last call, in order. Call after every receive_data()."""
        out, self._out = self._out, []
        return out


@dataclass(frozen=True, slots=True)
class ReceivedAction:
    """An action a client sent, kept so a test can check what the daemon asked the PBX to do."""

    session: int
    message: AmiMessage


@dataclass(frozen=True, slots=True)
class _Outgoing:
    """A served event, encoded once for every session."""

    frame: bytes
    classes: frozenset[str]

    @property
    def text(self) -> str:
        return self.frame.decode("utf-8", errors="replace")


def _names(privilege: str) -> frozenset[str]:
    return frozenset(c.strip().lower() for c in privilege.split(",") if c.strip())


def _classes(privilege: str) -> frozenset[str]:
    return _names(privilege) - {"all"}


def _event_mask(value: str) -> frozenset[str] | None:
    """``Events:`` of Login / ``EventMask:`` of Events: ``None`` = every class, empty = none."""
    text = value.strip().lower()
    if text in ("off", "no", "false", "none", "n", "f", "0"):
        return frozenset()
    names = {c.strip() for c in text.split(",")}
    if text in ("", "on", "yes", "true", "y", "t", "1") or "all" in names:
        return None
    return frozenset(names - {""})


def _arg(msg: AmiMessage, key: str) -> str:
    """An action's header, looked up without regard to case, as Asterisk's ``astman_get_header``."""
    wanted = key.lower()
    return next((v for k, v in msg.headers if k.lower() == wanted), "")


class _Session:
    """One client connection: its login, event mask, filters, and an ordered outgoing queue."""

    def __init__(self, sid: int, writer: asyncio.StreamWriter, chunk_size: int | None,
                 chunk_seed: int | None) -> None:
        self.id = sid
        self.writer = writer
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.logged_in = False
        self.mask: frozenset[str] | None = None
        self.includes: list[re.Pattern[str]] = []
        self.excludes: list[re.Pattern[str]] = []
        self.closed = False
        self.idle = asyncio.Event()
        self.idle.set()
        self._out: asyncio.Queue[bytes | None] = asyncio.Queue()
        self._chunk_size = chunk_size
        # Random chunk sizes only when a seed is given; each session draws its own reproducible series.
        self._rng = random.Random(f"{chunk_seed}:{sid}") if chunk_seed is not None else None
        # drain() then waits until the bytes are in the kernel, not merely in asyncio's buffer.
        writer.transport.set_write_buffer_limits(high=0)

    def send(self, data: bytes) -> None:
        if not self.closed and data:
            self.idle.clear()
            self._out.put_nowait(data)

    def finish(self) -> None:
        """Close once everything queued so far is written (Logoff, refused login, client EOF)."""
        self._out.put_nowait(None)

    def abort(self) -> None:
        """Cut the connection now, unsent bytes lost, as a crashed PBX or a broken network would."""
        self.closed = True
        self.writer.transport.abort()
        self.idle.set()
        self._out.put_nowait(None)

    def accepts(self, event: _Outgoing) -> bool:
        """Asterisk's rule: the event's class is in the session's mask, then the regex filters."""
        if self.mask is not None and not (event.classes & self.mask):
            return False
        if not self.includes and not self.excludes:
            return True
        text = event.text
        if any(f.search(text) for f in self.excludes):
            return False
        return not self.includes or any(f.search(text) for f in self.includes)

    def _chunks(self, data: bytes) -> Iterator[bytes]:
        size = self._chunk_size
        if not size:
            yield data
            return
        pos = 0
        while pos < len(data):
            step = self._rng.randint(1, size) if self._rng is not None else size
            yield data[pos : pos + step]
            pos += step

    async def write_loop(self) -> None:
        """Write the queued bytes in order; the only place this session's socket is written."""
        try:
            while True:
                data = await self._out.get()
                if data is None:
                    break
                for chunk in self._chunks(data):
                    self.writer.write(chunk)
                    await self.writer.drain()
                    if self._chunk_size:
                        # drain() does not yield while the buffer is low: give the reader a turn so
                        # that each chunk really arrives as a read of its own (split UTF-8 letters).
                        await asyncio.sleep(0)
                if self._out.empty():
                    self.idle.set()
        except (ConnectionError, OSError):
            pass
        finally:
            self.closed = True
            self.idle.set()
            self.writer.close()


# -------------------------------------------------------------------------------------------- server


@dataclass(frozen=True, slots=True)
class _Segment:
    trace: Trace
    start: float  # where the trace starts on the replay's timeline, within one pass


@dataclass(slots=True)
class _Clock:
    """The stream's timeline (recorded seconds) against the loop's clock and the wall clock."""

    speed: float
    running: bool = False
    vt: float = 0.0  # timeline position at ``mono``
    mono: float = 0.0
    # Rebase anchor: timeline position ``rb_vt`` was wall time ``rb_wall``.
    rb_vt: float = 0.0
    rb_wall: float = field(default_factory=time.time)

    @property
    def fast(self) -> bool:
        return self.speed == 0 or math.isinf(self.speed)

    def now(self) -> float:
        if self.running and not self.fast:
            return self.vt + (time.monotonic() - self.mono) * self.speed
        return self.vt

    def set_running(self, running: bool) -> None:
        if running == self.running:
            return
        self.vt, self.mono, self.running = self.now(), time.monotonic(), running
        if running:
            self.rb_vt, self.rb_wall = self.vt, time.time()

    def advance_to(self, vt: float) -> None:
        if vt > self.now():
            self.vt, self.mono = vt, time.monotonic()

    def wall(self, vt: float) -> float:
        """Wall-clock time of a timeline position (for ``rebase_time``)."""
        return self.rb_wall + (vt - self.rb_vt) / (1.0 if self.fast else self.speed)


class ReplayPbx:
    """An AMI server that serves recorded traces; see the module docstring for the rules it follows.

    Use it as ``async with ReplayPbx([folder]) as pbx: host, port = pbx.address`` or call
    :meth:`start` and :meth:`close`. The test hooks (:meth:`drop_connections`, :meth:`pause`,
    :meth:`stop_answering_pings`, :meth:`send_raw`, :attr:`received_actions`, :attr:`served_count`,
    :attr:`finished`, :attr:`position`) act on the running server from the test's own task.
    """

    def __init__(
        self,
        traces: Sequence[Path | Trace],
        *,
        username: str = "cti",
        secret: str = "cti-secret",
        speed: float = 1.0,
        loop: bool = False,
        rebase_time: bool = False,
        chunk_size: int | None = None,
        chunk_seed: int | None = None,
        pause_when_no_client: bool = True,
        write: str = "all",
    ) -> None:
        if not traces:
            raise ValueError("give at least one trace folder")
        if speed < 0:
            raise ValueError("speed must be >= 0 (0 or inf: as fast as possible)")
        if chunk_size is not None and chunk_size < 1:
            raise ValueError("chunk_size must be >= 1")
        loaded = [t if isinstance(t, Trace) else load_trace(Path(t)) for t in traces]
        self.username, self.secret = username, secret
        #: The AMI user's ``write`` classes, as in manager.conf: ``all``, or e.g. ``call,originate,agent``.
        #: An action none of whose classes is granted is refused with "Permission denied", as Asterisk does.
        self.write: frozenset[str] | None = None if "all" in _names(write) else _classes(write)
        self.loop, self.rebase_time = loop, rebase_time
        self.chunk_size, self.chunk_seed = chunk_size, chunk_seed
        self.pause_when_no_client = pause_when_no_client
        self.banner = loaded[0].banner or BANNER

        self._segments: list[_Segment] = []
        start = 0.0
        for trace in loaded:
            self._segments.append(_Segment(trace, start))
            start += trace.length + TRACE_GAP
        self._pass_length = start
        stamps = [e.message.time for t in loaded for e in t.events if "Timestamp" in e.message]
        #: Whole seconds every pass of a loop moves Timestamps and ids by (the recording's span).
        self._pass_shift = math.ceil(max(stamps) - min(stamps) + TRACE_GAP) if stamps else 1

        #: Every action received, in order, with the id of the session that sent it.
        self.received_actions: list[ReceivedAction] = []
        #: Events served so far (over all passes), whether or not a client's mask let them through.
        self.served_count = 0
        #: Set once every event of every trace has been served (the first pass, with ``loop``).
        self.finished = asyncio.Event()
        self.state = PbxState()

        self._clock = _Clock(speed)
        self._pass = 0
        self._seg = 0
        self._idx = 0
        self._done = not any(s.trace.events for s in self._segments)
        self._started = False
        self._paused = False
        self._silent = False
        self._sessions: dict[int, _Session] = {}
        self._handlers: set[asyncio.Task[None]] = set()
        self._next_sid = 1
        self._wake = asyncio.Event()
        self._server: asyncio.Server | None = None
        self._pump_task: asyncio.Task[None] | None = None
        self._closed = asyncio.Event()
        self._seed()
        if self._done:
            self.finished.set()

    # -- public surface

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> tuple[str, int]:
        """Listen on ``host:port`` (0 = any free port) and return the address actually bound."""
        self._server = await asyncio.start_server(self._handle, host, port)
        self._pump_task = asyncio.create_task(self._pump(), name="replay-pbx-pump")
        return self.address

    @property
    def address(self) -> tuple[str, int]:
        if self._server is None:
            raise RuntimeError("the replay PBX is not started")
        sock = self._server.sockets[0].getsockname()
        return str(sock[0]), int(sock[1])

    async def close(self) -> None:
        """Stop listening, cut every client, stop the stream."""
        if self._closed.is_set():
            return
        self._closed.set()
        if self._server is not None:
            self._server.close()
        for session in list(self._sessions.values()):
            session.abort()
        tasks = [t for t in (self._pump_task, *self._handlers) if t is not None]
        if self._pump_task is not None:
            self._pump_task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    async def serve_forever(self) -> None:
        """Serve until :meth:`close` is called or the task is cancelled (then close)."""
        try:
            await self._closed.wait()
        finally:
            await self.close()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    @property
    def trace_names(self) -> list[str]:
        return [s.trace.name for s in self._segments]

    @property
    def position(self) -> int:
        """Index of the next event to serve in this pass, over the traces in order."""
        return sum(len(s.trace.events) for s in self._segments[: self._seg]) + self._idx

    @property
    def passes(self) -> int:
        """Completed passes over the trace list (only ever > 1 with ``loop``)."""
        return self._pass

    def pause(self) -> None:
        """Hold the event stream (actions are still answered)."""
        self._paused = True
        self._changed()

    def resume(self) -> None:
        self._paused = False
        self._changed()

    def stop_answering_pings(self, flag: bool = True) -> None:
        """``True``: the PBX hangs. Sockets stay open, nothing is answered, no event is sent."""
        self._silent = flag
        self._changed()

    def drop_connections(self) -> None:
        """Close every client socket abruptly (RST), mid-stream; the replay position is kept."""
        for session in list(self._sessions.values()):
            log.info("replay PBX: dropping session %d (%s)", session.id, session.peer)
            session.abort()
        self._sessions.clear()
        self._changed()

    def send_raw(self, data: bytes) -> None:
        """Write bytes as they are to every connected client (malformed or oversized frames)."""
        for session in self._sessions.values():
            session.send(data)

    def pbx_time(self) -> float:
        """The PBX's clock now (epoch seconds): the recorded clock, or the wall clock if rebased."""
        return self._clock_at(self._clock.now())

    # -- stream

    @staticmethod
    def _listening(session: _Session) -> bool:
        """Logged in with events on: a client that logs in with ``Events: off`` to add its filters
        first (so no unfiltered event slips through) is not listening until its ``Events`` action."""
        return session.logged_in and session.mask != frozenset()

    def _runnable(self) -> bool:
        has_client = any(self._listening(s) for s in self._sessions.values())
        return (self._started and not self._paused and not self._silent
                and (has_client or not self.pause_when_no_client))

    def _changed(self) -> None:
        self._clock.set_running(self._runnable() and not self._done)
        self._wake.set()

    def _begin_stream(self) -> None:
        """The first login: the timeline starts now (and, rebased, the seed is re-stamped to it)."""
        self._started = True
        self._clock.set_running(True)  # anchors the wall clock to timeline 0
        if self.rebase_time:
            self.state = PbxState()
            self._seed()
        self._changed()

    def _seg_start(self) -> float:
        return self._pass * self._pass_length + self._segments[self._seg].start

    def _clock_at(self, vt: float) -> float:
        if self.rebase_time:
            return self._clock.wall(vt)
        trace = self._segments[self._seg].trace
        return trace.epoch0 + (vt - self._seg_start()) + self._pass * self._pass_shift

    def _out_ts(self, recorded: float) -> float:
        """A recorded ``Timestamp`` of the current trace, as this pass serves it."""
        if self.rebase_time:
            trace = self._segments[self._seg].trace
            return self._clock.wall(self._seg_start() + recorded - trace.epoch0)
        return recorded + self._pass * self._pass_shift

    def _transform(self, msg: AmiMessage) -> AmiMessage:
        if self._pass == 0 and not self.rebase_time:
            return msg
        shift, bump = self._pass * self._pass_shift, self._pass
        headers: Headers = []
        for key, value in msg.headers:
            low = key.lower()
            if key == "Timestamp":
                with contextlib.suppress(ValueError):
                    value = f"{self._out_ts(float(value)):.6f}"
            elif bump and (low.endswith(("uniqueid", "linkedid")) or low == "bridgeid"):
                if m := _EPOCH_ID.match(value):
                    value = f"{int(m[1]) + shift}.{m[2]}"
                elif m := _UUID.match(value):
                    value = f"{(int(m[1], 16) + bump) % 2**32:08x}{m[2]}"
            headers.append((key, value))
        return AmiMessage(headers=headers)

    def _seed(self) -> None:
        trace = self._segments[self._seg].trace
        if trace.snapshot:
            # The snapshot was taken at the recording's login (t = 0), on the recorded clock.
            self.state.seed((self._transform(m) for m in trace.snapshot),
                            lambda ago: self._out_ts(trace.epoch0 - ago))

    async def _pump(self) -> None:
        """Serve the events at their pace, one recorded read at a time, while the stream may run."""
        while True:
            while self._done or not self._runnable():
                self._wake.clear()
                await self._wake.wait()
            events = self._segments[self._seg].trace.events
            due = self._seg_start() + events[self._idx].t
            delay = 0.0 if self._clock.fast else (due - self._clock.now()) / self._clock.speed
            if delay > 0.001:
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), delay)
                continue  # woken early, or time is up: look again
            self._serve_group(due)
            await asyncio.gather(*(s.idle.wait() for s in list(self._sessions.values())))
            await asyncio.sleep(0)

    def _serve_group(self, due: float) -> None:
        self._clock.advance_to(due)
        events = self._segments[self._seg].trace.events
        first = self._idx
        t = events[first].t
        end = first
        while end < len(events) and events[end].t == t:
            end += 1
        now = self.pbx_time()
        outgoing: list[_Outgoing] = []
        for item in events[first:end]:
            msg = self._transform(item.message)
            self.state.apply(msg, now)
            outgoing.append(_Outgoing(msg.serialize(), _classes(msg.get("Privilege", "all"))))
        for session in self._sessions.values():
            if session.logged_in:
                session.send(b"".join(o.frame for o in outgoing if session.accepts(o)))
        self.served_count += end - first
        self._idx = end
        self._advance()

    def _advance(self) -> None:
        """Move past finished traces: next trace, next pass (with ``loop``), or the end."""
        while self._idx >= len(self._segments[self._seg].trace.events):
            if self._seg + 1 < len(self._segments):
                self._seg += 1
            else:
                self.finished.set()
                if not self.loop:
                    self._done = True
                    self._clock.set_running(False)
                    log.info("replay PBX: trace served (%d events); staying up", self.served_count)
                    return
                self._pass, self._seg = self._pass + 1, 0
                log.info("replay PBX: pass %d", self._pass + 1)
            self._idx = 0
            self._seed()

    # -- sessions

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        if task is not None:
            self._handlers.add(task)
        sid = self._next_sid
        self._next_sid += 1
        session = _Session(sid, writer, self.chunk_size, self.chunk_seed)
        self._sessions[sid] = session
        log.info("replay PBX: session %d connected from %s", sid, session.peer)
        try:
            session.send(f"{self.banner}\r\n".encode())
            async with asyncio.TaskGroup() as tg:
                tg.create_task(session.write_loop())
                await self._read_loop(session, reader)
                session.finish()
        finally:
            self._sessions.pop(sid, None)
            log.info("replay PBX: session %d closed", sid)
            self._changed()
            if task is not None:
                self._handlers.discard(task)

    async def _read_loop(self, session: _Session, reader: asyncio.StreamReader) -> None:
        framer = ActionReader()
        while not session.closed:
            try:
                data = await reader.read(65536)
            except (ConnectionError, OSError):
                return
            if not data:
                framer.receive_eof()
                return
            framer.receive_data(data, time.time())
            for msg in framer.events_received():
                if not self._on_action(session, msg):
                    return

    def _respond(self, session: _Session, request: AmiMessage, response: str, *pairs: tuple[str, str],
                 items: Sequence[AmiMessage] = ()) -> None:
        """Send ``Response: …`` (ActionID echoed right after it, as Asterisk does) and any list items."""
        if self._silent:
            return
        action_id = _arg(request, "ActionID")
        reply = AmiMessage(headers=[("Response", response), *([("ActionID", action_id)] if action_id else []),
                                    *pairs])
        try:
            session.send(reply.serialize() + b"".join(i.serialize() for i in items))
        except AmiHeaderError as exc:  # an echoed value (a U+2028 in a Getvar's name...) we cannot write
            log.warning("replay PBX: session %d: answer not sent: %s", session.id, exc)
            session.send(AmiMessage(headers=[("Response", "Error"), ("Message", "Invalid header")]).serialize())

    def _on_action(self, session: _Session, msg: AmiMessage) -> bool:
        """Answer one action; ``False`` ends the session (Logoff, refused login)."""
        self.received_actions.append(ReceivedAction(session.id, msg))
        name = _arg(msg, "Action")
        key = name.lower()
        log.info("replay PBX: session %d: action %s %s", session.id, name or "?", _arg(msg, "ActionID"))
        if key == "login":
            return self._login(session, msg)
        if key == "logoff":
            self._respond(session, msg, "Goodbye", ("Message", "Thanks for all the fish."))
            return False
        if not session.logged_in:
            self._respond(session, msg, "Error", ("Message", "Permission denied"))
            return True
        action_id = [("ActionID", _arg(msg, "ActionID"))] if _arg(msg, "ActionID") else []
        if not self._permitted(name):
            self._respond(session, msg, "Error", ("Message", "Permission denied"))
            return True
        if key == "ping":
            self._respond(session, msg, "Success", ("Ping", "Pong"), ("Timestamp", f"{self.pbx_time():.6f}"))
        elif key == "coreshowchannels":
            items = self.state.core_show_channels(self.pbx_time(), action_id)
            self._respond(session, msg, "Success", ("EventList", "start"), ("Message", "Channels will follow"),
                          items=[*items, _complete("CoreShowChannelsComplete", action_id, len(items))])
        elif key == "queuestatus":
            items = self.state.queue_status(self.pbx_time(), action_id, _arg(msg, "Queue"), _arg(msg, "Member"))
            self._respond(session, msg, "Success", ("EventList", "start"),
                          ("Message", "Queue status will follow"),
                          items=[*items, _complete("QueueStatusComplete", action_id, len(items))])
        elif key == "events":
            session.mask = _event_mask(_arg(msg, "EventMask"))
            self._respond(session, msg, "Success", ("Events", "Off" if session.mask == frozenset() else "On"))
            if not self._started and self._listening(session):
                self._begin_stream()
            self._changed()
        elif key == "filter":
            self._filter(session, msg)
        elif key == "getvar":
            value = self.state.variables.get(_arg(msg, "Channel"), {}).get(_arg(msg, "Variable"), "")
            self._respond(session, msg, "Success", ("Variable", _arg(msg, "Variable")), ("Value", value))
        elif key == "queuepause":
            paused = _arg(msg, "Paused").lower() in ("1", "yes", "true", "on", "y", "t")
            text = "Interface paused successfully" if paused else "Interface unpaused successfully"
            self._respond(session, msg, "Success", ("Message", text))
        elif key in _RECORDED_ONLY:
            text = _RECORDED_ONLY[key]
            self._respond(session, msg, "Success", *([("Message", text)] if text else []))
        else:
            self._respond(session, msg, "Error", ("Message", f"Invalid/unknown command: {name}. "
                                                             "Use Action: ListCommands to show available commands."))
        return True

    def _permitted(self, name: str) -> bool:
        """Whether the user's ``write`` classes allow ``name`` (any one of the action's classes suffices)."""
        if self.write is None:
            return True
        classes = next((c for a, c in ACTION_CLASSES.items() if a.lower() == name.lower()), None)
        if classes is None:
            return False  # an action this PBX does not know the classes of: refused under a restricted user
        return not classes or bool(self.write.intersection(classes))

    def _login(self, session: _Session, msg: AmiMessage) -> bool:
        if _arg(msg, "Username") != self.username or _arg(msg, "Secret") != self.secret:
            log.info("replay PBX: session %d: login refused for %r", session.id, _arg(msg, "Username"))
            self._respond(session, msg, "Error", ("Message", "Authentication failed"))
            return False  # Asterisk closes the connection after a failed login
        session.logged_in = True
        session.mask = _event_mask(_arg(msg, "Events"))
        log.info("replay PBX: session %d: logged in as %s (events %s)", session.id, self.username,
                 _arg(msg, "Events") or "on")
        self._respond(session, msg, "Success", ("Message", "Authentication accepted"))
        if not self._started and self._listening(session):
            self._begin_stream()
        if not self._silent:
            for event in _session_events(session, self.username, self.pbx_time()):
                if session.mask is None or event.classes & session.mask:
                    session.send(event.frame)
        self._changed()
        return True

    def _filter(self, session: _Session, msg: AmiMessage) -> None:
        operation = _arg(msg, "Operation").lower()
        text = _arg(msg, "Filter")
        if operation != "add":
            self._respond(session, msg, "Error", ("Message", "Unknown operation"))
            return
        exclude = text.startswith("!")
        try:
            pattern = re.compile(text[1:] if exclude else text)
        except re.error:
            self._respond(session, msg, "Error",
                          ("Message", "Filter did not compile.  Check the syntax of the filter given."))
            return
        (session.excludes if exclude else session.includes).append(pattern)
        self._respond(session, msg, "Success", ("Message", "Success"))


def _complete(event: str, action_id: Headers, count: int) -> AmiMessage:
    return AmiMessage(headers=[("Event", event), *action_id, ("EventList", "Complete"), ("ListItems", str(count))])


def _session_events(session: _Session, username: str, now: float) -> list[_Outgoing]:
    """What Asterisk sends a session right after its login: ``FullyBooted``, ``SuccessfulAuth``."""
    tv = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}+0000"
    booted = AmiMessage(headers=[("Event", "FullyBooted"), ("Privilege", "system,all"), ("Uptime", "0"),
                                 ("LastReload", "0"), ("Status", "Fully Booted")])
    auth = AmiMessage(headers=[
        ("Event", "SuccessfulAuth"), ("Privilege", "security,all"), ("Timestamp", f"{now:.6f}"),
        ("EventTV", tv), ("Severity", "Informational"), ("Service", "AMI"), ("EventVersion", "1"),
        ("AccountID", username), ("SessionID", f"0x{0x5583d4cb0000 + session.id:x}"),
        ("LocalAddress", "IPV4/TCP/127.0.0.1/5038"), ("RemoteAddress", f"IPV4/TCP/{session.peer.replace(':', '/')}"),
        ("UsingPassword", "0"), ("SessionTV", tv)])
    return [_Outgoing(m.serialize(), _classes(m.get("Privilege"))) for m in (booted, auth)]


async def run_replay_pbx(
    traces: Sequence[Path],
    host: str = "127.0.0.1",
    port: int = 5038,
    *,
    username: str = "cti",
    secret: str = "cti-secret",
    speed: float = 1.0,
    loop: bool = False,
    rebase_time: bool = False,
    chunk_size: int | None = None,
    chunk_seed: int | None = None,
    pause_when_no_client: bool = True,
) -> None:
    """Serve ``traces`` on ``host:port`` until cancelled (``cti replay-pbx TRACE``)."""
    pbx = ReplayPbx(traces, username=username, secret=secret, speed=speed, loop=loop, rebase_time=rebase_time,
                    chunk_size=chunk_size, chunk_seed=chunk_seed, pause_when_no_client=pause_when_no_client)
    bound_host, bound_port = await pbx.start(host, port)
    log.info("replay PBX listening on %s:%d: %s (speed %s%s)", bound_host, bound_port,
             ", ".join(pbx.trace_names), speed, ", loop" if loop else "")
    await pbx.serve_forever()
